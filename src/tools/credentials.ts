// Credential providers: one per downstream service, shared by every tool and workflow in a
// process. A provider hands out a cached token, refreshes it before it expires and after the
// service rejects it, and does so single-flight: however many calls see a 401 at once, the token
// endpoint is asked once. A failing refresh is classified and, after a few in a row, stops being
// tried for a while instead of hammering the endpoint. An endpoint that is down is an outage
// (transient: the call backs off, parks, and counts against the breaker), not a refused
// credential (fatal). A token never appears in an error message.
//
// Who invalidates: the tool that used a token and got a 401 calls `invalidate(token)` before it
// throws; the runner then retries the call (auth-expired: once) and the retry's `get()` refreshes.

import { systemClock, type Clock } from '../util/clock.js';
import { createRedactor } from '../util/redact.js';
import { classifyFailure, ToolError } from './tool-error.js';

export interface IssuedToken {
  token: string;
  /** When the token stops working (epoch ms, on the provider's clock); omitted: until rejected. */
  expiresAt?: number;
}

export interface CredentialProviderOptions {
  /** The downstream service, as messages and metrics name it: 'payments'. */
  service: string;
  /** Asks the token endpoint for a new token. The signal aborts after refreshTimeoutMs. */
  fetchToken(signal: AbortSignal): Promise<IssuedToken>;
  /** Refresh this long before expiry (default 30 s; at most half the token's lifetime). */
  refreshBeforeMs?: number;
  clock?: Clock;
  /** Failed refreshes in a row after which the provider stops asking (default 3). */
  maxFailures?: number;
  /** How long it stops asking after maxFailures (default 60 s); then one refresh may try again. */
  failureCooldownMs?: number;
  /** A refresh that takes longer fails (default 30 s), so a hanging endpoint cannot wedge every caller. */
  refreshTimeoutMs?: number;
}

export interface CredentialStats {
  /** Calls of fetchToken, the first included. */
  refreshes: number;
  /** Of those, the ones that failed. */
  failures: number;
}

export interface CredentialProvider {
  readonly service: string;
  /** The current token; fetched or refreshed first when there is none or it is about to expire. */
  get(signal?: AbortSignal): Promise<string>;
  /** The service rejected this token. Ignored when the token was already replaced. */
  invalidate(staleToken: string): void;
  /** A new token now, joining a refresh already under way. */
  refresh(signal?: AbortSignal): Promise<string>;
  /** The tokens this provider has handed out lately: feed them to a redactor. */
  secrets(): string[];
  readonly stats: Readonly<CredentialStats>;
}

interface HeldToken {
  token: string;
  expiresAt?: number;
  /** When get() starts refreshing ahead of expiry. */
  refreshAt?: number;
}

// Old tokens stay redactable for a while: a late error message may still echo one.
const rememberedTokens = 5;

export function createCredentialProvider(options: CredentialProviderOptions): CredentialProvider {
  const { service, fetchToken } = options;
  const clock = options.clock ?? systemClock;
  const refreshBeforeMs = options.refreshBeforeMs ?? 30_000;
  const maxFailures = options.maxFailures ?? 3;
  const failureCooldownMs = options.failureCooldownMs ?? 60_000;
  const refreshTimeoutMs = options.refreshTimeoutMs ?? 30_000;

  let current: HeldToken | undefined;
  let inFlight: Promise<string> | undefined;
  let failuresInARow = 0;
  let pausedUntil: number | undefined;
  let lastFailure = '';
  /** The last failed refresh met an endpoint that was down, slow or rate limiting, not one that refused us. */
  let lastFailureWasOutage = false;
  const previous: string[] = [];
  const stats: CredentialStats = { refreshes: 0, failures: 0 };
  const secrets = () => [...(current ? [current.token] : []), ...previous];
  const redactor = createRedactor({ secrets });

  function retire(token: string): void {
    if (!previous.includes(token)) previous.unshift(token);
    previous.length = Math.min(previous.length, rememberedTokens);
  }

  async function fetchOnce(): Promise<string> {
    stats.refreshes++;
    const timeout = AbortSignal.timeout(refreshTimeoutMs);
    try {
      const issued = await raceAbort(Promise.resolve().then(() => fetchToken(timeout)), timeout);
      if (typeof issued?.token !== 'string' || issued.token === '') throw new TypeError('fetchToken returned no token');
      const now = clock.now();
      if (current) retire(current.token);
      current = { token: issued.token, expiresAt: issued.expiresAt, refreshAt: refreshTime(issued.expiresAt, now) };
      failuresInARow = 0;
      pausedUntil = undefined;
      return issued.token;
    } catch (error) {
      stats.failures++;
      failuresInARow++;
      if (failuresInARow >= maxFailures) pausedUntil = clock.now() + failureCooldownMs;
      throw refreshFailed(error, timeout.aborted);
    }
  }

  // Refresh ahead by refreshBeforeMs, but never earlier than half-way through the token's life:
  // a token that lives 10 s would otherwise be refreshed on every call.
  function refreshTime(expiresAt: number | undefined, now: number): number | undefined {
    if (expiresAt === undefined) return undefined;
    return expiresAt - Math.min(refreshBeforeMs, Math.max(0, (expiresAt - now) / 2));
  }

  // The cause is left off on purpose: the endpoint's own error may carry a token or a client
  // secret, and a cause travels into logs unredacted. Its message, redacted, is kept.
  function refreshFailed(error: unknown, timedOut: boolean): ToolError {
    const failure = classifyFailure(error, undefined, clock.now());
    const what = timedOut ? `the token endpoint did not answer within ${refreshTimeoutMs} ms` : redactor.redactText(error instanceof Error ? error.message : String(error));
    lastFailure = `${what} (${failure.reason})`;
    const refusedForGood = failure.errorClass === 'fatal' || failure.errorClass === 'permission-denied';
    lastFailureWasOutage = timedOut || failure.errorClass === 'transient' || failure.errorClass === 'rate-limited';
    const details = { service, errorClass: failure.errorClass, status: failure.status, code: failure.code, failuresInARow };
    if (refusedForGood) {
      return new ToolError(
        'fatal',
        `Credential refresh for service '${service}' failed: ${lastFailure}. Retrying will not help: check the client credentials and permissions configured for '${service}', then resume the workflow.`,
        { details },
      );
    }
    if (failuresInARow >= maxFailures) return paused(details);
    if (lastFailureWasOutage) {
      // Not an expired credential: retrying at once (auth-expired) would fail the same way, and a
      // breaker probe that got this must keep the breaker open rather than close it.
      return new ToolError(
        failure.errorClass === 'rate-limited' ? 'rate-limited' : 'transient',
        `Credential refresh for service '${service}' failed (${failuresInARow} of ${maxFailures} allowed in a row): ${lastFailure}. The call is retried after a pause; if refreshes keep failing, check the token endpoint of '${service}'.`,
        { details, retryAfterMs: failure.retryAfterMs },
      );
    }
    return new ToolError(
      'auth-expired',
      `Credential refresh for service '${service}' failed (${failuresInARow} of ${maxFailures} allowed in a row): ${lastFailure}. The call may be retried once; if refreshes keep failing, check the token endpoint of '${service}'.`,
      { details },
    );
  }

  function paused(details: Record<string, unknown> = { service, failuresInARow }): ToolError {
    const now = clock.now();
    const until = new Date(pausedUntil ?? now).toISOString();
    if (lastFailureWasOutage) {
      // An outage is waited out: the call parks until refreshing may be tried again (and fails
      // when that is beyond its retry policy's time limit), instead of failing every workflow
      // whose token expired while the endpoint was down.
      return new ToolError(
        'transient',
        `Credential refresh for service '${service}' failed ${failuresInARow} times in a row (last: ${lastFailure}); no new refresh is tried before ${until}, and calls wait until then. ` +
          `If it keeps failing, check the token endpoint of '${service}'.`,
        { details, retryAfterMs: Math.max(0, (pausedUntil ?? now) - now) },
      );
    }
    return new ToolError(
      'fatal',
      `Credential refresh for service '${service}' failed ${failuresInARow} times in a row (last: ${lastFailure}); no new refresh is tried before ${until}. ` +
        `Check the token endpoint and the credentials configured for '${service}', then resume the workflow.`,
      { details },
    );
  }

  function refresh(signal?: AbortSignal): Promise<string> {
    if (!inFlight) {
      if (pausedUntil !== undefined && clock.now() < pausedUntil) return Promise.reject(paused());
      inFlight = fetchOnce().finally(() => {
        inFlight = undefined;
      });
    }
    return raceAbort(inFlight, signal);
  }

  return {
    service,
    async get(signal) {
      if (signal?.aborted) throw signal.reason;
      const held = current;
      if (held && (held.refreshAt === undefined || clock.now() < held.refreshAt)) return held.token;
      try {
        return await refresh(signal);
      } catch (error) {
        // Refreshing ahead of expiry failed, but the token still works: use it while it lasts.
        const stillValid = held !== undefined && current === held && held.expiresAt !== undefined && clock.now() < held.expiresAt;
        if (stillValid && !signal?.aborted) return held.token;
        throw error;
      }
    },
    invalidate(staleToken) {
      if (current?.token !== staleToken) return;
      retire(staleToken);
      current = undefined;
    },
    refresh,
    secrets,
    get stats() {
      return { ...stats };
    },
  };
}

/** `promise`, or the signal's reason if it aborts first. The promise keeps a handler either way. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
