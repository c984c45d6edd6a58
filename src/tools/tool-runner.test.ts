// The tool runner on its own, outside the step loop: what admit() refuses and why, what one
// attempt reports (classification, redacted message, credentials handed and invalidated, a 429
// pausing the service), the cached results a fallback may use, and the one message format.
// The step loop's use of it (journal, parking, resume) is in src/agent/tool-runner-loop.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KeelError } from '../errors.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.js';
import { ManualClock } from '../util/clock.js';
import { silentLogger } from '../util/logger.js';
import { createCredentialProvider } from './credentials.js';
import { ToolError } from './tool-error.js';
import { ToolRunner, type ToolRunnerOptions } from './tool-runner.js';
import { defineTool, type AnyTool, type ToolContext } from './tool.js';
import { HttpError } from '../../test/support/http-error.js';

const principal = { id: 'alice' };
let stores: SqliteStore[] = [];

afterEach(async () => {
  for (const store of stores) await store.close();
  stores = [];
});

function runnerWith(options: ToolRunnerOptions = {}): ToolRunner {
  const store = openSqliteStore({ path: ':memory:' });
  stores.push(store);
  return new ToolRunner({ store, ...options });
}

function contextFor(attempt = 1): Omit<ToolContext, 'credentials'> {
  const values = new Map<string, unknown>();
  return {
    workflowId: 'wf_unit',
    step: 3,
    idempotencyKey: 'wf_unit:3',
    attempt,
    principal,
    signal: new AbortController().signal,
    logger: silentLogger,
    input: {},
    get: <T>(key: string) => values.get(key) as T | undefined,
    set: (key, value) => void values.set(key, value),
    append: () => undefined,
  };
}

function toolOf(definition: Partial<Parameters<typeof defineTool>[0]> & Pick<AnyTool, 'execute'>): AnyTool {
  return defineTool({ name: 'lookup', description: 'Looks a thing up.', input: z.object({ id: z.string() }), ...definition });
}

describe('admit', () => {
  it('lets a tool without a service through without asking anything', async () => {
    const runner = runnerWith({ services: { payments: { rateLimit: { points: 1, durationSeconds: 60 } } } });
    const tool = toolOf({ execute: () => 'ok' });
    expect(await runner.admit(tool, principal)).toBeUndefined();
    expect(await runner.admit(tool, principal)).toBeUndefined();
  });

  it("refuses a call once the service's budget is spent, saying which budget and how long to wait", async () => {
    const runner = runnerWith({ services: { payments: { rateLimit: { perUser: { points: 1, durationSeconds: 60 } } } } });
    const tool = toolOf({ service: 'payments', execute: () => 'ok' });
    expect(await runner.admit(tool, principal)).toBeUndefined();
    const blocked = await runner.admit(tool, principal);
    expect(blocked).toMatchObject({ reason: 'rate-limit', service: 'payments' });
    expect(blocked!.waitMs).toBeGreaterThan(55_000);
    expect(blocked!.waitMs).toBeLessThanOrEqual(60_000);
    expect(blocked!.message).toBe(`service 'payments' budget for user alice is spent; next call in ${blocked!.waitMs} ms`);
    // Another user has a budget of their own.
    expect(await runner.admit(tool, { id: 'bob' })).toBeUndefined();
  });

  it("measures an open breaker's wait on the breaker's clock, whatever clock the runner was given", async () => {
    // The breaker (cockatiel) keeps wall-clock time; a runner on a manual clock set months away
    // must still wait about halfOpenAfterMs, not the distance between the two clocks.
    const runner = runnerWith({ clock: new ManualClock(Date.UTC(2020, 0, 1)), services: { payments: { breaker: { consecutiveFailures: 1, halfOpenAfterMs: 5_000 } } } });
    const tool = toolOf({ service: 'payments', execute: () => Promise.reject(new HttpError(503, 'service unavailable')) });
    const failed = await runner.attempt(tool, { id: 'c1' }, contextFor());
    expect(failed).toMatchObject({ ok: false, classification: { errorClass: 'transient' } });
    expect(runner.breakers.for('payments').state).toBe('open');

    const blocked = await runner.admit(tool, principal);
    expect(blocked).toMatchObject({ reason: 'circuit-open', service: 'payments' });
    expect(blocked!.waitMs).toBeGreaterThan(0);
    expect(blocked!.waitMs).toBeLessThanOrEqual(5_000);
    expect(blocked!.message).toBe(`the circuit breaker of service 'payments' is open; a probe call may go in ${blocked!.waitMs} ms`);
  });

  it('lets no call through while a 429 pauses the service, even for a service without a budget of its own', async () => {
    const runner = runnerWith();
    let calls = 0;
    const tool = toolOf({
      service: 'payments',
      execute: () => {
        calls++;
        throw new HttpError(429, 'too many requests', { 'retry-after': '30' });
      },
    });
    const outcome = await runner.attempt(tool, { id: 'c1' }, contextFor());
    expect(outcome).toMatchObject({ ok: false, classification: { errorClass: 'rate-limited', retryAfterMs: 30_000 } });

    const blocked = await runner.admit(tool, principal);
    expect(blocked).toMatchObject({ reason: 'rate-limit', service: 'payments' });
    expect(blocked!.message).toMatch(/^service 'payments' is paused after a 429; next call in \d+ ms$/);
    expect(blocked!.waitMs).toBeGreaterThan(25_000);
    expect(calls).toBe(1);
  });
});

describe('attempt', () => {
  it("classifies a failure with the tool's own classify first, and redacts the message", async () => {
    const runner = runnerWith({ secrets: () => ['sk-test-0123456789'] });
    const tool = toolOf({
      classify: (error) => ((error as HttpError).status === 409 ? 'transient' : undefined),
      execute: () => Promise.reject(new HttpError(409, 'key sk-test-0123456789 still in flight')),
    });
    const outcome = await runner.attempt(tool, { id: 'c1' }, contextFor());
    expect(outcome).toMatchObject({
      ok: false,
      classification: { errorClass: 'transient', reason: "tool 'lookup' classify()" },
      message: 'key [REDACTED] still in flight',
    });
  });

  it('hands the tool a token from its service, and invalidates it when the service rejects it', async () => {
    let issued = 0;
    const provider = createCredentialProvider({ service: 'payments', fetchToken: async () => ({ token: `token-number-${++issued}` }) });
    const runner = runnerWith({ services: { payments: { credentials: provider } } });
    const seen: string[] = [];
    const tool = toolOf({
      service: 'payments',
      execute: async (_args, context) => {
        const token = await context.credentials();
        seen.push(token);
        if (seen.length === 1) throw new HttpError(401, 'token expired');
        return 'ok';
      },
    });
    const first = await runner.attempt(tool, { id: 'c1' }, contextFor(1));
    expect(first).toMatchObject({ ok: false, classification: { errorClass: 'auth-expired' } });
    const second = await runner.attempt(tool, { id: 'c1' }, contextFor(2));
    expect(second).toMatchObject({ ok: true, result: 'ok' });
    // The runner invalidated the rejected token, so the second attempt got a fresh one.
    expect(seen).toEqual(['token-number-1', 'token-number-2']);
    expect(provider.stats.refreshes).toBe(2);
  });

  it('tells a tool that asks for credentials without a provider how to declare one', async () => {
    const runner = runnerWith();
    const tool = toolOf({ service: 'payments', execute: async (_args, context) => context.credentials() });
    const outcome = await runner.attempt(tool, { id: 'c1' }, contextFor());
    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: unknown }).error;
    expect(KeelError.isInstance(error) && error.code).toBe('INVALID_DEFINITION');
    expect((outcome as { message: string }).message).toBe(
      "Tool 'lookup' asked for credentials, but service 'payments' has no credential provider. " +
        "Give the tool a service and declare the service with credentials (createCredentialProvider) in the agent's or createKeel's services.",
    );
  });
});

describe('cached results for a fallback', () => {
  it('keeps the last good result per arguments, and only for a tool whose fallback is the cache', async () => {
    const clock = new ManualClock();
    const runner = runnerWith({ clock });
    let price = 10;
    const cached = toolOf({ fallback: { cached: true, maxAgeMs: 60_000 }, execute: (args: { id: string }) => ({ id: args.id, price }) });
    const uncached = toolOf({ name: 'quote', execute: () => ({ price }) });
    await runner.attempt(cached, { id: 'a' }, contextFor());
    price = 12;
    await runner.attempt(cached, { id: 'b' }, contextFor());
    await runner.attempt(uncached, { id: 'a' }, contextFor());
    clock.advance(30_000);

    expect(runner.cachedResult(cached, { id: 'a' })).toEqual({ result: { id: 'a', price: 10 }, ageMs: 30_000 });
    expect(runner.cachedResult(cached, { id: 'b' })).toEqual({ result: { id: 'b', price: 12 }, ageMs: 30_000 });
    expect(runner.cachedResult(cached, { id: 'c' })).toBeUndefined();
    expect(runner.cachedResult(uncached, { id: 'a' })).toBeUndefined();
    clock.advance(30_001);
    expect(runner.cachedResult(cached, { id: 'a' })).toBeUndefined();
  });

  it('keeps nothing from a failed attempt', async () => {
    const runner = runnerWith();
    const tool = toolOf({ fallback: { cached: true }, execute: () => Promise.reject(new ToolError('transient', 'down')) });
    await runner.attempt(tool, { id: 'a' }, contextFor());
    expect(runner.cachedResult(tool, { id: 'a' })).toBeUndefined();
  });
});

describe('settings', () => {
  it("reads the retry policy from retry, with maxAttempts as shorthand, and keeps a service's first declaration", async () => {
    const runner = runnerWith({ services: { payments: { rateLimit: { points: 1, durationSeconds: 60 } } } });
    expect(runner.maxAttemptsOf(toolOf({ execute: () => 1 }))).toBe(3);
    expect(runner.maxAttemptsOf(toolOf({ maxAttempts: 5, execute: () => 1 }))).toBe(5);
    expect(runner.maxAttemptsOf(toolOf({ maxAttempts: 5, retry: { maxAttempts: 2 }, execute: () => 1 }))).toBe(2);

    // A later declaration (another agent's) does not loosen the budget declared first.
    runner.configure('payments', { rateLimit: { points: 100, durationSeconds: 1 } });
    const tool = toolOf({ service: 'payments', execute: () => 1 });
    expect(await runner.admit(tool, principal)).toBeUndefined();
    expect(await runner.admit(tool, principal)).toMatchObject({ reason: 'rate-limit' });
  });
});

describe('describe', () => {
  it('writes every failure in one format, with configured secrets redacted', () => {
    const runner = runnerWith({ secrets: () => ['hunter2-hunter2'] });
    const message = runner.describe({
      tool: 'pay_claim',
      workflowId: 'wf_8f2c',
      step: 7,
      errorClass: 'transient',
      attempt: 2,
      maxAttempts: 4,
      what: 'HTTP 503: password hunter2-hunter2 rejected',
      next: 'retrying in 1600 ms (backoff with jitter)',
    });
    expect(message).toBe("Tool 'pay_claim' failed (transient, attempt 2 of 4, workflow wf_8f2c, step 7): HTTP 503: password [REDACTED] rejected; retrying in 1600 ms (backoff with jitter).");
  });
});
