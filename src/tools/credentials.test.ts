// createCredentialProvider: cached tokens, refresh ahead of expiry on a manual clock, single-flight
// refresh under concurrent 401s, and failed refreshes that are classified, bounded and never
// carry the token in their message.

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../util/clock.js';
import { createCredentialProvider, type IssuedToken } from './credentials.js';
import { classifyFailure, ToolError } from './tool-error.js';

/** A token endpoint that hands out tok-1, tok-2, ... and can be held open or made to fail. */
function tokenEndpoint(clock: ManualClock, lifetimeMs?: number) {
  let issued = 0;
  let gate: Promise<void> | undefined;
  let failWith: unknown;
  return {
    get calls() {
      return issued;
    },
    hold() {
      let open!: () => void;
      gate = new Promise<void>((resolve) => (open = resolve));
      return () => {
        gate = undefined;
        open();
      };
    },
    fail(error: unknown) {
      failWith = error;
    },
    async fetchToken(_signal: AbortSignal): Promise<IssuedToken> {
      issued++;
      const number = issued;
      if (gate) await gate;
      if (failWith !== undefined) throw failWith;
      return { token: `tok-${number}-0123456789`, expiresAt: lifetimeMs === undefined ? undefined : clock.now() + lifetimeMs };
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

describe('credential provider: caching and refresh before expiry', () => {
  it('fetches once and hands out the cached token after that', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock });
    expect(await provider.get()).toBe('tok-1-0123456789');
    expect(await provider.get()).toBe('tok-1-0123456789');
    expect(provider.stats).toEqual({ refreshes: 1, failures: 0 });
  });

  it('refreshes once the token is within refreshBeforeMs of expiry', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock, 120_000);
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock, refreshBeforeMs: 30_000 });
    expect(await provider.get()).toBe('tok-1-0123456789');
    clock.advance(89_999);
    expect(await provider.get()).toBe('tok-1-0123456789');
    clock.advance(1);
    expect(await provider.get()).toBe('tok-2-0123456789');
    expect(provider.stats.refreshes).toBe(2);
  });

  it('refreshes a short-lived token half-way through its life, not on every call', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock, 10_000);
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock, refreshBeforeMs: 30_000 });
    await provider.get();
    clock.advance(4_999);
    expect(await provider.get()).toBe('tok-1-0123456789');
    clock.advance(1);
    expect(await provider.get()).toBe('tok-2-0123456789');
    expect(endpoint.calls).toBe(2);
  });

  it('asks the endpoint once when many callers need the first token at the same time', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    const release = endpoint.hold();
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock });
    const tokens = Promise.all(Array.from({ length: 10 }, () => provider.get()));
    release();
    expect(new Set(await tokens)).toEqual(new Set(['tok-1-0123456789']));
    expect(endpoint.calls).toBe(1);
  });
});

describe('credential provider: single-flight refresh after 401', () => {
  it('refreshes once when 10 concurrent calls see a 401 with the same stale token', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock });
    const stale = await provider.get();
    let release!: () => void;
    const seen: string[] = [];
    // The service rejects the first token; each caller invalidates it and asks again, as a tool does.
    async function call(): Promise<string> {
      const token = await provider.get();
      if (token === stale) {
        provider.invalidate(token);
        release ??= endpoint.hold();
        return call();
      }
      seen.push(token);
      return token;
    }
    const calls = Promise.all(Array.from({ length: 10 }, call));
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await calls;
    expect(seen).toEqual(Array(10).fill('tok-2-0123456789'));
    expect(provider.stats).toEqual({ refreshes: 2, failures: 0 }); // the first token, and one refresh
  });

  it('ignores a late invalidate of a token already replaced', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock });
    const stale = await provider.get();
    provider.invalidate(stale);
    const fresh = await provider.get();
    provider.invalidate(stale); // a caller whose 401 arrived after the refresh
    expect(await provider.get()).toBe(fresh);
    expect(endpoint.calls).toBe(2);
  });

  it('lets one caller give up without cancelling the refresh the others wait for', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    const release = endpoint.hold();
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock });
    const impatient = new AbortController();
    const leaving = provider.get(impatient.signal);
    const staying = provider.get();
    impatient.abort(new Error('workflow cancelled'));
    expect(await rejection(leaving)).toMatchObject({ message: 'workflow cancelled' });
    release();
    expect(await staying).toBe('tok-1-0123456789');
    expect(endpoint.calls).toBe(1);
  });
});

describe('credential provider: failed refresh', () => {
  const leakyError = (token: string) => Object.assign(new Error(`token endpoint said 503 while rotating ${token}`), { status: 503 });

  it('throws a transient ToolError when the endpoint is down, naming the service and never the token', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock });
    const stale = await provider.get();
    provider.invalidate(stale);
    endpoint.fail(leakyError(stale));
    const error = await rejection(provider.get());
    expect(ToolError.isInstance(error)).toBe(true);
    // An endpoint that is down is an outage, not an expired credential: backed off, and counted by the breaker.
    expect(classifyFailure(error).errorClass).toBe('transient');
    const { message } = error as ToolError;
    expect(message).toBe(
      "Credential refresh for service 'payments' failed (1 of 3 allowed in a row): token endpoint said 503 while rotating [REDACTED] (HTTP 503). The call is retried after a pause; if refreshes keep failing, check the token endpoint of 'payments'.",
    );
    expect(message).not.toContain(stale);
    expect(JSON.stringify(error)).not.toContain(stale);
    expect((error as ToolError).cause).toBeUndefined();
    expect(provider.stats).toEqual({ refreshes: 2, failures: 1 });
  });

  it('throws fatal when the endpoint refuses for good (403)', async () => {
    const clock = new ManualClock();
    const provider = createCredentialProvider({
      service: 'payments',
      clock,
      fetchToken: async () => {
        throw Object.assign(new Error('client is not allowed'), { status: 403 });
      },
    });
    const error = await rejection(provider.get());
    expect(error).toMatchObject({ errorClass: 'fatal' });
    expect((error as Error).message).toContain("Credential refresh for service 'payments' failed: client is not allowed (HTTP 403). Retrying will not help");
  });

  it('stops asking after maxFailures in a row, and tries once more after the cooldown', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    endpoint.fail(Object.assign(new Error('Service Unavailable'), { status: 503 }));
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock, maxFailures: 3, failureCooldownMs: 60_000 });
    expect(await rejection(provider.get())).toMatchObject({ errorClass: 'transient' });
    expect(await rejection(provider.get())).toMatchObject({ errorClass: 'transient' });
    // An outage is waited out: the calls park until the cooldown ends instead of failing.
    const third = await rejection(provider.get());
    expect(third).toMatchObject({ errorClass: 'transient', retryAfterMs: 60_000 });
    expect((third as Error).message).toBe(
      "Credential refresh for service 'payments' failed 3 times in a row (last: Service Unavailable (HTTP 503)); no new refresh is tried before 2026-01-01T00:01:00.000Z, and calls wait until then. If it keeps failing, check the token endpoint of 'payments'.",
    );
    clock.advance(1_000);
    expect(await rejection(provider.get())).toMatchObject({ errorClass: 'transient', retryAfterMs: 59_000 });
    expect(endpoint.calls).toBe(3); // the fourth call did not reach the endpoint
    clock.advance(59_000);
    endpoint.fail(undefined);
    expect(await provider.get()).toBe('tok-4-0123456789');
    expect(provider.stats).toEqual({ refreshes: 4, failures: 3 });
  });

  it('fails for good after maxFailures when the endpoint keeps refusing the client (401), not down', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    endpoint.fail(Object.assign(new Error('Unauthorized'), { status: 401 }));
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock, maxFailures: 2 });
    expect(await rejection(provider.get())).toMatchObject({ errorClass: 'auth-expired' });
    const second = await rejection(provider.get());
    expect(second).toMatchObject({ errorClass: 'fatal' });
    expect((second as Error).message).toContain('then resume the workflow');
  });

  it('keeps handing out a still-valid token when refreshing ahead of expiry fails', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock, 120_000);
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock });
    const token = await provider.get();
    clock.advance(100_000);
    endpoint.fail(Object.assign(new Error('Bad Gateway'), { status: 502 }));
    expect(await provider.get()).toBe(token);
    expect(provider.stats.failures).toBe(1);
    clock.advance(20_000); // now expired: nothing left to fall back on
    expect(await rejection(provider.get())).toMatchObject({ errorClass: 'transient' });
  });

  it('fails a refresh that hangs, and is not wedged by it', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const provider = createCredentialProvider({
      service: 'payments',
      clock,
      refreshTimeoutMs: 20,
      fetchToken: () => (++calls === 1 ? new Promise<IssuedToken>(() => {}) : Promise.resolve({ token: 'tok-after-hang-123' })),
    });
    const error = await rejection(provider.get());
    expect(error).toMatchObject({ errorClass: 'transient' });
    expect((error as Error).message).toContain('the token endpoint did not answer within 20 ms');
    expect(await provider.get()).toBe('tok-after-hang-123');
  });

  it('treats an empty token as a failed refresh', async () => {
    const provider = createCredentialProvider({ service: 'payments', clock: new ManualClock(), fetchToken: async () => ({ token: '' }) });
    const error = await rejection(provider.get());
    expect((error as Error).message).toContain('fetchToken returned no token');
    expect(provider.stats.failures).toBe(1);
  });
});

describe('credential provider: secrets', () => {
  it('lists the current and recent tokens for redaction', async () => {
    const clock = new ManualClock();
    const endpoint = tokenEndpoint(clock);
    const provider = createCredentialProvider({ service: 'payments', fetchToken: endpoint.fetchToken, clock });
    expect(provider.secrets()).toEqual([]);
    const first = await provider.get();
    provider.invalidate(first);
    const second = await provider.get();
    expect(provider.secrets()).toEqual([second, first]);
  });
});
