// The chaos summary counts what the journal, the service and the breakers say, and nothing else:
// only retried attempts are retries, only the runner's parks are parks, and waits are split by
// where they happened.

import { describe, expect, it } from 'vitest';
import type { JournalEntry } from '../../store/types.js';
import { chaosFields, countChaos, type ChaosServiceStats } from './chaos.js';

let seq = 0;
function entry(kind: string, fields: Partial<JournalEntry> = {}): JournalEntry {
  return { seq: ++seq, workflowId: 'wf_1', step: 0, kind, name: null, status: null, attempt: null, durationMs: null, tokensIn: null, tokensOut: null, data: {}, at: 0, ...fields } as JournalEntry;
}

const stats: ChaosServiceStats = { failed503: 7, rateLimited: 2, unauthorized: 1, hung: 1, tokensIssued: 3, tokensExpired: 1 };
const noBreakers = { payments: { opened: 0, halfOpened: 0, closed: 0, rejected: 0 } };

describe('countChaos', () => {
  it('counts retried attempts by class, waits by where they happened, runner parks by reason, and fallbacks', () => {
    const journals = [
      [
        entry('tool-call-failed', { status: 'transient', data: { final: false } }),
        // The first short wait is journaled on its own; the call's next entry counts all of them.
        entry('tool-call-deferred', { status: 'rate-limit', data: { parked: false } }),
        entry('tool-call-failed', { status: 'transient', data: { final: false, waits: { 'rate-limit': { count: 3, totalMs: 120 } } } }),
        // Not retried: it ended the step, so it is not a retry.
        entry('tool-call-failed', { status: 'transient', data: { final: true } }),
        entry('workflow-parked', { name: 'retry', data: { wakeAt: 1 } }),
      ],
      [
        entry('tool-call-failed', { status: 'auth-expired', data: { final: false } }),
        entry('tool-call-deferred', { status: 'rate-limit', data: { parked: true } }),
        entry('workflow-parked', { name: 'rate-limit', data: { wakeAt: 1 } }),
        entry('tool-call-deferred', { status: 'circuit-open', data: { parked: true } }),
        entry('workflow-parked', { name: 'circuit-open', data: { wakeAt: 1 } }),
        // Parked for review by an operator: not the runner's doing.
        entry('workflow-parked', { name: 'review', data: { code: 'RECOVERY_LIMIT' } }),
        entry('fallback-used', { status: 'cached' }),
      ],
    ];

    const counts = countChaos(journals, stats, { payments: { opened: 2, halfOpened: 2, closed: 2, rejected: 0 } });

    expect(counts).toEqual({
      injected: stats,
      retries: { transient: 2, 'auth-expired': 1 },
      rateLimitWaits: { inWorker: 3, parked: 1 },
      parks: { retry: 1, 'rate-limit': 1, 'circuit-open': 1 },
      breakerOpens: 2,
      deferredByBreaker: 1,
      fallbacks: 1,
    });
    expect(chaosFields(counts)).toEqual([
      ['faults injected', '7 × 503, 2 × 429, 1 × 401 (1 token expired in use), 1 hung call'],
      ['retries', '3: transient 2, auth-expired 1'],
      ['rate-limit waits', '4 (3 in the worker, 1 parked)'],
      ['parks', '3: circuit-open 1, rate-limit 1, retry 1'],
      ['token refreshes', '3 tokens fetched from the token endpoint, single-flight'],
      ['breaker opens', '2 (1 call waited for it instead of failing)'],
      ['fallbacks', '1'],
    ]);
  });

  it('says none when nothing was retried or parked', () => {
    const fields = Object.fromEntries(chaosFields(countChaos([[entry('tool-call-completed')]], stats, noBreakers)));
    expect(fields).toMatchObject({ retries: 'none', parks: 'none', 'rate-limit waits': '0 (0 in the worker, 0 parked)', 'breaker opens': '0', fallbacks: '0' });
  });
});
