// The breaker state machine: what opens it (and what must not), failing fast while open, exactly
// one probe when half-open, closing, the ratio rule, events, counters and settings errors.
// Time is moved with fake Date; nothing here sleeps.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeelError } from '../errors.js';
import { BreakerOpenError, createCircuitBreakers, type BreakerState } from './circuit-breakers.js';
import { ToolError, type ErrorClass } from './tool-error.js';
import { HttpError } from '../../test/support/http-error.js';

const start = Date.UTC(2026, 0, 1, 12, 0, 0);

const unavailable = () => Promise.reject(new HttpError(503));
const ok = () => Promise.resolve('paid');

async function failTimes(run: (fn: () => Promise<unknown>) => Promise<unknown>, times: number, fn: () => Promise<unknown> = unavailable) {
  for (let i = 0; i < times; i++) await run(fn).catch(() => undefined);
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(start);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('circuit breakers', () => {
  it('opens after consecutive transient failures and then fails fast without calling the service', async () => {
    const breaker = createCircuitBreakers({ defaults: { consecutiveFailures: 3, halfOpenAfterMs: 3000 } }).for('payments');
    await failTimes((fn) => breaker.run(fn), 2);
    expect(breaker.state).toBe('closed');
    await failTimes((fn) => breaker.run(fn), 1);
    expect(breaker.state).toBe('open');
    expect(breaker.retryAt()).toBe(start + 3000);

    const service = vi.fn(ok);
    const error = await breaker.run(service).catch((caught: unknown) => caught);
    expect(service).not.toHaveBeenCalled();
    expect(BreakerOpenError.isInstance(error)).toBe(true);
    expect(ToolError.isInstance(error)).toBe(true);
    const open = error as BreakerOpenError;
    expect(open.errorClass).toBe('transient');
    expect(open.service).toBe('payments');
    expect(open.state).toBe('open');
    expect(open.retryAtMs).toBe(start + 3000);
    expect(open.retryAfterMs).toBe(3000);
    expect(open.message).toBe(
      "Circuit breaker for service 'payments' is open after 3 consecutive failures; failing fast until 12:00:03Z (in 3.0 s), when one probe call goes through.",
    );
    expect(breaker.counters).toEqual({ opened: 1, halfOpened: 0, closed: 0, rejected: 1 });
  });

  it('does not count bad requests or refusals against the service', async () => {
    const breaker = createCircuitBreakers({ defaults: { consecutiveFailures: 2 } }).for('payments');
    await failTimes((fn) => breaker.run(fn), 10, () => Promise.reject(new HttpError(422)));
    await failTimes((fn) => breaker.run(fn), 10, () => Promise.reject(new ToolError('permission-denied', 'not allowed')));
    await failTimes((fn) => breaker.run(fn), 10, () => Promise.reject(new ToolError('invalid-input', 'bad amount')));
    expect(breaker.state).toBe('closed');
    // The failures are still the caller's to see.
    await expect(breaker.run(() => Promise.reject(new HttpError(400)))).rejects.toThrow('HTTP 400');
  });

  it("uses the call's own classifier when given one", async () => {
    const breaker = createCircuitBreakers({ defaults: { consecutiveFailures: 2 } }).for('search');
    // This service answers 503 for "no such index" (not its health) and 404 while it restarts.
    const classify = (error: unknown): ErrorClass => ((error as HttpError).status === 404 ? 'transient' : 'invalid-input');
    await failTimes((fn) => breaker.run(fn, { classify }), 5);
    expect(breaker.state).toBe('closed');
    await failTimes((fn) => breaker.run(fn, { classify }), 2, () => Promise.reject(new HttpError(404)));
    expect(breaker.state).toBe('open');
  });

  it('counts rate-limited failures, and a success resets the consecutive count', async () => {
    const breaker = createCircuitBreakers({ defaults: { consecutiveFailures: 2 } }).for('payments');
    await failTimes((fn) => breaker.run(fn), 1, () => Promise.reject(new HttpError(429)));
    await breaker.run(ok);
    await failTimes((fn) => breaker.run(fn), 1, () => Promise.reject(new HttpError(429)));
    expect(breaker.state).toBe('closed');
    await failTimes((fn) => breaker.run(fn), 1, () => Promise.reject(new HttpError(429)));
    expect(breaker.state).toBe('open');
  });

  it('lets exactly one probe through when half-open, fails the others fast, and closes on success', async () => {
    const breakers = createCircuitBreakers({ defaults: { consecutiveFailures: 1, halfOpenAfterMs: 1000 } });
    const changes: Array<[string, BreakerState, BreakerState, string]> = [];
    breakers.onStateChange((...change) => changes.push(change));
    const breaker = breakers.for('payments');
    await failTimes((fn) => breaker.run(fn), 1);
    expect(breaker.state).toBe('open');

    vi.setSystemTime(start + 999);
    await expect(breaker.run(ok)).rejects.toThrow(/is open after 1 consecutive failures/);

    vi.setSystemTime(start + 1000);
    const probe = deferred<string>();
    const service = vi.fn(() => probe.promise);
    const probeCall = breaker.run(service);
    expect(breaker.state).toBe('half-open');
    const during = await Promise.allSettled([breaker.run(service), breaker.run(service), breaker.run(service)]);
    expect(service).toHaveBeenCalledTimes(1);
    for (const result of during) {
      expect(result.status).toBe('rejected');
      const error = (result as PromiseRejectedResult).reason as BreakerOpenError;
      expect(BreakerOpenError.isInstance(error)).toBe(true);
      expect(error.state).toBe('half-open');
      expect(error.message).toMatch(/^Circuit breaker for service 'payments' is half-open: its one probe call is in flight/);
    }

    probe.resolve('paid');
    await expect(probeCall).resolves.toBe('paid');
    expect(breaker.state).toBe('closed');
    await expect(breaker.run(ok)).resolves.toBe('paid');
    expect(changes.map(([service, from, to]) => `${service}:${from}->${to}`)).toEqual([
      'payments:closed->open',
      'payments:open->half-open',
      'payments:half-open->closed',
    ]);
    expect(changes[0][3]).toBe('opened after 1 consecutive failures; one probe call in 1.0 s');
    expect(changes[2][3]).toBe('the probe call succeeded');
    expect(breaker.counters).toEqual({ opened: 1, halfOpened: 1, closed: 1, rejected: 4 });
  });

  it('reopens when the probe fails, for another halfOpenAfterMs', async () => {
    const breaker = createCircuitBreakers({ defaults: { consecutiveFailures: 1, halfOpenAfterMs: 1000 } }).for('payments');
    await failTimes((fn) => breaker.run(fn), 1);
    vi.setSystemTime(start + 5000);
    await expect(breaker.run(unavailable)).rejects.toThrow('HTTP 503');
    expect(breaker.state).toBe('open');
    expect(breaker.retryAt()).toBe(start + 6000);
    await expect(breaker.run(ok)).rejects.toThrow(
      "Circuit breaker for service 'payments' is open after its probe call failed; failing fast until 12:00:06Z (in 1.0 s), when one probe call goes through.",
    );
  });

  it('closes when the probe is answered with an error that does not count against the service', async () => {
    const breakers = createCircuitBreakers({ defaults: { consecutiveFailures: 1, halfOpenAfterMs: 0 } });
    const reasons: string[] = [];
    breakers.onStateChange((_service, _from, to, reason) => to === 'closed' && reasons.push(reason));
    const breaker = breakers.for('payments');
    await failTimes((fn) => breaker.run(fn), 1);
    await expect(breaker.run(() => Promise.reject(new HttpError(404)))).rejects.toThrow('HTTP 404');
    expect(breaker.state).toBe('closed');
    expect(reasons).toEqual(['the probe call was answered (with a invalid-input error, which does not count against the service)']);
  });

  it('opens on a failure ratio over a window once enough calls were made', async () => {
    const breakers = createCircuitBreakers({
      defaults: { consecutiveFailures: 100, failureRatio: { threshold: 0.5, windowMs: 10_000, minimumCalls: 10 } },
    });
    const failEveryOther = breakers.for('fifty-fifty');
    for (let i = 0; i < 20; i++) await failEveryOther.run(i % 2 ? unavailable : ok).catch(() => undefined);
    expect(failEveryOther.state).toBe('closed'); // 50% is not more than the threshold

    const failing = breakers.for('mostly-down');
    const pattern = [ok, unavailable, unavailable, ok, unavailable, ok, unavailable, ok, unavailable];
    for (const call of pattern) await failing.run(call).catch(() => undefined);
    expect(failing.state).toBe('closed'); // 5 of 9 failed, but fewer than 10 calls were made
    await failing.run(unavailable).catch(() => undefined);
    expect(failing.state).toBe('open');
    await expect(failing.run(ok)).rejects.toThrow("Circuit breaker for service 'mostly-down' is open after 6 of 10 calls (60%) failed in the last 10.0 s;");
  });

  it('forgets failures that fell out of the ratio window', async () => {
    const breaker = createCircuitBreakers({
      defaults: { consecutiveFailures: 100, failureRatio: { threshold: 0.5, windowMs: 5000, minimumCalls: 4 } },
    }).for('payments');
    await failTimes((fn) => breaker.run(fn), 3);
    vi.setSystemTime(start + 20_000);
    await breaker.run(ok);
    await breaker.run(ok);
    await breaker.run(ok);
    await failTimes((fn) => breaker.run(fn), 1);
    expect(breaker.state).toBe('closed'); // 1 of 4 in the window; the old 3 no longer count
  });

  it('keeps one breaker per service, each with its own settings', async () => {
    const breakers = createCircuitBreakers({ services: { payments: { consecutiveFailures: 1 } }, defaults: { consecutiveFailures: 3 } });
    expect(breakers.for('payments')).toBe(breakers.for('payments'));
    await failTimes((fn) => breakers.for('payments').run(fn), 1);
    await failTimes((fn) => breakers.for('ledger').run(fn), 2);
    expect(breakers.for('payments').state).toBe('open');
    expect(breakers.for('ledger').state).toBe('closed');
    expect(breakers.counters()).toEqual({
      payments: { opened: 1, halfOpened: 0, closed: 0, rejected: 0 },
      ledger: { opened: 0, halfOpened: 0, closed: 0, rejected: 0 },
    });
  });

  it('fails fast while isolated by an operator and closes when released', async () => {
    const breakers = createCircuitBreakers();
    const changes: string[] = [];
    breakers.onStateChange((_service, from, to, reason) => changes.push(`${from}->${to}: ${reason}`));
    const breaker = breakers.for('payments');
    const handle = breaker.isolate();
    expect(breaker.state).toBe('isolated');
    const service = vi.fn(ok);
    const error = (await breaker.run(service).catch((caught: unknown) => caught)) as BreakerOpenError;
    expect(service).not.toHaveBeenCalled();
    expect(error.state).toBe('isolated');
    expect(error.message).toMatch(/^Circuit breaker for service 'payments' is held open by an operator \(isolated\)/);
    handle.dispose();
    await expect(breaker.run(service)).resolves.toBe('paid');
    expect(changes).toEqual(['closed->isolated: isolated by an operator', 'isolated->closed: released by an operator']);
  });

  it('a throwing listener does not change the outcome of a call', async () => {
    const breakers = createCircuitBreakers({ defaults: { consecutiveFailures: 1 } });
    breakers.onStateChange(() => {
      throw new Error('listener bug');
    });
    await expect(breakers.for('payments').run(unavailable)).rejects.toThrow('HTTP 503');
    expect(breakers.for('payments').state).toBe('open');
  });

  it('refuses settings it cannot honour, naming the service and the field', () => {
    const attempt = (options: Parameters<typeof createCircuitBreakers>[0]) => {
      try {
        createCircuitBreakers(options);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const error = attempt({ services: { payments: { consecutiveFailures: 0, failureRatio: { threshold: 1.5, windowMs: 1000 } } } });
    expect(KeelError.isInstance(error) && error.code).toBe('INVALID_DEFINITION');
    expect((error as Error).message).toMatch(/^Circuit breaker settings for 'payments' are not valid: consecutiveFailures must be/);
    expect((error as Error).message).toContain('failureRatio.threshold must be between 0 and 1, exclusive (got 1.5)');
    expect(attempt({ defaults: { halfOpenAfterMs: -1 } })).toBeDefined();
  });
});
