// keel worker, in-process, on workflows started through the library API: it imports each
// workflow's agent from the module the workflow recorded (or takes --agent), needs
// EXPENSE_PAYMENTS_URL for the expense-approval example instead of starting a throwaway
// payments service, and on SIGINT finishes the step in flight and hands the workflow back.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sampleClaims } from '../../../examples/expense-approval/claims.js';
import { startPaymentsService, type PaymentsService } from '../../../examples/expense-approval/payments-service.js';
import { chargerAgentSource, keelSourceUrl, useCliWorkspace } from '../../../test/support/cli-harness.js';
import { createKeel } from '../../agent/keel.js';
import type { Agent } from '../../agent/define-agent.js';
import { openSqliteStore } from '../../store/sqlite/sqlite-store.js';
import { loadAgent } from '../agent-loader.js';

const cli = useCliWorkspace();
let payments: PaymentsService | undefined;

afterEach(async () => {
  await payments?.close();
  payments = undefined;
});

/** Starts workflows the way a program embedding Keel does; `module` is what a worker imports later. */
async function startWorkflows(agent: Agent, module: string | null, inputs: unknown[]): Promise<string[]> {
  const keel = createKeel({ store: openSqliteStore({ path: cli.db }) });
  keel.register(agent, module);
  const ids: string[] = [];
  for (const input of inputs) ids.push((await keel.start(agent.name, input)).id);
  await keel.close();
  return ids;
}

async function inspect(id: string) {
  return JSON.parse((await cli.run(['inspect', id, '--json', '--db', cli.db])).out);
}

describe('keel worker --once with the expense-approval example', () => {
  it('runs every pending workflow, paying through EXPENSE_PAYMENTS_URL, then stops', async () => {
    const samples = sampleClaims(6, 5);
    const expense = await loadAgent('expense-approval', cli.dir);
    const ids = await startWorkflows(expense.agent, expense.module, samples.map((sample) => sample.input));
    payments = await startPaymentsService();
    vi.stubEnv('EXPENSE_PAYMENTS_URL', payments.url);

    const result = await cli.run(['worker', '--once', '--concurrency', '2', '--db', cli.db]);
    expect(result.code, result.err).toBe(0);
    // Payments the finance group must approve wait; the rest finish.
    const held = samples.filter((sample) => sample.needsApproval).length;
    expect(held).toBeGreaterThan(0);
    const lines = result.out.trimEnd().split('\n');
    expect(lines.filter((line) => line.startsWith('completed  wf_'))).toHaveLength(samples.length - held);
    expect(lines.filter((line) => /^waiting +wf_\w+ .* waiting for approval$/.test(line))).toHaveLength(held);
    expect(lines.at(-1)).toBe(`worker: nothing left to run; ran ${samples.length} workflows (${samples.length - held} completed, ${held} waiting).`);
    expect(result.err).toContain("worker: agent 'expense-approval' (builtin:expense-approval): model: scripted");

    // Finance approves them; the next worker pays them.
    expect((await cli.run(['principals', 'add', 'fiona@finance', '--role', 'finance', '--by', 'ops', '--db', cli.db])).code).toBe(0);
    const requests = JSON.parse((await cli.run(['approvals', '--json', '--db', cli.db])).out) as { id: string }[];
    expect(requests).toHaveLength(held);
    for (const request of requests) expect((await cli.run(['approve', request.id, '--by', 'fiona@finance', '--db', cli.db])).code).toBe(0);
    const second = await cli.run(['worker', '--once', '--concurrency', '2', '--db', cli.db]);
    expect(second.code, second.err).toBe(0);
    expect(second.out.trimEnd().split('\n').at(-1)).toBe(`worker: nothing left to run; ran ${held} workflows (${held} completed).`);

    for (const [index, id] of ids.entries()) expect((await inspect(id)).outcome).toBe(samples[index]!.expected);
    expect(payments.ledger().map((payment) => payment.claimId).sort()).toEqual(
      samples.filter((sample) => sample.expected === 'paid').map((sample) => sample.input.claimId).sort(),
    );
  });

  it('refuses to start without EXPENSE_PAYMENTS_URL and leaves the workflows pending', async () => {
    const expense = await loadAgent('expense-approval', cli.dir);
    const ids = await startWorkflows(expense.agent, expense.module, sampleClaims(2, 5).map((sample) => sample.input));
    const result = await cli.run(['worker', '--once', '--db', cli.db]);
    expect(result.code).toBe(2);
    expect(result.err).toContain('2 workflows of the expense-approval example are waiting to run');
    expect(result.err).toContain('EXPENSE_PAYMENTS_URL is not set. A worker does not start a throwaway payments service');
    for (const id of ids) expect((await inspect(id)).status).toBe('pending');

    const preloaded = await cli.run(['worker', '--once', '--agent', 'expense-approval', '--db', cli.db]);
    expect(preloaded.code).toBe(2);
    expect(preloaded.err).toContain('--agent expense-approval was given');
  });
});

describe('keel worker and agent modules', () => {
  it('parks a workflow whose agent module it cannot know, and runs it with --agent', async () => {
    vi.stubEnv('CARD_SERVICE_UP', '1');
    const path = join(cli.dir, 'charger-agent.mjs');
    writeFileSync(path, chargerAgentSource());
    const charger = await loadAgent(path, cli.dir);
    const [withoutModule] = await startWorkflows(charger.agent, null, [{ amount: 3 }]);

    const parked = await cli.run(['worker', '--once', '--db', cli.db]);
    expect(parked.code).toBe(0);
    expect(parked.out).toContain(`waiting    ${withoutModule}  charger  step 0  waiting for unknown-agent`);
    expect((await inspect(withoutModule!)).failure.message).toContain('keel worker --agent <module>');

    const [recorded] = await startWorkflows(charger.agent, path, [{ amount: 4 }]);
    const ran = await cli.run(['worker', '--once', '--db', cli.db]);
    expect(ran.out).toContain(`completed  ${recorded}  charger  step 2  outcome charged`);

    const resumed = await cli.run(['resume', withoutModule!, '--agent', path, '--json', '--db', cli.db]);
    expect(JSON.parse(resumed.out)).toMatchObject({ status: 'completed', outcome: 'charged' });
  });

  it('exits 1 when a workflow it ran failed', async () => {
    const path = join(cli.dir, 'charger-agent.mjs');
    writeFileSync(path, chargerAgentSource());
    const charger = await loadAgent(path, cli.dir);
    const [id] = await startWorkflows(charger.agent, path, [{ amount: 5 }]);
    const result = await cli.run(['worker', '--once', '--agent', path, '--db', cli.db]);
    expect(result.code).toBe(1);
    expect(result.out).toContain(`failed     ${id}  charger  step 1  TOOL_FAILED: Tool 'charge' failed (fatal`);
    expect(result.out).toContain('(1 failed)');
  });
});

describe('stopping a worker', () => {
  it('on SIGINT finishes the step in flight and hands the workflow back as pending', async () => {
    const gate = deferred();
    const entered = deferred();
    Object.assign(globalThis, { keelWorkerTestGate: { gate: gate.promise, entered: entered.resolve } });
    const path = join(cli.dir, 'gated-agent.mjs');
    writeFileSync(path, gatedAgentSource());
    const gated = await loadAgent(path, cli.dir);
    const [id] = await startWorkflows(gated.agent, path, [{}]);

    const worker = cli.run(['worker', '--poll-ms', '10', '--db', cli.db]);
    await entered.promise;
    process.emit('SIGINT');
    gate.resolve();
    const result = await worker;

    expect(result.code).toBe(0);
    expect(result.err).toContain('worker: SIGINT: finishing the steps in flight, then stopping');
    expect(result.out).toContain(`pending    ${id}  gated  step 1  handed back`);
    expect(result.out).toContain('worker: stopped on request; ran 1 workflow (1 handed back).');
    const workflow = await inspect(id!);
    expect(workflow).toMatchObject({ status: 'pending', state: 'finishing', steps: 1 });
    expect(workflow.journal.map((entry: { kind: string }) => entry.kind)).toContain('tool-call-completed');
    expect(process.listenerCount('SIGINT')).toBe(0);

    const finished = await cli.run(['worker', '--once', '--db', cli.db]);
    expect(finished.out).toContain(`completed  ${id}  gated  step 2  outcome done`);
    expect((await inspect(id!)).journal.map((entry: { kind: string }) => entry.kind)).not.toContain('workflow-recovered');
  });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((settle) => (resolve = settle));
  return { promise, resolve };
}

/** An agent whose first tool waits for the test's gate, so a stop request arrives while it is in flight. */
function gatedAgentSource(): string {
  return `
import { z } from 'zod';
import { defineAgent, defineTool } from '${keelSourceUrl}';

const slow = defineTool({
  name: 'slow',
  description: 'Waits for the test.',
  input: z.object({}),
  execute: async () => {
    globalThis.keelWorkerTestGate.entered();
    await globalThis.keelWorkerTestGate.gate;
    return { waited: true };
  },
});
const finish = defineTool({ name: 'finish', description: 'Finishes.', input: z.object({}), execute: async () => ({ done: true }) });

export default defineAgent({
  name: 'gated',
  tools: [slow, finish],
  initial: 'waiting',
  states: {
    waiting: { tools: ['slow'], next: ['finishing'], on: { slow: 'finishing' } },
    finishing: { tools: ['finish'], next: ['done'], on: { finish: 'done' } },
    done: { final: true },
  },
  decide: (view) => ({ tool: view.state === 'waiting' ? 'slow' : 'finish', args: {} }),
});
`;
}

describe('keel worker --metrics-port', () => {
  it('serves Prometheus metrics on 127.0.0.1 while it runs, and closes the endpoint when it stops', async () => {
    const samples = sampleClaims(4, 7);
    const expense = await loadAgent('expense-approval', cli.dir);
    await startWorkflows(expense.agent, expense.module, samples.map((sample) => sample.input));
    // Slow payments keep the worker running while the test scrapes.
    payments = await startPaymentsService({ latencyMs: 150 });
    vi.stubEnv('EXPENSE_PAYMENTS_URL', payments.url);
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const url = `http://127.0.0.1:${port}/metrics`;

    let finished = false;
    const worker = cli.run(['worker', '--once', '--concurrency', '1', '--metrics-port', String(port), '--db', cli.db]).finally(() => (finished = true));
    let scraped = '';
    while (!finished && !/^keel_task_completions_total\{.*\} [1-9]/m.test(scraped)) {
      scraped = await fetch(url).then((response) => response.text(), () => '');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const result = await worker;
    expect(result.code, result.err).toBe(0);
    expect(result.err).toContain(`worker: serving metrics on ${url}`);
    expect(scraped).toMatch(/^keel_task_completions_total\{.*keel_task_outcome="success".*\} [1-9]/m);
    expect(scraped).toMatch(/^keel_tool_duration_seconds_count\{|^keel_tool_duration_count\{/m);
    await expect(fetch(url)).rejects.toThrow();
  });
});
