// keel demo --chaos: the faults the example payments service injects, and what Keel's tool runner
// did about them. The counts come from three places and never from guesses: the journal of each
// demo workflow (retries by error class, rate-limit waits, parks, fallbacks), the service's own
// stats (faults it served, tokens it issued and saw expire), and this process's breakers (opens).

import type { BreakerCounters } from '../../tools/circuit-breakers.js';
import type { JournalEntry } from '../../store/types.js';

/** What the example payments service is asked to do to the demo: payments-service.ts options. */
export const chaosFaults = {
  failureRate: 0.3,
  periodicRateLimit: { every: 7, retryAfterSeconds: 1 },
  tokenTtlMs: 2_000,
  // The token endpoint does not say when tokens expire: the agent learns it from a 401.
  hideTokenTtl: true,
  hangRate: 0.02,
} as const;

export function describeChaosFaults(): string {
  const { failureRate, periodicRateLimit, tokenTtlMs, hangRate } = chaosFaults;
  return (
    `${failureRate * 100}% of payment calls answer 503, every ${periodicRateLimit.every}th answers 429 (Retry-After ${periodicRateLimit.retryAfterSeconds} s), ` +
    `tokens expire every ${tokenTtlMs / 1000} s unannounced, ${hangRate * 100}% of calls hang`
  );
}

/** What the demo reads of the payments service's stats (examples/expense-approval/payments-service.ts). */
export interface ChaosServiceStats {
  failed503: number;
  rateLimited: number;
  unauthorized: number;
  hung: number;
  tokensIssued: number;
  tokensExpired: number;
}

export interface ChaosCounts {
  injected: ChaosServiceStats;
  /** Failed attempts that were retried, by error class. */
  retries: Record<string, number>;
  rateLimitWaits: { inWorker: number; parked: number };
  /** The runner's durable parks, by reason (retry, circuit-open, rate-limit). */
  parks: Record<string, number>;
  breakerOpens: number;
  /** Calls that waited for an open breaker instead of being made. */
  deferredByBreaker: number;
  fallbacks: number;
}

const runnerParks = new Set(['retry', 'circuit-open', 'rate-limit']);

export function countChaos(journals: readonly (readonly JournalEntry[])[], injected: ChaosServiceStats, breakers: Readonly<Record<string, BreakerCounters>>): ChaosCounts {
  const counts: ChaosCounts = {
    injected,
    retries: {},
    rateLimitWaits: { inWorker: 0, parked: 0 },
    parks: {},
    breakerOpens: Object.values(breakers).reduce((sum, counters) => sum + counters.opened, 0),
    deferredByBreaker: 0,
    fallbacks: 0,
  };
  for (const entry of journals.flat()) {
    const data = (entry.data ?? {}) as Record<string, unknown>;
    // Short waits are journaled once per call; the call's next entry carries how many there were.
    const waits = data.waits as Record<string, { count: number }> | undefined;
    counts.rateLimitWaits.inWorker += waits?.['rate-limit']?.count ?? 0;
    if (entry.kind === 'tool-call-failed' && data.final === false) {
      const errorClass = entry.status ?? 'unknown';
      counts.retries[errorClass] = (counts.retries[errorClass] ?? 0) + 1;
    } else if (entry.kind === 'tool-call-deferred') {
      if (entry.status === 'rate-limit' && data.parked === true) counts.rateLimitWaits.parked++;
      if (entry.status === 'circuit-open') counts.deferredByBreaker++;
    } else if (entry.kind === 'workflow-parked' && entry.name && runnerParks.has(entry.name)) {
      counts.parks[entry.name] = (counts.parks[entry.name] ?? 0) + 1;
    } else if (entry.kind === 'fallback-used') {
      counts.fallbacks++;
    }
  }
  return counts;
}

/** The summary's chaos lines, label and value. */
export function chaosFields(counts: ChaosCounts): [string, string][] {
  const { injected } = counts;
  const retries = total(counts.retries);
  const waits = counts.rateLimitWaits.inWorker + counts.rateLimitWaits.parked;
  return [
    [
      'faults injected',
      `${injected.failed503} × 503, ${injected.rateLimited} × 429, ${injected.unauthorized} × 401 (${injected.tokensExpired} token${injected.tokensExpired === 1 ? '' : 's'} expired in use), ${injected.hung} hung call${injected.hung === 1 ? '' : 's'}`,
    ],
    ['retries', retries === 0 ? 'none' : `${retries}: ${byName(counts.retries)}`],
    ['rate-limit waits', `${waits} (${counts.rateLimitWaits.inWorker} in the worker, ${counts.rateLimitWaits.parked} parked)`],
    ['parks', total(counts.parks) === 0 ? 'none' : `${total(counts.parks)}: ${byName(counts.parks)}`],
    ['token refreshes', `${injected.tokensIssued} token${injected.tokensIssued === 1 ? '' : 's'} fetched from the token endpoint, single-flight`],
    ['breaker opens', `${counts.breakerOpens}${counts.deferredByBreaker > 0 ? ` (${counts.deferredByBreaker} call${counts.deferredByBreaker === 1 ? '' : 's'} waited for it instead of failing)` : ''}`],
    ['fallbacks', String(counts.fallbacks)],
  ];
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

/** "transient 30, rate-limited 6", largest first. */
function byName(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort(([nameA, a], [nameB, b]) => b - a || nameA.localeCompare(nameB))
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
}
