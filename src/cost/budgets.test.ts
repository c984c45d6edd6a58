// Spend budgets on real runs: a user's daily budget stops that user's workflows at the limit
// (within one call's cost) while another user's go on; a workflow budget fails a workflow when
// the policy says so. Every stop is journaled and audited with its reason.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAgent } from '../agent/define-agent.js';
import { createKeel, type Keel, type KeelOptions } from '../agent/keel.js';
import { scriptedModel } from '../model/scripted-model.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { defineTool } from '../tools/tool.js';
import { costedCalls } from './cost-report.js';
import { calendarPeriod } from './budgets.js';
import { ManualClock } from '../testing.js';

let directory: string;
let keel: Keel | undefined;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-budgets-'));
});

afterEach(async () => {
  await keel?.close();
  keel = undefined;
  rmSync(directory, { recursive: true, force: true });
});

const step = defineTool({ name: 'step', description: 'One step.', input: z.object({ n: z.number() }), execute: ({ n }) => ({ n }) });
const agent = defineAgent({
  name: 'worker-bee',
  version: '1',
  tools: [step],
  initial: 'busy',
  states: {
    busy: { tools: ['step'], next: ['done'], on: { step: (result) => ((result as { n: number }).n >= 7 ? 'done' : 'busy') } },
    done: { final: true },
  },
});

function start(options: Partial<KeelOptions>): Keel {
  const model = scriptedModel((view) => ({ tool: 'step', input: { n: view.step } }), { modelId: 'gpt-4o-mini', provider: 'openai.chat' });
  // A fixed time of day, so that no run straddles midnight and its day budget.
  const clock = new ManualClock(Date.UTC(2026, 10, 27, 12, 0, 0));
  keel = createKeel({ store: openSqliteStore({ path: join(directory, 'keel.db'), clock }), clock, agents: [agent], model, ...options });
  return keel;
}

describe('spend budgets', () => {
  it('stops a user at the daily limit, within one call’s cost, while another user’s workflows continue', async () => {
    // A workflow of eight calls costs about $0.0003-0.0004 here: the limit lets each user finish
    // one workflow, and stops ana's second.
    const limitUsd = 0.0005;
    const keel = start({ budgets: { perUserPerDayUsd: limitUsd, estimateTokens: { inputTokens: 200, outputTokens: 20 } } });
    const ana = { id: 'ana', department: 'claims' };
    const first = await keel.run((await keel.start('worker-bee', {}, { principal: ana })).id);
    const second = await keel.run((await keel.start('worker-bee', {}, { principal: ana })).id);
    const ben = await keel.run((await keel.start('worker-bee', {}, { principal: { id: 'ben' } })).id);

    expect(first.status).toBe('completed');
    expect(second).toMatchObject({ status: 'waiting', waitingFor: 'budget', failure: { code: 'BUDGET_EXCEEDED' } });
    expect(second.failure!.message).toContain("budget of user 'ana' per day (UTC) is $0.000500");
    expect(second.failure!.message).toContain(`keel resume ${second.id}`);
    expect(ben.status).toBe('completed');

    const { calls } = await costedCalls(keel.store);
    const spent = calls.filter((call) => call.user === 'ana').reduce((sum, call) => sum + call.cost.usd, 0);
    const largest = Math.max(...calls.map((call) => call.cost.usd));
    expect(spent).toBeLessThanOrEqual(limitUsd);
    expect(spent).toBeGreaterThan(limitUsd - largest);

    const audited = (await keel.store.readAudit({ workflowId: second.id })).map((entry) => entry.kind);
    expect(audited).toContain('workflow.parked');
  });

  it('fails a workflow over its own budget when the policy says fail', async () => {
    const keel = start({ budgets: { perWorkflowUsd: 0.0001, onExceeded: 'fail', estimateTokens: { inputTokens: 200, outputTokens: 20 } } });
    const final = await keel.run((await keel.start('worker-bee', {})).id);
    expect(final).toMatchObject({ status: 'failed', failure: { code: 'BUDGET_EXCEEDED' } });
    expect(final.failure!.message).toContain(`workflow ${final.id}`);
    expect(final.step).toBeGreaterThan(0);
  });

  it('counts a user\'s day from midnight UTC: a workflow parked late in the day goes on by itself after midnight', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 27, 23, 0, 0));
    const model = scriptedModel((view) => ({ tool: 'step', input: { n: view.step } }), { modelId: 'gpt-4o-mini', provider: 'openai.chat' });
    keel = createKeel({
      store: openSqliteStore({ path: join(directory, 'keel.db'), clock }),
      clock,
      agents: [agent],
      model,
      budgets: { perUserPerDayUsd: 0.0005, estimateTokens: { inputTokens: 200, outputTokens: 20 } },
    });
    const ana = { id: 'ana' };
    expect((await keel.run((await keel.start('worker-bee', {}, { principal: ana })).id)).status).toBe('completed');
    const second = await keel.run((await keel.start('worker-bee', {}, { principal: ana })).id);

    const midnight = Date.UTC(2026, 10, 28);
    expect(second).toMatchObject({ status: 'waiting', waitingFor: 'budget', wakeAt: midnight, failure: { code: 'BUDGET_EXCEEDED' } });
    expect(second.failure!.message).toContain("budget of user 'ana' per day (UTC) is $0.000500");
    expect(second.failure!.message).toContain('The budget renews at 2026-11-28T00:00:00.000Z');
    // Not before its time, even when asked.
    clock.advance(30 * 60 * 1000);
    expect(await keel.run(second.id)).toMatchObject({ status: 'waiting', waitingFor: 'budget' });

    clock.set(midnight + 1000);
    const next = await keel.run(second.id);
    expect(next).toMatchObject({ status: 'completed', failure: null, wakeAt: null });
  });
});

describe('calendarPeriod', () => {
  it('labels the UTC hour, day and month a time falls in and says when the next begins, across a year end', () => {
    const at = Date.UTC(2026, 11, 31, 23, 59, 59, 999);
    expect(calendarPeriod('hour', at)).toEqual({ label: '2026-12-31T23', endsAt: Date.UTC(2027, 0, 1, 0) });
    expect(calendarPeriod('day', at)).toEqual({ label: '2026-12-31', endsAt: Date.UTC(2027, 0, 1) });
    expect(calendarPeriod('month', at)).toEqual({ label: '2026-12', endsAt: Date.UTC(2027, 0, 1) });
    expect(calendarPeriod('month', Date.UTC(2028, 1, 29, 12))).toEqual({ label: '2028-02', endsAt: Date.UTC(2028, 2, 1) });
  });
});
