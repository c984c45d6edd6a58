// keel run and keel resume, in-process: the built-in expense-approval agent on the shipped sample
// claims (the example payments service is started in-process by the command), an agent module
// given by path, and every way the input or the agent can be refused before anything is stored.

import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { chargerAgentSource, useCliWorkspace } from '../../../test/support/cli-harness.js';
import { repositoryFilePath } from '../package-files.js';

const cli = useCliWorkspace();

function sampleClaim(name: string): string {
  const path = repositoryFilePath(`examples/expense-approval/claims/${name}.json`);
  if (!path) throw new Error(`The sample claim ${name}.json is missing from examples/expense-approval/claims/.`);
  return path;
}

function writeChargerAgent(): string {
  const path = join(cli.dir, 'charger-agent.mjs');
  writeFileSync(path, chargerAgentSource());
  return path;
}

describe('keel run with the expense-approval example', () => {
  it('pays a clean claim and prints exactly one JSON object with --json', async () => {
    const result = await cli.run(['run', 'expense-approval', '--input', sampleClaim('clean-claim'), '--json', '--db', cli.db]);
    expect(result.code).toBe(0);
    expect(result.out.trim().split('\n')).toHaveLength(1);
    const workflow = JSON.parse(result.out);
    expect(workflow).toMatchObject({ agent: 'expense-approval', status: 'completed', state: 'paid', outcome: 'paid', failure: null });
    expect(workflow.id).toMatch(/^wf_/);
    expect(workflow.steps).toBe(4);
    expect(result.err).toContain('model: scripted');
    expect(result.err).toContain('started the example payments service');
  });

  it('rejects a malformed claim document, as a completed workflow', async () => {
    const result = await cli.run(['run', 'expense-approval', '--input', sampleClaim('malformed-claim'), '--json', '--db', cli.db]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.out)).toMatchObject({ status: 'completed', outcome: 'rejected' });
  });

  it('rejects a claim over its category limit', async () => {
    const result = await cli.run(['run', 'expense-approval', '--input', sampleClaim('over-limit-claim'), '--json', '--db', cli.db]);
    expect(JSON.parse(result.out)).toMatchObject({ status: 'completed', outcome: 'rejected' });
  });

  it('tells a person the outcome and the command that shows every step', async () => {
    const result = await cli.run(['run', 'expense-approval', '--input', sampleClaim('clean-claim'), '--user', 'ada@example.com', '--db', cli.db]);
    expect(result.code).toBe(0);
    const id = /Workflow (wf_\w+)/.exec(result.out)?.[1];
    expect(result.out).toContain(`Workflow ${id} (agent 'expense-approval') completed with outcome 'paid'.`);
    expect(result.out).toContain(`See every step with: keel inspect ${id} --db ${cli.db}`);
    const inspected = JSON.parse((await cli.run(['inspect', id!, '--json', '--db', cli.db])).out);
    expect(inspected.principal).toEqual({ id: 'ada@example.com' });
  });
});

describe('keel run refuses bad input before storing anything', () => {
  it('names a missing input file and creates no database', async () => {
    const result = await cli.run(['run', 'expense-approval', '--input', 'no-such-claim.json', '--db', cli.db]);
    expect(result.code).toBe(2);
    expect(result.err).toContain(`The input file no-such-claim.json does not exist (looked at ${join(cli.dir, 'no-such-claim.json')})`);
    expect(existsSync(cli.db)).toBe(false);
  });

  it('points at the line and column of malformed JSON', async () => {
    const input = join(cli.dir, 'claim.json');
    writeFileSync(input, '{\n  "claimId": "C-1",\n  "document": "x",\n}\n');
    const result = await cli.run(['run', 'expense-approval', '--input', input, '--db', cli.db]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/is not valid JSON at line 4, column 1/);
    expect(result.out).toBe('');
    expect(existsSync(cli.db)).toBe(false);
  });

  it('reads standard input with --input - and refuses an empty one', async () => {
    const result = await cli.run(['run', 'expense-approval', '--input', '-', '--db', cli.db], { stdin: '  \n' });
    expect(result.code).toBe(2);
    expect(result.err).toContain('The standard input is empty');
  });

  it('refuses an input that does not match the agent schema, and stores no workflow', async () => {
    const result = await cli.run(['run', 'expense-approval', '--input', '-', '--db', cli.db], { stdin: '{"claimId": 7}' });
    expect(result.code).toBe(2);
    expect(result.err).toContain("The input for agent 'expense-approval' does not match its schema: claimId:");
    const listed = await cli.run(['list', '--json', '--db', cli.db]);
    expect(JSON.parse(listed.out)).toEqual([]);
  });

  it('names an unknown agent and the built-in ones', async () => {
    const result = await cli.run(['run', 'expense-approvals', '--input', '-', '--db', cli.db], { stdin: '{}' });
    expect(result.code).toBe(2);
    expect(result.err).toContain("Unknown agent 'expense-approvals': it is not a built-in agent (built-ins: expense-approval)");
    expect(existsSync(cli.db)).toBe(false);
  });

  it('refuses an agent module with nothing to decide with', async () => {
    const path = join(cli.dir, 'undecided.mjs');
    writeFileSync(path, chargerAgentSource().replace(/decide: \(view\) =>[\s\S]*?\n\}\);\n$/, '});\n'));
    const result = await cli.run(['run', path, '--input', '-', '--db', cli.db], { stdin: '{"amount": 5}' });
    expect(result.code).toBe(2);
    expect(result.err).toContain("Agent 'charger'");
    expect(result.err).toContain('has no model to decide with');
  });

  it('requires --input', async () => {
    const result = await cli.run(['run', 'expense-approval', '--db', cli.db]);
    expect(result.code).toBe(2);
    expect(result.err).toContain("required option '--input <file|->' not specified");
  });
});

describe('a failed workflow, then keel resume', () => {
  it('exits 1 with the saved failure, and resume continues it once the cause is fixed', async () => {
    const agent = writeChargerAgent();
    const failed = await cli.run(['run', agent, '--input', '-', '--json', '--db', cli.db], { stdin: '{"amount": 42}' });
    expect(failed.code).toBe(1);
    const workflow = JSON.parse(failed.out);
    expect(workflow).toMatchObject({ status: 'failed', state: 'charging', steps: 1 });
    expect(workflow.failure).toMatchObject({ code: 'TOOL_FAILED', tool: 'charge', errorClass: 'fatal', context: { quote: { amount: 42, currency: 'EUR' } } });
    expect(failed.err).toContain("model: none (agent 'charger' decides in code)");

    const inspected = await cli.run(['inspect', workflow.id, '--db', cli.db]);
    expect(inspected.out).toMatch(/failure +TOOL_FAILED at step 1 in state 'charging'/);
    expect(inspected.out).toMatch(/saved context +quote \(\d+ B\)/);
    expect(inspected.out).toMatch(/tool-call-failed +charge +fatal +1 .*fatal, the workflow fails: the card service refused the charge: service closed$/m);

    vi.stubEnv('CARD_SERVICE_UP', '1');
    const resumed = await cli.run(['resume', workflow.id, '--json', '--db', cli.db]);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.out)).toMatchObject({ id: workflow.id, status: 'completed', outcome: 'charged', failure: null });

    const again = await cli.run(['resume', workflow.id, '--db', cli.db]);
    expect(again.code).toBe(2);
    expect(again.err).toContain(`Workflow ${workflow.id} is completed; only pending, waiting, failed or crashed workflows can be resumed.`);
  });

  it('resume refuses an unknown id, and an --agent that defines another agent', async () => {
    const agent = writeChargerAgent();
    const failed = JSON.parse((await cli.run(['run', agent, '--input', '-', '--json', '--db', cli.db], { stdin: '{"amount": 1}' })).out);
    const unknown = await cli.run(['resume', 'wf_missing', '--db', cli.db]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("No workflow with id 'wf_missing'");
    const wrongAgent = await cli.run(['resume', failed.id, '--agent', 'expense-approval', '--db', cli.db]);
    expect(wrongAgent.code).toBe(2);
    expect(wrongAgent.err).toContain(`Workflow ${failed.id} runs agent 'charger', but --agent expense-approval is agent 'expense-approval'`);
    expect(JSON.parse((await cli.run(['inspect', failed.id, '--json', '--db', cli.db])).out).status).toBe('failed');
  });

  it('resume names the fix when the recorded agent module is gone', async () => {
    const agent = writeChargerAgent();
    const failed = JSON.parse((await cli.run(['run', agent, '--input', '-', '--json', '--db', cli.db], { stdin: '{"amount": 1}' })).out);
    const moved = join(cli.dir, 'moved-agent.mjs');
    renameSync(agent, moved);
    const refused = await cli.run(['resume', failed.id, '--db', cli.db]);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain(`Unknown agent '${agent}'`);
    expect(refused.err).toContain(`keel resume ${failed.id} --agent <module>`);
    vi.stubEnv('CARD_SERVICE_UP', '1');
    const resumed = await cli.run(['resume', failed.id, '--agent', moved, '--json', '--db', cli.db]);
    expect(JSON.parse(resumed.out)).toMatchObject({ status: 'completed', outcome: 'charged' });
  });
});
