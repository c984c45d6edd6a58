// replayJournal: what a worker rebuilds when it picks a workflow up — the observations the
// decider has seen, the action decided for the current step but never finished, and the attempts
// that action already used.

import { describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../model/decision.js';
import type { JournalEntry, NewJournalEntry } from '../store/types.js';
import { replayJournal } from './replay.js';

function journal(...entries: NewJournalEntry[]): JournalEntry[] {
  return entries.map((entry, index) => ({
    seq: index + 1,
    workflowId: 'wf_1',
    name: null,
    status: null,
    attempt: null,
    durationMs: null,
    tokensIn: null,
    tokensOut: null,
    at: 0,
    ...entry,
    data: entry.data ?? null,
  }));
}

const decision = (tool: string, args: unknown): DecisionRecord => ({ source: 'code', tool, args, confidence: 1 });

describe('replayJournal', () => {
  it('rebuilds results, refusals and final failures as observations, in order', () => {
    const entries = journal(
      { step: 0, kind: 'workflow-started', data: { state: 'start' } },
      { step: 0, kind: 'action-decided', name: 'lookup', data: { decision: decision('lookup', { id: 1 }) } },
      { step: 0, kind: 'tool-call-completed', name: 'lookup', data: { args: { id: 1 }, result: { found: true } } },
      { step: 1, kind: 'action-decided', name: 'pay', data: { decision: decision('pay', {}) } },
      { step: 1, kind: 'tool-call-invalid', name: 'pay', status: 'invalid-input', data: { args: {}, errorClass: 'invalid-input', message: 'amount: Required' } },
      { step: 2, kind: 'action-refused', name: 'delete_all', data: { args: null, errorClass: 'not-allowed', message: 'There is no tool' } },
      { step: 3, kind: 'tool-call-failed', name: 'pay', attempt: 1, data: { args: { amount: 1 }, errorClass: 'transient', message: 'reset', final: false } },
      { step: 3, kind: 'tool-call-failed', name: 'pay', attempt: 2, data: { args: { amount: 1 }, errorClass: 'invalid-input', message: 'card declined', final: true } },
    );
    const replayed = replayJournal(entries, 4);
    expect(replayed.history).toEqual([
      { type: 'tool-result', step: 0, tool: 'lookup', args: { id: 1 }, result: { found: true } },
      { type: 'tool-error', step: 1, tool: 'pay', args: {}, errorClass: 'invalid-input', message: 'amount: Required' },
      { type: 'tool-error', step: 2, tool: 'delete_all', args: null, errorClass: 'not-allowed', message: 'There is no tool' },
      { type: 'tool-error', step: 3, tool: 'pay', args: { amount: 1 }, errorClass: 'invalid-input', message: 'card declined' },
    ]);
    expect(replayed.pendingDecision).toBeUndefined();
    expect(replayed.attemptsMade).toBe(0);
  });

  it('finds the decision of the current step whose call never finished, and the attempts it used', () => {
    const pay = decision('pay', { amount: 5 });
    const entries = journal(
      { step: 0, kind: 'action-decided', name: 'lookup', data: { decision: decision('lookup', {}) } },
      { step: 0, kind: 'tool-call-completed', name: 'lookup', data: { args: {}, result: 1 } },
      { step: 1, kind: 'action-decided', name: 'pay', data: { decision: pay } },
      { step: 1, kind: 'checkpoint-saved', data: { state: 'paying' } },
      { step: 1, kind: 'tool-call-failed', name: 'pay', attempt: 1, data: { args: { amount: 5 }, errorClass: 'transient', final: false } },
      { step: 1, kind: 'rolled-back', name: 'pay' },
      { step: 1, kind: 'tool-call-failed', name: 'pay', attempt: 2, data: { args: { amount: 5 }, errorClass: 'transient', final: false } },
    );
    const replayed = replayJournal(entries, 1);
    expect(replayed.pendingDecision).toEqual(pay);
    expect(replayed.attemptsMade).toBe(2);
    expect(replayed.history).toHaveLength(1);
  });

  it('gives the current step a fresh budget of attempts after an operator resumed it', () => {
    const entries = journal(
      { step: 0, kind: 'action-decided', name: 'pay', data: { decision: decision('pay', {}) } },
      { step: 0, kind: 'tool-call-failed', name: 'pay', attempt: 3, data: { errorClass: 'transient', final: true, message: 'gave up' } },
      { step: 0, kind: 'workflow-failed', name: 'TOOL_FAILED' },
      { step: 0, kind: 'workflow-resumed', data: { from: 'failed' } },
    );
    const replayed = replayJournal(entries, 0);
    expect(replayed.attemptsMade).toBe(0);
    expect(replayed.pendingDecision?.tool).toBe('pay');
  });

  it('counts attempts of the current step only', () => {
    const entries = journal(
      { step: 0, kind: 'tool-call-failed', name: 'pay', attempt: 2, data: { final: false } },
      { step: 1, kind: 'tool-call-failed', name: 'pay', attempt: 1, data: { final: false } },
    );
    expect(replayJournal(entries, 1).attemptsMade).toBe(1);
    expect(replayJournal([], 0)).toEqual({ history: [], pendingDecision: undefined, attemptsMade: 0 });
  });
});
