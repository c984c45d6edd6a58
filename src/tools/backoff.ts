// When to try a failed call again: exponential backoff with full jitter, the service's
// Retry-After honoured, and caps on attempts and on the total time spent on one call. A pure
// function of (policy, attempt, elapsed time, error): the runner journals the answer and may park
// the workflow durably for a long delay, so nothing here holds a timer or in-memory state.
//
// Why the formula is written here rather than taken from cockatiel 3.2.1: its
// `fullJitterGenerator` draws from the global Math.random (no seeded source, so neither tests nor
// a replay can reproduce a delay), returns [0, delay) rather than [0, delay], and threads the
// attempt count through an in-memory IBackoff chain. Keel's attempt count comes from the durable
// journal (a step may resume on another worker at attempt 3), so the delay must be computable
// from the attempt number alone. The formula is one line; cockatiel's policies are still the
// place for breakers and bulkheads.

import { classifyFailure, isRetryable, type ErrorClass, type FailureClassification } from './tool-error.js';

export interface BackoffPolicy {
  /** Attempts including the first (default 3). */
  maxAttempts: number;
  /** Ceiling of the first retry's delay (default 100 ms); doubles each attempt. */
  baseDelayMs: number;
  /** Largest delay Keel chooses by itself (default 10 s). A service's Retry-After may exceed it. */
  maxDelayMs: number;
  /** Cap on the time spent on one call, from the start of its first attempt (default 60 s). */
  maxTotalMs: number;
}

export const defaultBackoffPolicy: Readonly<BackoffPolicy> = Object.freeze({
  maxAttempts: 3,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  maxTotalMs: 60_000,
});

/** A complete policy from defaults and overrides; rejects values that would never retry sensibly. */
export function backoffPolicy(overrides: Partial<BackoffPolicy> = {}): BackoffPolicy {
  const policy = { ...defaultBackoffPolicy };
  for (const [key, value] of Object.entries(overrides) as [keyof BackoffPolicy, number | undefined][]) {
    if (value !== undefined) policy[key] = value;
  }
  const problems: string[] = [];
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) problems.push(`maxAttempts must be an integer of at least 1 (got ${policy.maxAttempts})`);
  for (const key of ['baseDelayMs', 'maxDelayMs', 'maxTotalMs'] as const) {
    if (!Number.isFinite(policy[key]) || policy[key] < 0) problems.push(`${key} must be a finite number of ms, 0 or more (got ${policy[key]})`);
  }
  if (problems.length > 0) throw new TypeError(`Invalid backoff policy: ${problems.join('; ')}.`);
  return policy;
}

export interface RetryInput {
  /** The attempt that just failed, 1 for the first. */
  attempt: number;
  /** Time since the first attempt started, in ms. */
  elapsedMs: number;
  error: unknown;
  /** The error's classification when the caller has it (with the tool's own classifier). */
  classification?: FailureClassification;
  /** The class of the attempt before this one: a second auth-expired in a row is not retried. */
  previousErrorClass?: ErrorClass;
  /** A uniform source in [0, 1); seed it in tests. */
  random?: () => number;
  /** For Retry-After given as an HTTP-date. */
  now?: number;
}

export type RetryDecision = { retry: true; delayMs: number; reason: string } | { retry: false; reason: string };

/**
 * Whether and when to retry a failed attempt. Non-retryable classes are never retried; an
 * auth-expired failure is retried at once (the credentials are refreshed first), but only once in
 * a row; otherwise the delay is uniform in [0, min(maxDelayMs, baseDelayMs * 2^(attempt-1))],
 * raised to the service's Retry-After. No retry when attempts run out or when waiting would take
 * the call past maxTotalMs.
 */
export function nextRetry(policy: Partial<BackoffPolicy>, input: RetryInput): RetryDecision {
  const limits = backoffPolicy(policy);
  const now = input.now ?? Date.now();
  const { errorClass, retryAfterMs } = input.classification ?? classifyFailure(input.error, undefined, now);
  const attempts = `attempt ${input.attempt} of ${limits.maxAttempts}`;
  if (!isRetryable(errorClass)) return { retry: false, reason: `${errorClass} errors are not retried (${attempts})` };
  if (errorClass === 'auth-expired' && input.previousErrorClass === 'auth-expired') {
    return { retry: false, reason: `still auth-expired after refreshing credentials (${attempts}); not retried again` };
  }
  if (input.attempt >= limits.maxAttempts) return { retry: false, reason: `no attempts left (${attempts})` };
  const delayMs = errorClass === 'auth-expired' ? 0 : backoffDelayMs(limits, input.attempt, retryAfterMs, input.random);
  if (input.elapsedMs + delayMs > limits.maxTotalMs) {
    return {
      retry: false,
      reason: `waiting ${delayMs} ms would exceed the ${limits.maxTotalMs} ms limit for this call (${Math.round(input.elapsedMs)} ms spent since the first attempt, ${attempts})`,
    };
  }
  const why = retryAfterMs !== undefined && delayMs === retryAfterMs ? `the service's Retry-After of ${retryAfterMs} ms` : errorClass === 'auth-expired' ? 'credentials are refreshed first' : 'backoff with jitter';
  return { retry: true, delayMs, reason: `retrying in ${delayMs} ms (${why})` };
}

/**
 * The delay before the retry after `attempt`: an integer uniform in
 * [0, min(maxDelayMs, baseDelayMs * 2^(attempt-1))] ("full jitter", which spreads a crowd of
 * failed callers across the whole window), or the service's Retry-After when that is longer.
 */
export function backoffDelayMs(
  policy: Pick<BackoffPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.floor(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1)));
  // floor(r * (ceiling + 1)) makes every integer in [0, ceiling] equally likely; the min guards a
  // random source that returns 1.
  const jittered = Math.min(ceiling, Math.floor(random() * (ceiling + 1)));
  return retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
}
