// Rebuilds what a worker needs from a workflow's journal when it picks the workflow up: the
// observations the decider has seen, and the action already decided for the current step (so a
// resumed step re-runs that same action instead of paying for a new, possibly different decision).

import type { DecisionRecord, Observation } from '../model/decision.js';
import { JournalKind, type JournalEntry } from '../store/types.js';

export interface Replayed {
  history: Observation[];
  /** The decision recorded for `step` whose outcome was never committed. */
  pendingDecision?: DecisionRecord;
  /** Attempts of the pending decision's tool call already made (and failed) before. */
  attemptsMade: number;
  /** When the first of those attempts started: the total-time cap on retries counts from it. */
  firstAttemptAt?: number;
  /** The class of the last failed attempt (a second auth-expired in a row is not retried). */
  lastErrorClass?: string;
  /** The pending call completed but its step did not: its result, so the call never runs twice. */
  completed?: { result: unknown; attempt: number; fallback?: unknown };
}

export function replayJournal(journal: readonly JournalEntry[], step: number): Replayed {
  const history: Observation[] = [];
  let pendingDecision: DecisionRecord | undefined;
  let attemptsMade = 0;
  let firstAttemptAt: number | undefined;
  let lastErrorClass: string | undefined;
  let completed: Replayed['completed'];
  for (const entry of journal) {
    const data = (entry.data ?? {}) as Record<string, unknown>;
    switch (entry.kind) {
      case JournalKind.toolCallCompleted:
        history.push({ type: 'tool-result', step: entry.step, tool: String(entry.name), args: data.args, result: data.result });
        if (entry.step === step) completed = { result: data.result, attempt: entry.attempt ?? 1, fallback: data.fallback };
        break;
      case JournalKind.toolCallInvalid:
      case JournalKind.actionRefused:
        history.push(errorObservation(entry, data));
        break;
      case JournalKind.permissionDecided:
        // A denial handed to the decider is an observation; a permit, or a denial that parked or failed the workflow, is not.
        if (entry.status === 'deny' && data.next === 'feedback') history.push(errorObservation(entry, data));
        break;
      case JournalKind.toolCallFailed:
        // Failures that ended the step (not retried) are what the decider saw.
        if (data.final === true) history.push(errorObservation(entry, data));
        if (entry.step === step) {
          attemptsMade = Math.max(attemptsMade, entry.attempt ?? 0);
          firstAttemptAt ??= entry.at - (entry.durationMs ?? 0);
          lastErrorClass = entry.status ?? undefined;
        }
        break;
      case JournalKind.workflowResumed:
        // An operator resumed the workflow: its current step gets a fresh budget of attempts.
        if (entry.step === step) {
          attemptsMade = 0;
          firstAttemptAt = undefined;
          lastErrorClass = undefined;
        }
        break;
      case JournalKind.actionDecided:
        if (entry.step === step) pendingDecision = data.decision as DecisionRecord;
        break;
    }
  }
  return { history, pendingDecision, attemptsMade, firstAttemptAt, lastErrorClass, completed };
}

function errorObservation(entry: JournalEntry, data: Record<string, unknown>): Observation {
  return {
    type: 'tool-error',
    step: entry.step,
    tool: String(entry.name ?? ''),
    args: data.args,
    errorClass: String(data.errorClass ?? 'invalid-input'),
    message: String(data.message ?? ''),
  };
}
