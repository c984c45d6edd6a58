// The cost circuit breaker on real runs: it trips on a spend spike and on an error-rate spike,
// refuses new workflows and parks running ones before their next model call, and recovers
// after an operator's reset (or its cool-down).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAgent } from '../agent/define-agent.js';
import { createKeel, type Keel, type KeelOptions } from '../agent/keel.js';
import { KeelError } from '../errors.js';
import { scriptedModel } from '../model/scripted-model.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { defineTool } from '../tools/tool.js';
import { ToolError } from '../tools/tool-error.js';
import { ManualClock } from '../util/clock.js';
import { CostBreaker } from './cost-breaker.js';

let directory: string;
let keel: Keel | undefined;
let clock: ManualClock;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-cost-breaker-'));
  clock = new ManualClock();
});

afterEach(async () => {
  await keel?.close();
  keel = undefined;
  rmSync(directory, { recursive: true, force: true });
});

const lookup = defineTool({ name: 'lookup', description: 'Looks up.', input: z.object({ q: z.string() }), execute: ({ q }) => ({ q }) });
const flaky = defineTool({
  name: 'flaky',
  description: 'Always refuses its input.',
  input: z.object({ q: z.string() }),
  execute: () => {
    throw new ToolError('invalid-input', 'the query is not understood');
  },
});
const agent = defineAgent({
  name: 'asker',
  version: '1',
  tools: [lookup, flaky],
  initial: 'asking',
  maxSteps: 30,
  states: {
    asking: { tools: ['lookup', 'flaky'], next: ['done'], on: { lookup: 'done' } },
    done: { final: true },
  },
});

function start(options: Partial<KeelOptions>): Keel {
  const model = scriptedModel((view) => ({ tool: (view.input as { tool: string }).tool, input: { q: 'x' } }), { modelId: 'gpt-4o-mini', provider: 'openai.chat' });
  keel = createKeel({ store: openSqliteStore({ path: join(directory, 'keel.db'), clock }), agents: [agent], model, clock, ...options });
  return keel;
}

describe('the cost circuit breaker', () => {
  it('trips on a spend spike, refuses new workflows, parks running ones, and recovers after a reset', async () => {
    // One call costs about $0.00003: the second call takes the hour's spend over the limit.
    const keel = start({ costBreaker: { maxSpendPerHourUsd: 0.00004 } });
    const waiting = (await keel.start('asker', { tool: 'lookup' })).id;
    expect((await keel.run((await keel.start('asker', { tool: 'lookup' })).id)).status).toBe('completed');
    expect((await keel.run((await keel.start('asker', { tool: 'lookup' })).id)).status).toBe('completed');

    const parked = await keel.run(waiting);
    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'cost-breaker', failure: { code: 'COST_BREAKER_OPEN' } });
    expect(parked.failure!.message).toContain('model spend over the last hour');
    expect(parked.failure!.message).toContain('keel breaker reset');
    expect(parked.failure!.message).toContain('The reset puts this workflow back to work.');
    expect(parked.wakeAt).toBeNull();
    const refused = await keel.start('asker', { tool: 'lookup' }).catch((error: unknown) => error);
    expect(KeelError.isInstance(refused) && refused.code).toBe('COST_BREAKER_OPEN');

    const operator = new CostBreaker({}, keel.store, () => clock.now());
    expect(operator.status()).toMatchObject({ state: 'open' });
    const requeued = await keel.resetCostBreaker({ by: 'ops-lead' });
    expect(operator.status()).toMatchObject({ state: 'closed', spendLastHourUsd: 0 });
    expect(requeued.map((workflow) => [workflow.id, workflow.status, workflow.failure])).toEqual([[waiting, 'pending', null]]);
    const audit = await keel.store.readAudit({ workflowId: waiting });
    expect(audit.at(-1)).toMatchObject({ kind: 'workflow.resumed', actor: 'ops-lead', data: { waitingFor: 'cost-breaker' } });
    expect((await keel.run(waiting)).status).toBe('completed');
    // The trip and the reset are in the audit log, each with who changed it and why.
    const changes = (await keel.store.readAudit({})).filter((entry) => entry.kind === 'cost-breaker.changed');
    expect(changes).toMatchObject([
      { actor: expect.stringMatching(/^keel:/), subject: 'cost', outcome: 'open', data: { from: 'closed', to: 'open', reason: expect.stringContaining('model spend over the last hour') } },
      { actor: 'ops-lead', subject: 'cost', outcome: 'closed', data: { from: 'open', to: 'closed', reason: 'reset by an operator', by: 'ops-lead' } },
    ]);
  });

  it('trips on an error-rate spike and closes by itself after its cool-down', async () => {
    const keel = start({ costBreaker: { maxErrorRate: 0.4, minCalls: 4, coolDownMs: 60_000 } });
    const openedAt = clock.now();
    const failing = await keel.run((await keel.start('asker', { tool: 'flaky' })).id);
    expect(failing).toMatchObject({ status: 'waiting', waitingFor: 'cost-breaker', wakeAt: openedAt + 60_000 });
    expect(failing.failure!.message).toMatch(/\d+% of the last \d+ calls failed/);
    expect(failing.failure!.message).toContain(`it closes by itself at ${new Date(openedAt + 60_000).toISOString()}`);
    expect(failing.failure!.message).toContain('This workflow goes on by itself when the breaker closes.');
    expect(failing.step).toBeGreaterThanOrEqual(2);
    await expect(keel.start('asker', { tool: 'lookup' })).rejects.toThrow(/cost circuit breaker is open/);

    clock.advance(60_000);
    expect((await keel.run((await keel.start('asker', { tool: 'lookup' })).id)).status).toBe('completed');
    // The parked one woke by itself and went on (its tool still fails, so it trips the breaker again, later).
    const woken = await keel.run(failing.id);
    expect(woken.step).toBeGreaterThan(failing.step);
    const changes = (await keel.store.readAudit({})).filter((entry) => entry.kind === 'cost-breaker.changed').map((entry) => [entry.outcome, (entry.data as { reason: string }).reason]);
    expect(changes.slice(0, 2)).toEqual([
      ['open', expect.stringMatching(/% of the last \d+ calls failed/)],
      ['closed', 'its cool-down of 60 s ended'],
    ]);
  });

  it('forgets the events no window reaches any more, so its table does not grow with every commit', async () => {
    const store = openSqliteStore({ path: join(directory, 'events.db'), clock });
    const breaker = new CostBreaker({ maxSpendPerHourUsd: 10, errorWindowMs: 60_000 }, store, () => clock.now());
    for (let call = 0; call < 50; call++) breaker.recordSpend(0.01);
    clock.advance(60 * 60 * 1000 + 60_000);
    breaker.recordSpend(0.02);

    expect(breaker.status()).toMatchObject({ state: 'closed', spendLastHourUsd: 0.02 });
    const rows = (store.db.prepare('SELECT count(*) AS n FROM keel_cost_breaker_events').get() as { n: number }).n;
    expect(rows).toBe(1);
    await store.close();
  });
});
