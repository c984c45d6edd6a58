// keel feedback and keel stats end to end: ratings land in the audit log, and the dashboard's
// figures are those of the workflows run (completion rate, errors by class, cost per task,
// latency percentiles, satisfaction), per agent version.

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAgent } from '../src/agent/define-agent.js';
import { createKeel } from '../src/agent/keel.js';
import { costedCalls } from '../src/cost/cost-report.js';
import { scriptedModel } from '../src/model/scripted-model.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { percentile } from '../src/telemetry/stats.js';
import { defineTool, ToolError } from '../src/index.js';
import { useCliWorkspace } from './support/cli-harness.js';

const workspace = useCliWorkspace();

const lookup = defineTool({ name: 'lookup', description: 'Looks up.', input: z.object({ q: z.string() }), execute: ({ q }) => ({ q }) });
const charge = defineTool({
  name: 'charge',
  description: 'Charges.',
  input: z.object({ q: z.string() }),
  execute: () => {
    throw new ToolError('fatal', 'the card was declined');
  },
});
const agent = defineAgent({
  name: 'shop',
  version: '2',
  tools: [lookup, charge],
  initial: 'looking',
  states: { looking: { tools: ['lookup', 'charge'], next: ['done'], on: { lookup: 'done' } }, done: { final: true } },
});

describe('keel feedback and keel stats', () => {
  it('records ratings and reports completion, errors, cost, latency and satisfaction per agent version', async () => {
    const store = openSqliteStore({ path: workspace.db });
    const model = scriptedModel((view) => ({ tool: (view.input as { tool: string }).tool, input: { q: 'x' } }), { modelId: 'gpt-4o-mini', provider: 'openai.chat' });
    const keel = createKeel({ store, agents: [agent], model });
    const ok = await keel.run((await keel.start('shop', { tool: 'lookup' }, { principal: { id: 'ana' } })).id);
    const failed = await keel.run((await keel.start('shop', { tool: 'charge' })).id);
    const { calls } = await costedCalls(store);
    await keel.close();
    expect([ok.status, failed.status]).toEqual(['completed', 'failed']);

    expect((await workspace.run(['feedback', ok.id, '--score', '4', '--comment', 'quick', '--db', workspace.db])).out).toContain(`Recorded 4/5 from ana for workflow ${ok.id}`);
    expect((await workspace.run(['feedback', failed.id, '--score', '2', '--by', 'ben', '--db', workspace.db])).code).toBe(0);
    const bad = await workspace.run(['feedback', ok.id, '--score', '6', '--db', workspace.db]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('a score is a whole number from 1 to 5');
    const audit = JSON.parse((await workspace.run(['audit', '--json', '--db', workspace.db])).out) as { kind: string; actor: string; data: { score: number } }[];
    expect(audit.filter((entry) => entry.kind === 'feedback.given').map((entry) => [entry.actor, entry.data.score])).toEqual([
      ['ana', 4],
      ['ben', 2],
    ]);

    const { out, code } = await workspace.run(['stats', '--json', '--db', workspace.db]);
    expect(code).toBe(0);
    const [row, ...others] = (JSON.parse(out) as { rows: Record<string, unknown>[] }).rows;
    expect(others).toEqual([]);
    expect(row).toMatchObject({ agent: 'shop', version: '2', tasks: 2, completed: 1, failed: 1, completionRate: 0.5, errorsByClass: { fatal: 1 }, escalationRate: 0, satisfaction: { mean: 3, ratings: 2 } });
    expect(row!.costPerTaskUsd as number).toBeCloseTo(calls.reduce((sum, call) => sum + call.cost.usd, 0) / 2, 12);
    expect(row!.latencyP95Seconds as number).toBeGreaterThanOrEqual(row!.latencyP50Seconds as number);

    const table = await workspace.run(['stats', '--db', workspace.db]);
    expect(table.out).toMatch(/shop\s+2\s+2\s+50\.0%/);
  });

  it('takes nearest-rank percentiles', () => {
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([3, 1, 2, 4], 0.5)).toBe(2);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95)).toBe(10);
  });
});
