// nextRetry and backoffDelayMs: bounds of the exponential ceiling, the shape of full jitter under
// a seeded random source, Retry-After beyond the ceiling, the attempt and total-time caps.

import { describe, expect, it } from 'vitest';
import { backoffDelayMs, backoffPolicy, defaultBackoffPolicy, nextRetry } from './backoff.js';
import { ToolError } from './tool-error.js';
import { seededRandom } from '../util/seeded-random.js';


const transient = new ToolError('transient', 'HTTP 503');
const now = Date.UTC(2026, 0, 1);

describe('backoffDelayMs', () => {
  it('has a ceiling that doubles from baseDelayMs and stops at maxDelayMs', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((attempt) => backoffDelayMs(defaultBackoffPolicy, attempt, undefined, () => 0.999_999_9));
    expect(ceilings).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    expect(backoffDelayMs(defaultBackoffPolicy, 5000, undefined, () => 1)).toBe(10_000); // 2^4999 is Infinity
  });

  it('reaches 0 and the ceiling itself, and never leaves [0, ceiling]', () => {
    expect(backoffDelayMs(defaultBackoffPolicy, 3, undefined, () => 0)).toBe(0);
    expect(backoffDelayMs(defaultBackoffPolicy, 3, undefined, () => 1)).toBe(400);
    const random = seededRandom(7);
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(10_000, 100 * 2 ** (attempt - 1));
      for (let draw = 0; draw < 200; draw++) {
        const delay = backoffDelayMs(defaultBackoffPolicy, attempt, undefined, random);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('spreads delays uniformly over the whole window (full jitter), not around the ceiling', () => {
    const random = seededRandom(42);
    const draws = 20_000;
    const buckets = new Array<number>(10).fill(0);
    let sum = 0;
    for (let draw = 0; draw < draws; draw++) {
      const delay = backoffDelayMs(defaultBackoffPolicy, 4, undefined, random); // window [0, 800]
      buckets[Math.min(9, Math.floor(delay / 80))]!++;
      sum += delay;
    }
    // Each tenth of the window holds about a tenth of the draws; the mean sits at the middle.
    for (const count of buckets) expect(Math.abs(count - draws / 10)).toBeLessThan(draws / 10 * 0.1);
    expect(Math.abs(sum / draws - 400)).toBeLessThan(10);
  });

  it('waits for a Retry-After longer than the jitter, even beyond maxDelayMs', () => {
    expect(backoffDelayMs(defaultBackoffPolicy, 1, 1500, () => 1)).toBe(1500);
    expect(backoffDelayMs(defaultBackoffPolicy, 1, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelayMs(defaultBackoffPolicy, 8, 500, () => 0.5)).toBe(5000);
  });
});

describe('nextRetry', () => {
  it('retries a transient failure with a jittered delay and says why', () => {
    const decision = nextRetry({}, { attempt: 2, elapsedMs: 300, error: transient, random: () => 0.5, now });
    expect(decision).toEqual({ retry: true, delayMs: 100, reason: 'retrying in 100 ms (backoff with jitter)' });
  });

  it('stops when the attempts run out', () => {
    const decision = nextRetry({ maxAttempts: 3 }, { attempt: 3, elapsedMs: 500, error: transient, now });
    expect(decision).toEqual({ retry: false, reason: 'no attempts left (attempt 3 of 3)' });
    expect(nextRetry({ maxAttempts: 1 }, { attempt: 1, elapsedMs: 0, error: transient, now }).retry).toBe(false);
    expect(nextRetry({ maxAttempts: 5 }, { attempt: 3, elapsedMs: 0, error: transient, now }).retry).toBe(true);
  });

  it.each(['invalid-input', 'permission-denied', 'fatal'] as const)('never retries %s', (errorClass) => {
    const decision = nextRetry({ maxAttempts: 10 }, { attempt: 1, elapsedMs: 0, error: new ToolError(errorClass, 'no'), now });
    expect(decision).toEqual({ retry: false, reason: `${errorClass} errors are not retried (attempt 1 of 10)` });
  });

  it("honours a 429's Retry-After header beyond maxDelayMs", () => {
    const error = Object.assign(new Error('Too Many Requests'), { status: 429, headers: new Headers({ 'retry-after': '20' }) });
    const decision = nextRetry({}, { attempt: 1, elapsedMs: 0, error, random: () => 0.5, now });
    expect(decision).toEqual({ retry: true, delayMs: 20_000, reason: "retrying in 20000 ms (the service's Retry-After of 20000 ms)" });
  });

  it('reads an HTTP-date Retry-After against the given now', () => {
    const error = Object.assign(new Error('Service Unavailable'), { status: 503, headers: { 'retry-after': new Date(now + 5000).toUTCString() } });
    expect(nextRetry({}, { attempt: 1, elapsedMs: 0, error, random: () => 0, now })).toMatchObject({ retry: true, delayMs: 5000 });
  });

  it('does not retry when waiting would pass the total-time cap, and says so', () => {
    const error = new ToolError('rate-limited', 'slow down', { retryAfterMs: 30_000 });
    const decision = nextRetry({ maxTotalMs: 60_000 }, { attempt: 1, elapsedMs: 40_000, error, random: () => 0, now });
    expect(decision).toEqual({
      retry: false,
      reason: 'waiting 30000 ms would exceed the 60000 ms limit for this call (40000 ms spent since the first attempt, attempt 1 of 3)',
    });
    // The same wait fits when less time has gone by.
    expect(nextRetry({ maxTotalMs: 60_000 }, { attempt: 1, elapsedMs: 30_000, error, random: () => 0, now })).toMatchObject({ retry: true, delayMs: 30_000 });
    // A day-long Retry-After never fits the default cap.
    const dayLong = new ToolError('rate-limited', 'quota', { retryAfterMs: 86_400_000 });
    expect(nextRetry({}, { attempt: 1, elapsedMs: 0, error: dayLong, now }).retry).toBe(false);
  });

  it('refuses once the cap is spent, even for a zero delay', () => {
    expect(nextRetry({ maxTotalMs: 1000 }, { attempt: 1, elapsedMs: 1001, error: transient, random: () => 0, now }).retry).toBe(false);
  });

  it('retries auth-expired at once, but not twice in a row', () => {
    const expired = Object.assign(new Error('Unauthorized'), { status: 401 });
    expect(nextRetry({}, { attempt: 1, elapsedMs: 0, error: expired, random: () => 0.9, now })).toEqual({
      retry: true,
      delayMs: 0,
      reason: 'retrying in 0 ms (credentials are refreshed first)',
    });
    expect(nextRetry({}, { attempt: 2, elapsedMs: 0, error: expired, previousErrorClass: 'auth-expired', now })).toEqual({
      retry: false,
      reason: 'still auth-expired after refreshing credentials (attempt 2 of 3); not retried again',
    });
    expect(nextRetry({}, { attempt: 2, elapsedMs: 0, error: expired, previousErrorClass: 'transient', now }).retry).toBe(true);
  });

  it("uses the caller's classification (with the tool's override) over its own", () => {
    const conflict = Object.assign(new Error('Conflict'), { status: 409 });
    expect(nextRetry({}, { attempt: 1, elapsedMs: 0, error: conflict, now }).retry).toBe(false);
    const decision = nextRetry({}, { attempt: 1, elapsedMs: 0, error: conflict, classification: { errorClass: 'transient', reason: 'tool' }, random: () => 0, now });
    expect(decision).toMatchObject({ retry: true, delayMs: 0 });
  });
});

describe('backoffPolicy', () => {
  it('fills defaults and keeps overrides', () => {
    expect(backoffPolicy()).toEqual({ maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 10_000, maxTotalMs: 60_000 });
    expect(backoffPolicy({ maxAttempts: 5, maxTotalMs: undefined })).toEqual({ maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 10_000, maxTotalMs: 60_000 });
  });

  it('rejects nonsense with every problem named', () => {
    expect(() => backoffPolicy({ maxAttempts: 0, baseDelayMs: -1, maxTotalMs: Number.NaN })).toThrow(
      'Invalid backoff policy: maxAttempts must be an integer of at least 1 (got 0); baseDelayMs must be a finite number of ms, 0 or more (got -1); maxTotalMs must be a finite number of ms, 0 or more (got NaN).',
    );
  });
});
