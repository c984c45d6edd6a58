// User satisfaction: a rating of 1 to 5 (and an optional comment) for a workflow, recorded in the
// audit log as `feedback.given` by the person who gave it. The audit log is the durable, never
// pruned record of who said what about which task, so ratings need no table of their own; reports
// (`keel stats`) and metrics (`keel.satisfaction`) read them from there.

import { KeelError } from '../errors.js';
import type { Store } from '../store/types.js';
import type { KeelMetrics } from './metrics.js';

export const feedbackAuditKind = 'feedback.given';

export interface Feedback {
  workflowId: string;
  score: number;
  comment?: string;
  /** Who rates (default: the workflow's principal). */
  by?: string;
}

export interface RecordedFeedback {
  workflowId: string;
  agent: string;
  agentVersion: string;
  score: number;
  comment: string | null;
  by: string;
  at: number;
}

export async function recordFeedback(store: Store, feedback: Feedback, options: { metrics?: KeelMetrics } = {}): Promise<RecordedFeedback> {
  if (!Number.isInteger(feedback.score) || feedback.score < 1 || feedback.score > 5) {
    throw new KeelError('BAD_INPUT', `A satisfaction score is a whole number from 1 to 5; got ${feedback.score} for workflow ${feedback.workflowId}.`, { workflowId: feedback.workflowId });
  }
  const workflow = await store.getWorkflow(feedback.workflowId);
  if (!workflow) throw new KeelError('UNKNOWN_WORKFLOW', `There is no workflow ${feedback.workflowId} to rate. List workflows with \`keel list\`.`, { workflowId: feedback.workflowId });
  const by = feedback.by ?? workflow.principal.id;
  const [entry] = await store.appendAudit([
    {
      kind: feedbackAuditKind,
      actor: by,
      workflowId: workflow.id,
      subject: workflow.agent,
      outcome: String(feedback.score),
      data: { score: feedback.score, comment: feedback.comment ?? null, agent: workflow.agent, agentVersion: workflow.agentVersion },
    },
  ]);
  options.metrics?.satisfaction.record(feedback.score, { 'gen_ai.agent.name': workflow.agent, 'keel.agent.version': workflow.agentVersion });
  return { workflowId: workflow.id, agent: workflow.agent, agentVersion: workflow.agentVersion, score: feedback.score, comment: feedback.comment ?? null, by, at: entry!.at };
}

/** Every rating in the audit log at or after `since`. */
export async function readFeedback(store: Store, since?: number): Promise<RecordedFeedback[]> {
  // The audit query has no kind filter: this reads the window's entries and keeps the ratings.
  const entries = await store.readAudit({ since, limit: 1_000_000 });
  return entries
    .filter((entry) => entry.kind === feedbackAuditKind)
    .map((entry) => {
      const data = entry.data as { score: number; comment: string | null; agent: string; agentVersion: string };
      return { workflowId: entry.workflowId!, agent: data.agent, agentVersion: data.agentVersion, score: data.score, comment: data.comment, by: entry.actor, at: entry.at };
    });
}
