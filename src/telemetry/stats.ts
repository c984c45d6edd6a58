// The production dashboard of `keel stats`: per agent version, how many tasks reached a goal
// state, how they failed, how often a person had to step in, what a task cost, how long it took
// end to end, and how satisfied users were. Read from the store: workflow records, journals (for
// errors, escalations and costs) and the audit log (for ratings). Pruned journals drop out of the
// error, escalation and cost figures; the task counts and latencies stay.

import { versionLabel } from '../agent/define-agent.js';
import type { CallCost } from '../cost/prices.js';
import { JournalKind, type Store } from '../store/types.js';
import { readFeedback } from './feedback.js';

const escalationReasons = new Set(['review', 'approval', 'reauthorization', 'version-mismatch', 'budget', 'cost-breaker']);
const errorKinds = new Set<string>([JournalKind.toolCallFailed, JournalKind.modelCallFailed, JournalKind.actionRefused, JournalKind.toolCallInvalid]);

export interface AgentVersionStats {
  agent: string;
  version: string;
  tasks: number;
  completed: number;
  failed: number;
  /** completed / (completed + failed); null before any task ended. */
  completionRate: number | null;
  errorsByClass: Record<string, number>;
  /** Tasks parked for a person at least once / tasks. */
  escalationRate: number | null;
  costPerTaskUsd: number | null;
  latencyP50Seconds: number | null;
  latencyP95Seconds: number | null;
  satisfaction: { mean: number; ratings: number } | null;
}

export interface ProductionStats {
  since: number | null;
  rows: AgentVersionStats[];
}

export async function productionStats(store: Store, options: { since?: number } = {}): Promise<ProductionStats> {
  const since = options.since;
  const workflows = (await store.listWorkflows({ limit: 1_000_000 })).filter((workflow) => since === undefined || workflow.createdAt >= since);
  type Tally = { stats: AgentVersionStats; latencies: number[]; escalated: number; costUsd: number; scores: number[] };
  const tallies = new Map<string, Tally>();
  const tallyFor = (agent: string, agentVersion: string): Tally => {
    const key = `${agent}\u0000${agentVersion}`;
    let tally = tallies.get(key);
    if (!tally) {
      tally = {
        stats: { agent, version: versionLabel(agentVersion), tasks: 0, completed: 0, failed: 0, completionRate: null, errorsByClass: {}, escalationRate: null, costPerTaskUsd: null, latencyP50Seconds: null, latencyP95Seconds: null, satisfaction: null },
        latencies: [],
        escalated: 0,
        costUsd: 0,
        scores: [],
      };
      tallies.set(key, tally);
    }
    return tally;
  };
  for (const workflow of workflows) {
    const tally = tallyFor(workflow.agent, workflow.agentVersion);
    tally.stats.tasks++;
    if (workflow.status === 'completed') tally.stats.completed++;
    if (workflow.status === 'failed') tally.stats.failed++;
    if (workflow.status === 'completed' || workflow.status === 'failed') tally.latencies.push((workflow.updatedAt - workflow.createdAt) / 1000);
    let escalated = false;
    for (const entry of await store.readJournal(workflow.id)) {
      if (errorKinds.has(entry.kind)) {
        const errorClass = entry.status ?? 'unknown';
        tally.stats.errorsByClass[errorClass] = (tally.stats.errorsByClass[errorClass] ?? 0) + 1;
      } else if (entry.kind === JournalKind.workflowParked && entry.name && escalationReasons.has(entry.name)) {
        escalated = true;
      } else if (entry.kind === JournalKind.actionDecided) {
        tally.costUsd += (entry.data as { decision?: { cost?: CallCost } } | null)?.decision?.cost?.usd ?? 0;
      }
    }
    if (escalated) tally.escalated++;
  }
  for (const rating of await readFeedback(store, since)) tallyFor(rating.agent, rating.agentVersion).scores.push(rating.score);
  const rows = [...tallies.values()].map(({ stats, latencies, escalated, costUsd, scores }) => {
    const ended = stats.completed + stats.failed;
    return {
      ...stats,
      completionRate: ended > 0 ? stats.completed / ended : null,
      escalationRate: stats.tasks > 0 ? escalated / stats.tasks : null,
      costPerTaskUsd: stats.tasks > 0 ? costUsd / stats.tasks : null,
      latencyP50Seconds: percentile(latencies, 0.5),
      latencyP95Seconds: percentile(latencies, 0.95),
      satisfaction: scores.length > 0 ? { mean: scores.reduce((a, b) => a + b, 0) / scores.length, ratings: scores.length } : null,
    };
  });
  rows.sort((a, b) => a.agent.localeCompare(b.agent) || a.version.localeCompare(b.version));
  return { since: since ?? null, rows };
}

/** Nearest-rank percentile; null for no values. */
export function percentile(values: readonly number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}
