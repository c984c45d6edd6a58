// Cost attribution: every priced model call, from the decisions in the journals, attributed to
// its workflow, agent, user (the workflow's principal) and department, and summed by one of them
// or by day. The sums are of the costs recorded with each call, never recomputed: a report shows
// what was charged at the time, with the price sources that charged it.
//
// Journals can be pruned (keel prune); a pruned workflow's calls stay in the audit log, not here.

import { JournalKind, type Store, type WorkflowRecord } from '../store/types.js';
import type { CallCost } from './prices.js';
import type { ModelUsage } from '../model/decision.js';

export const CostGrouping = { workflow: 'workflow', user: 'user', department: 'department', agent: 'agent', day: 'day' } as const;
export type CostGrouping = (typeof CostGrouping)[keyof typeof CostGrouping];

/** One priced model call, attributed. */
export interface CostedCall {
  workflowId: string;
  agent: string;
  user: string;
  department: string | null;
  step: number;
  at: number;
  model: string | null;
  usage: ModelUsage | null;
  cost: CallCost;
}

export interface CostLine {
  key: string;
  calls: number;
  usd: number;
  inputTokens: number;
  outputTokens: number;
}

export interface CostReport {
  by: CostGrouping;
  since: number | null;
  lines: CostLine[];
  totalUsd: number;
  calls: number;
  /** Model calls with usage but no known price: their cost is not in the totals. */
  unpriced: number;
  /** Price sources and versions that priced the calls in the report. */
  sources: string[];
}

/** Every priced model call in the store's journals at or after `since`. */
export async function costedCalls(store: Store, options: { since?: number; workflows?: readonly WorkflowRecord[] } = {}): Promise<{ calls: CostedCall[]; unpriced: number }> {
  const workflows = options.workflows ?? (await store.listWorkflows({ limit: 1_000_000 }));
  const calls: CostedCall[] = [];
  let unpriced = 0;
  for (const workflow of workflows) {
    if (options.since !== undefined && workflow.updatedAt < options.since) continue;
    for (const entry of await store.readJournal(workflow.id)) {
      if (entry.kind !== JournalKind.actionDecided || (options.since !== undefined && entry.at < options.since)) continue;
      const decision = (entry.data as { decision?: { model?: string; usage?: ModelUsage; cost?: CallCost } } | null)?.decision;
      if (!decision?.cost) {
        if (decision?.usage) unpriced++;
        continue;
      }
      calls.push({
        workflowId: workflow.id,
        agent: workflow.agent,
        user: workflow.principal.id,
        department: workflow.principal.department ?? null,
        step: entry.step,
        at: entry.at,
        model: decision.model ?? null,
        usage: decision.usage ?? null,
        cost: decision.cost,
      });
    }
  }
  return { calls, unpriced };
}

export async function costReport(store: Store, options: { by?: CostGrouping; since?: number } = {}): Promise<CostReport> {
  const by = options.by ?? CostGrouping.agent;
  const { calls, unpriced } = await costedCalls(store, { since: options.since });
  const lines = new Map<string, CostLine>();
  const sources = new Set<string>();
  for (const call of calls) {
    const key = groupKey(call, by);
    const line = lines.get(key) ?? { key, calls: 0, usd: 0, inputTokens: 0, outputTokens: 0 };
    line.calls++;
    line.usd += call.cost.usd;
    line.inputTokens += call.usage?.inputTokens ?? 0;
    line.outputTokens += call.usage?.outputTokens ?? 0;
    lines.set(key, line);
    sources.add(`${call.cost.source}@${call.cost.sourceVersion}`);
  }
  const sorted = [...lines.values()].sort((a, b) => (by === CostGrouping.day ? a.key.localeCompare(b.key) : b.usd - a.usd || a.key.localeCompare(b.key)));
  return {
    by,
    since: options.since ?? null,
    lines: sorted,
    totalUsd: calls.reduce((sum, call) => sum + call.cost.usd, 0),
    calls: calls.length,
    unpriced,
    sources: [...sources].sort(),
  };
}

function groupKey(call: CostedCall, by: CostGrouping): string {
  switch (by) {
    case CostGrouping.workflow:
      return call.workflowId;
    case CostGrouping.user:
      return call.user;
    case CostGrouping.department:
      return call.department ?? '(none)';
    case CostGrouping.agent:
      return call.agent;
    case CostGrouping.day:
      return new Date(call.at).toISOString().slice(0, 10);
  }
}
