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
  keel = createKeel({ store: openSqliteStore({ path: join(directory, 'keel.db') }), agents: [agent], model, ...options });
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
    expect(second.failure!.message).toContain("budget of user 'ana' per day is $0.000500");
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
});
