// Cost attribution end to end: workflows of two users run on a priced model; every decision's
// journal entry and audit entry carry the call's cost and price source; `keel costs` sums
// exactly those recorded costs, and they equal the price table times the token counts.

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAgent } from '../src/agent/define-agent.js';
import { createKeel } from '../src/agent/keel.js';
import { CostBreaker } from '../src/cost/cost-breaker.js';
import { costReport } from '../src/cost/cost-report.js';
import type { CallCost } from '../src/cost/prices.js';
import type { ModelUsage } from '../src/model/decision.js';
import { scriptedModel } from '../src/model/scripted-model.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { defineTool } from '../src/tools/tool.js';
import { useCliWorkspace } from './support/cli-harness.js';

const workspace = useCliWorkspace();

// gpt-4o-mini in the bundled data of @pydantic/genai-prices 0.1.8, USD per million tokens (no cache use here).
const rates = { input: 0.15, output: 0.6 };

const lookup = defineTool({ name: 'lookup', description: 'Looks something up.', input: z.object({ q: z.string() }), execute: ({ q }) => ({ found: q }) });
const agent = defineAgent({
  name: 'researcher',
  version: '1',
  tools: [lookup],
  initial: 'searching',
  states: {
    searching: { tools: ['lookup'], next: ['done'], on: { lookup: 'done' } },
    done: { final: true },
  },
});

async function runWorkflows(): Promise<void> {
  const store = openSqliteStore({ path: workspace.db });
  const model = scriptedModel((view) => ({ tool: 'lookup', input: { q: `question ${view.workflowId}` } }), { modelId: 'gpt-4o-mini', provider: 'openai.chat' });
  const keel = createKeel({ store, agents: [agent], model });
  try {
    for (const principal of [
      { id: 'ana', department: 'claims' },
      { id: 'ana', department: 'claims' },
      { id: 'ben', department: 'sales' },
    ]) {
      const { id } = await keel.start('researcher', {}, { principal });
      expect((await keel.run(id)).status).toBe('completed');
    }
  } finally {
    await keel.close();
  }
}

describe('keel costs', () => {
  it('sums the per-call costs recorded with each decision, and those are the price table times the tokens', async () => {
    await runWorkflows();
    const store = openSqliteStore({ path: workspace.db });
    const perCall: { workflowId: string; user: string; usd: number; expected: number; cost: CallCost }[] = [];
    try {
      for (const workflow of await store.listWorkflows()) {
        for (const entry of await store.readJournal(workflow.id)) {
          if (entry.kind !== 'action-decided') continue;
          const decision = (entry.data as { decision: { usage: ModelUsage; cost: CallCost } }).decision;
          expect(decision.cost).toMatchObject({ source: 'genai-prices', sourceVersion: '0.1.8', pricedModel: 'openai/gpt-4o-mini' });
          expect(entry.tokensIn).toBe(decision.usage.inputTokens);
          const expected = (decision.usage.inputTokens * rates.input + decision.usage.outputTokens * rates.output) / 1e6;
          perCall.push({ workflowId: workflow.id, user: workflow.principal.id, usd: decision.cost.usd, expected, cost: decision.cost });
        }
      }
      // The audit keeps the cost with the decision, so it survives journal pruning.
      const audited = (await store.readAudit({})).filter((entry) => entry.kind === 'decision.made');
      expect(audited.map((entry) => (entry.data as { cost?: CallCost }).cost)).toEqual(perCall.map((call) => call.cost));
      const report = await costReport(store, { by: 'department' });
      expect(report.lines.map((line) => line.key).sort()).toEqual(['claims', 'sales']);
    } finally {
      await store.close();
    }
    expect(perCall).toHaveLength(3);
    for (const call of perCall) expect(call.usd).toBeCloseTo(call.expected, 12);

    const { code, out } = await workspace.run(['costs', '--by', 'user', '--json', '--db', workspace.db]);
    expect(code).toBe(0);
    const report = JSON.parse(out) as { lines: { key: string; calls: number; usd: number }[]; totalUsd: number; calls: number; sources: string[] };
    const sumFor = (user: string) => perCall.filter((call) => call.user === user).reduce((sum, call) => sum + call.usd, 0);
    expect(report.calls).toBe(3);
    expect(report.sources).toEqual(['genai-prices@0.1.8']);
    expect(report.lines.find((line) => line.key === 'ana')).toMatchObject({ calls: 2 });
    expect(report.lines.find((line) => line.key === 'ana')!.usd).toBeCloseTo(sumFor('ana'), 15);
    expect(report.lines.find((line) => line.key === 'ben')!.usd).toBeCloseTo(sumFor('ben'), 15);
    expect(report.totalUsd).toBeCloseTo(sumFor('ana') + sumFor('ben'), 15);

    const table = await workspace.run(['costs', '--by', 'day', '--db', workspace.db]);
    expect(table.code).toBe(0);
    expect(table.out).toContain(new Date().toISOString().slice(0, 10));
    expect(table.out).toContain('genai-prices@0.1.8');
  });

  it('keel breaker status shows an open cost breaker and why; keel breaker reset closes it', async () => {
    const store = openSqliteStore({ path: workspace.db });
    try {
      const breaker = new CostBreaker({ maxSpendPerHourUsd: 1 }, store, Date.now);
      breaker.recordSpend(1.5);
      expect(breaker.refusal()!.message).toContain('over the limit of $1.000000');
    } finally {
      await store.close();
    }
    const open = await workspace.run(['breaker', 'status', '--json', '--db', workspace.db]);
    expect(open.code).toBe(0);
    expect(JSON.parse(open.out)).toMatchObject({ state: 'open', spendLastHourUsd: 1.5 });
    expect((await workspace.run(['breaker', 'status', '--db', workspace.db])).out).toMatch(/state\s+open/);

    const reset = await workspace.run(['breaker', 'reset', '--by', 'ops-lead', '--db', workspace.db]);
    expect(reset.code, reset.err).toBe(0);
    expect(reset.out).toBe('Cost circuit breaker closed. No workflow was waiting for it.\n');
    const closed = await workspace.run(['breaker', 'status', '--json', '--db', workspace.db]);
    expect(JSON.parse(closed.out)).toMatchObject({ state: 'closed', reason: null, spendLastHourUsd: 0 });
  });
});
