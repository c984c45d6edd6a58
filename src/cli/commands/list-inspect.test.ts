// keel list and keel inspect on workflows that keel run stored: the table and the timeline a
// person reads, and the JSON shapes programs rely on.

import { describe, expect, it } from 'vitest';
import { useCliWorkspace } from '../../../test/support/cli-harness.js';
import { repositoryFilePath } from '../package-files.js';

const cli = useCliWorkspace();

async function runClaim(name: string): Promise<{ id: string; outcome: string }> {
  const input = repositoryFilePath(`examples/expense-approval/claims/${name}.json`)!;
  const result = await cli.run(['run', 'expense-approval', '--input', input, '--json', '--db', cli.db]);
  expect(result.code).toBe(0);
  return JSON.parse(result.out);
}

describe('keel list', () => {
  it('shows every workflow as a table row, and as JSON', async () => {
    const paid = await runClaim('clean-claim');
    const rejected = await runClaim('malformed-claim');
    const table = await cli.run(['list', '--db', cli.db]);
    expect(table.code).toBe(0);
    const [header, ...rows] = table.out.trimEnd().split('\n');
    expect(header).toMatch(/^ID +AGENT +STATUS +STATE +OUTCOME +STEPS +UPDATED$/);
    expect(rows).toHaveLength(2);
    expect(rows.find((row) => row.startsWith(paid.id))).toMatch(/expense-approval +completed +paid +paid +4 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    expect(rows.find((row) => row.startsWith(rejected.id))).toMatch(/completed +rejected +rejected +2 /);

    const json = JSON.parse((await cli.run(['list', '--json', '--db', cli.db])).out);
    expect(json.map((workflow: { id: string }) => workflow.id).sort()).toEqual([paid.id, rejected.id].sort());
    expect(json[0]).toMatchObject({ agent: 'expense-approval', status: 'completed', principal: 'anonymous' });
    expect(Object.keys(json[0])).toEqual(expect.arrayContaining(['id', 'status', 'state', 'outcome', 'steps', 'createdAt', 'updatedAt']));
  });

  it('filters by --status and refuses a status that does not exist', async () => {
    await runClaim('clean-claim');
    const failed = await cli.run(['list', '--status', 'failed', '--db', cli.db]);
    expect(failed.code).toBe(0);
    expect(failed.out).toBe(`No failed workflows in ${cli.db}.\n`);
    const completed = JSON.parse((await cli.run(['list', '--status', 'completed', '--json', '--db', cli.db])).out);
    expect(completed).toHaveLength(1);

    const bogus = await cli.run(['list', '--status', 'done', '--db', cli.db]);
    expect(bogus.code).toBe(2);
    expect(bogus.err).toContain("argument 'done' is invalid. Allowed choices are pending, running, waiting, completed, failed, cancelled.");
    expect(bogus.out).toBe('');
  });
});

describe('keel inspect', () => {
  it('prints the header and one timeline line per journal entry', async () => {
    const { id } = await runClaim('clean-claim');
    const result = await cli.run(['inspect', id, '--db', cli.db]);
    expect(result.code).toBe(0);
    expect(result.out).toContain(`Workflow ${id}\n`);
    expect(result.out).toMatch(/ agent +expense-approval@1 \(1#[0-9a-f]+\)/);
    expect(result.out).toMatch(/ principal +anonymous/);
    expect(result.out).toMatch(/ outcome +paid/);

    const journal = JSON.parse((await cli.run(['inspect', id, '--json', '--db', cli.db])).out).journal;
    const timeline = result.out.slice(result.out.indexOf('Timeline'));
    const lines = timeline.trimEnd().split('\n').slice(2);
    expect(timeline).toContain(`Timeline (${journal.length} entries)`);
    expect(lines).toHaveLength(journal.length);
    expect(lines[0]).toMatch(/^\+0\.\d{3}s +0 +workflow-started +expense-approval +pending +state intake, for anonymous$/);
    expect(lines.find((line) => line.includes('action-decided') && line.includes('pay_claim'))).toMatch(/model +\d+ ms +\d+\/\d+ +confidence 0\.\d\d: Claim C-1-0001 passed the policy check/);
    expect(lines.find((line) => line.includes('checkpoint-saved'))).toContain('before a side effect, in state payment');
    expect(lines.find((line) => line.includes('tool-call-completed') && line.includes('pay_claim'))).toMatch(/pay_claim +ok +1 +\d+ ms +result \{"paymentId":"pay_/);
    expect(lines).toContainEqual(expect.stringMatching(/state-changed +payment +review -> payment$/));
    expect(lines.at(-1)).toMatch(/workflow-completed +paid +completed +outcome paid$/);
  });

  it('gives programs the workflow and its whole journal as one JSON object', async () => {
    const { id } = await runClaim('malformed-claim');
    const result = await cli.run(['inspect', id, '--json', '--db', cli.db]);
    expect(result.code).toBe(0);
    const inspection = JSON.parse(result.out);
    expect(inspection).toMatchObject({ id, agent: 'expense-approval', status: 'completed', state: 'rejected', outcome: 'rejected', failure: null });
    expect(inspection.journal.map((entry: { kind: string }) => entry.kind)).toEqual([
      'workflow-started',
      'action-decided',
      'tool-call-failed',
      'action-decided',
      'tool-call-completed',
      'state-changed',
      'workflow-completed',
    ]);
    const failure = inspection.journal[2];
    expect(failure).toMatchObject({ step: 0, name: 'extract_claim', status: 'invalid-input', attempt: 1 });
    expect(failure.data.message).toContain("the 'Payee:' line is missing");
  });

  it('exits 2 for an unknown id, and names keel list', async () => {
    await runClaim('clean-claim');
    const result = await cli.run(['inspect', 'wf_nope', '--db', cli.db]);
    expect(result.code).toBe(2);
    expect(result.err).toBe("keel: No workflow with id 'wf_nope' in this database. Run `keel list` to see the workflows it holds (and check --db/KEEL_DB).\n");
    expect(result.out).toBe('');
  });
});
