// The step loop with the resilient tool runner: what each failed attempt journals (class, delay,
// the one message format), short waits held in the worker and long ones parked durably and taken
// up by another worker, the total-time cap across a park, open breakers and spent rate budgets,
// credential refresh, the three kinds of fallback, a completed call never repeated on resume,
// secrets kept out of the journal, and `work({ once })` waiting only for the runner's timers.
// Tiny agents decided in code; the journal in the store is what every test reads.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { JournalEntry } from '../store/types.js';
import { createCredentialProvider } from '../tools/credentials.js';
import { steadySlotMs } from '../tools/rate-budget.js';
import { ToolError } from '../tools/tool-error.js';
import { defineTool, type AnyTool, type ToolDefinition } from '../tools/tool.js';
import { ManualClock, systemClock, type Clock } from '../util/clock.js';
import { defineAgent, type Agent } from './define-agent.js';
import type { KeelEvent } from './events.js';
import { createKeel, type Keel, type KeelOptions } from './keel.js';
import { addGrant } from '../security/grants.js';
import { HttpError } from '../../test/support/http-error.js';

let keels: Keel[] = [];
let directories: string[] = [];

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(keels.map((keel) => keel.close()));
  keels = [];
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  directories = [];
});

/** A Keel on its own in-memory database. */
function keelFor(agent: Agent, options: Partial<KeelOptions> & { clock?: Clock } = {}): Keel {
  const clock = options.clock ?? new ManualClock();
  const keel = createKeel({ store: openSqliteStore({ path: ':memory:', clock }), agents: [agent], clock, workerId: 'worker-1', ...options });
  keels.push(keel);
  return keel;
}

/** A database file that several Keels (workers) can open, as separate processes would. */
function sharedFile(): string {
  const directory = mkdtempSync(join(tmpdir(), 'keel-runner-loop-'));
  directories.push(directory);
  return join(directory, 'keel.db');
}

function workerOn(path: string, agent: Agent, workerId: string, clock: Clock, options: Partial<KeelOptions> = {}): Keel {
  const keel = createKeel({ store: openSqliteStore({ path, clock }), agents: [agent], clock, workerId, ...options });
  keels.push(keel);
  return keel;
}

/** One tool in one state, then done: the smallest agent that calls it. */
function oneCallAgent(tool: AnyTool, args: unknown, extra: Partial<Parameters<typeof defineAgent>[0]> = {}): Agent {
  return defineAgent({
    name: 'one-call',
    tools: [tool],
    initial: 'calling',
    states: { calling: { tools: [tool.name], next: ['done'], on: { [tool.name]: 'done' } }, done: { final: true } },
    decide: () => ({ tool: tool.name, args }),
    ...extra,
  });
}

function toolNamed(name: string, definition: Omit<ToolDefinition<z.ZodObject<{ id: z.ZodString }>>, 'name' | 'description' | 'input'>): AnyTool {
  return defineTool({ name, description: `The ${name} tool.`, input: z.object({ id: z.string() }), ...definition });
}

function ofKind(journal: JournalEntry[], kind: string): JournalEntry[] {
  return journal.filter((entry) => entry.kind === kind);
}

function dataOf(entry: JournalEntry | undefined): Record<string, unknown> {
  return (entry?.data ?? {}) as Record<string, unknown>;
}

describe('retries', () => {
  it('retries in the worker, journaling each attempt with its class, delay and one message format, then records the success', async () => {
    const calls: [string, number][] = [];
    const events: KeelEvent[] = [];
    const flaky = toolNamed('fetch_rate', {
      retry: { maxAttempts: 4, baseDelayMs: 20 },
      execute: (args, ctx) => {
        calls.push([ctx.idempotencyKey, ctx.attempt]);
        if (ctx.attempt < 3) throw new HttpError(503, 'service unavailable');
        return { id: args.id, rate: 1.1 };
      },
    });
    const keel = keelFor(oneCallAgent(flaky, { id: 'eur' }), { onEvent: (event) => events.push(event) });

    const final = await keel.startAndRun('one-call', {}, { id: 'wf_flaky' });

    expect(final).toMatchObject({ status: 'completed', state: 'done' });
    expect(calls).toEqual([
      ['wf_flaky:0', 1],
      ['wf_flaky:0', 2],
      ['wf_flaky:0', 3],
    ]);
    const { journal } = await keel.inspect(final.id);
    const failed = ofKind(journal, 'tool-call-failed');
    expect(failed.map((entry) => [entry.status, entry.attempt])).toEqual([
      ['transient', 1],
      ['transient', 2],
    ]);
    for (const [index, entry] of failed.entries()) {
      const data = dataOf(entry);
      const delayMs = data.delayMs as number;
      expect(delayMs).toBeGreaterThanOrEqual(0);
      expect(delayMs).toBeLessThanOrEqual(20 * 2 ** index);
      expect(data).toMatchObject({ errorClass: 'transient', classifiedBy: 'HTTP 503', parked: false, final: false, args: { id: 'eur' } });
      expect(data.message).toBe(
        `Tool 'fetch_rate' failed (transient, attempt ${index + 1} of 4, workflow wf_flaky, step 0): HTTP 503: service unavailable; retrying in ${delayMs} ms (backoff with jitter).`,
      );
    }
    expect(ofKind(journal, 'tool-call-completed')).toMatchObject([{ attempt: 3, data: { result: { id: 'eur', rate: 1.1 } } }]);
    expect(events.filter((event) => event.type === 'tool-attempt-failed')).toEqual(
      failed.map((entry) => ({ type: 'tool-attempt-failed', workflowId: 'wf_flaky', step: 0, tool: 'fetch_rate', attempt: entry.attempt, errorClass: 'transient', delayMs: dataOf(entry).delayMs })),
    );
    expect(ofKind(journal, 'workflow-parked')).toEqual([]);
  });

  it('parks a backoff longer than parkAfterMs and releases the lease; another worker on the same file takes it up when due, same key, next attempt', async () => {
    const path = sharedFile();
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
    const calls: [string, string, number][] = [];
    let worker = '';
    const tool = toolNamed('pay', {
      sideEffect: true,
      execute: (args, ctx) => {
        calls.push([worker, ctx.idempotencyKey, ctx.attempt]);
        if (ctx.attempt === 1) throw new ToolError('transient', 'payments answered 503', { retryAfterMs: 5_000 });
        return { paid: args.id };
      },
    });
    const agent = oneCallAgent(tool, { id: 'c1' });
    const first = workerOn(path, agent, 'worker-1', clock, { parkAfterMs: 1_000 });
    const second = workerOn(path, agent, 'worker-2', clock, { parkAfterMs: 1_000 });

    worker = 'worker-1';
    const parked = await first.startAndRun('one-call', {}, { id: 'wf_park' });

    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'retry', wakeAt: clock.now() + 5_000, leaseOwner: null, step: 0 });
    let { journal } = await first.inspect('wf_park');
    const failedEntry = ofKind(journal, 'tool-call-failed')[0];
    expect(failedEntry).toMatchObject({ attempt: 1, status: 'transient', data: { delayMs: 5_000, parked: true, wakeAt: clock.now() + 5_000, final: false } });
    expect(dataOf(failedEntry).message).toBe(
      "Tool 'pay' failed (transient, attempt 1 of 3, workflow wf_park, step 0): payments answered 503; " +
        "retrying in 5000 ms (the service's Retry-After of 5000 ms), parked until 12:00:05Z for any worker to take up.",
    );
    expect(ofKind(journal, 'workflow-parked')).toMatchObject([{ name: 'retry', status: 'waiting', data: { wakeAt: clock.now() + 5_000 } }]);

    // Not due yet: nobody takes it.
    clock.advance(4_999);
    expect(await second.runNext()).toBeUndefined();
    clock.advance(1);
    worker = 'worker-2';
    const finished = await second.runNext();

    expect(finished).toMatchObject({ id: 'wf_park', status: 'completed', state: 'done' });
    expect(calls).toEqual([
      ['worker-1', 'wf_park:0', 1],
      ['worker-2', 'wf_park:0', 2],
    ]);
    ({ journal } = await second.inspect('wf_park'));
    expect(ofKind(journal, 'tool-call-completed')).toMatchObject([{ attempt: 2, data: { result: { paid: 'c1' } } }]);
    // The decision was taken once, by the first worker.
    expect(ofKind(journal, 'action-decided')).toHaveLength(1);
  });

  it('counts the total-time cap from the first attempt, across a park', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const tool = toolNamed('pay', {
      retry: { maxAttempts: 5, maxTotalMs: 10_000 },
      execute: () => {
        calls++;
        throw new ToolError('rate-limited', 'slow down', { retryAfterMs: 6_000 });
      },
    });
    const keel = keelFor(oneCallAgent(tool, { id: 'c1' }), { clock, parkAfterMs: 1_000 });

    const parked = await keel.startAndRun('one-call', {}, { id: 'wf_cap' });
    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'retry' });
    clock.advance(6_000);
    const final = await keel.runNext();

    // A worker that counted from its own start (0 ms spent) would have retried again.
    expect(calls).toBe(2);
    expect(final).toMatchObject({ id: 'wf_cap', status: 'failed' });
    expect(final!.failure).toMatchObject({ code: 'TOOL_FAILED', tool: 'pay', errorClass: 'rate-limited', attempts: 2 });
    expect(final!.failure!.message).toMatch(
      /^Tool 'pay' failed \(rate-limited, attempt 2 of 5, workflow wf_cap, step 0\): slow down; the workflow fails \(waiting 6000 ms would exceed the 10000 ms limit for this call \(600\d ms spent since the first attempt, attempt 2 of 5\)\)\.$/,
    );
  });
});

describe('a worker asked to stop', () => {
  it('parks a retry it would otherwise sleep through, so shutdown does not wait for it and the timer survives', async () => {
    const stop = new AbortController();
    let calls = 0;
    const tool = toolNamed('pay', {
      execute: () => {
        calls++;
        // The worker is told to stop while this call runs; the retry would come 500 ms later.
        stop.abort();
        throw new ToolError('transient', 'busy', { retryAfterMs: 500 });
      },
    });
    const clock = new ManualClock();
    const keel = keelFor(oneCallAgent(tool, { id: 'c1' }), { clock, parkAfterMs: 2_000 });
    const started = await keel.start('one-call', {});

    await keel.work({ once: true, concurrency: 1, signal: stop.signal });

    expect(calls).toBe(1);
    expect(await keel.store.getWorkflow(started.id)).toMatchObject({ status: 'waiting', waitingFor: 'retry', wakeAt: clock.now() + 500, leaseOwner: null });
    const { journal } = await keel.inspect(started.id);
    expect(ofKind(journal, 'tool-call-failed')).toMatchObject([{ attempt: 1, data: { delayMs: 500, parked: true } }]);
  });
});

describe('services: breakers and rate budgets', () => {
  it('parks a call whose breaker is open without calling the tool, and the probe goes once the breaker allows it', async () => {
    // Breakers keep wall-clock time: fake Date moves the breaker, the store and Keel together.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2026, 0, 1, 12, 0, 0));
    let calls = 0;
    const tool = toolNamed('pay', {
      service: 'payments',
      execute: (args) => {
        calls++;
        return { paid: args.id };
      },
    });
    const agent = oneCallAgent(tool, { id: 'c1' }, { services: { payments: { breaker: { consecutiveFailures: 2, halfOpenAfterMs: 10_000 } } } });
    const keel = keelFor(agent, { clock: systemClock });
    const breaker = keel.runner.breakers.for('payments');
    for (let i = 0; i < 2; i++) await breaker.run(() => Promise.reject(new HttpError(503, 'down'))).catch(() => undefined);
    expect(breaker.state).toBe('open');

    const parked = await keel.startAndRun('one-call', {}, { id: 'wf_open' });

    expect(calls).toBe(0);
    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'circuit-open', wakeAt: Date.UTC(2026, 0, 1, 12, 0, 10), leaseOwner: null });
    let { journal } = await keel.inspect('wf_open');
    expect(ofKind(journal, 'tool-call-deferred')).toEqual([
      expect.objectContaining({
        name: 'pay',
        status: 'circuit-open',
        attempt: 1,
        data: {
          service: 'payments',
          waitMs: 10_000,
          parked: true,
          wakeAt: Date.UTC(2026, 0, 1, 12, 0, 10),
          message: "the circuit breaker of service 'payments' is open; a probe call may go in 10000 ms",
        },
      }),
    ]);
    expect(ofKind(journal, 'tool-call-failed')).toEqual([]);

    vi.setSystemTime(Date.UTC(2026, 0, 1, 12, 0, 10));
    const final = await keel.runNext();

    expect(final).toMatchObject({ id: 'wf_open', status: 'completed' });
    expect(calls).toBe(1);
    expect(breaker.state).toBe('closed');
    ({ journal } = await keel.inspect('wf_open'));
    expect(ofKind(journal, 'tool-call-completed')).toMatchObject([{ attempt: 1 }]);
  });

  it('waits in the worker, journaled, when the rate budget frees up soon', async () => {
    let calls = 0;
    const tool = toolNamed('quote', {
      service: 'quotes',
      execute: (args) => {
        calls++;
        return { quoted: args.id };
      },
    });
    // One call a second: the second workflow starts well within the first call's slot, even on a
    // busy machine, and the wait is still short enough to be held in the worker (under 2 s).
    const agent = oneCallAgent(tool, { id: 'c1' }, { services: { quotes: { rateLimit: { perSecond: 1 } } } });
    const keel = keelFor(agent);

    const first = await keel.startAndRun('one-call', {});
    const second = await keel.startAndRun('one-call', {});

    expect([first.status, second.status]).toEqual(['completed', 'completed']);
    expect(calls).toBe(2);
    const { journal } = await keel.inspect(second.id);
    const deferred = ofKind(journal, 'tool-call-deferred');
    expect(deferred.length).toBeGreaterThanOrEqual(1);
    expect(deferred[0]).toMatchObject({ name: 'quote', status: 'rate-limit', attempt: 1, data: { service: 'quotes', parked: false } });
    // The limiter rounds its fractional-second window up by a millisecond or so.
    expect(dataOf(deferred[0]).waitMs as number).toBeLessThanOrEqual(steadySlotMs(1) + 5);
    expect(dataOf(deferred[0]).message).toMatch(/^service 'quotes' rate budget is spent; next call in \d+ ms$/);
    expect(ofKind(journal, 'workflow-parked')).toEqual([]);
  });

  it("parks the workflow when the rate budget's wait is long", async () => {
    const clock = new ManualClock();
    let calls = 0;
    const tool = toolNamed('quote', {
      service: 'quotes',
      execute: () => {
        calls++;
        return 'ok';
      },
    });
    const agent = oneCallAgent(tool, { id: 'c1' }, { services: { quotes: { rateLimit: { points: 1, durationSeconds: 60 } } } });
    const keel = keelFor(agent, { clock });

    await keel.startAndRun('one-call', {});
    const parked = await keel.startAndRun('one-call', {});

    expect(calls).toBe(1);
    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'rate-limit', leaseOwner: null });
    expect(parked.wakeAt! - clock.now()).toBeGreaterThan(55_000);
    expect(parked.wakeAt! - clock.now()).toBeLessThanOrEqual(60_000);
    const { journal } = await keel.inspect(parked.id);
    expect(ofKind(journal, 'tool-call-deferred')).toMatchObject([{ status: 'rate-limit', data: { service: 'quotes', parked: true, wakeAt: parked.wakeAt } }]);
    expect(ofKind(journal, 'workflow-parked')).toMatchObject([{ name: 'rate-limit', data: { wakeAt: parked.wakeAt } }]);
    expect(dataOf(ofKind(journal, 'workflow-parked')[0]).message).toMatch(/^Tool 'quote' cannot run now: service 'quotes' rate budget is spent; next call in \d+ ms$/);
  });
});

describe('credentials', () => {
  function paymentsWithTokens(rejectEveryToken: boolean) {
    let issued = 0;
    const provider = createCredentialProvider({ service: 'payments', fetchToken: async () => ({ token: `payments-token-${++issued}` }) });
    const seen: string[] = [];
    const tool = toolNamed('pay', {
      service: 'payments',
      sideEffect: true,
      execute: async (args, ctx) => {
        const token = await ctx.credentials();
        seen.push(token);
        if (rejectEveryToken || seen.length === 1) throw new HttpError(401, 'token expired');
        return { paid: args.id };
      },
    });
    const agent = oneCallAgent(tool, { id: 'c1' }, { services: { payments: { credentials: provider } } });
    return { provider, seen, agent };
  }

  it('refreshes the token once after an auth-expired failure and retries at once', async () => {
    const { provider, seen, agent } = paymentsWithTokens(false);
    const keel = keelFor(agent);

    const final = await keel.startAndRun('one-call', {}, { id: 'wf_auth' });

    expect(final.status).toBe('completed');
    expect(seen).toEqual(['payments-token-1', 'payments-token-2']);
    expect(provider.stats.refreshes).toBe(2);
    const { journal } = await keel.inspect(final.id);
    expect(ofKind(journal, 'tool-call-failed')).toMatchObject([{ status: 'auth-expired', attempt: 1, data: { delayMs: 0, final: false } }]);
    expect(dataOf(ofKind(journal, 'tool-call-failed')[0]).message).toBe(
      "Tool 'pay' failed (auth-expired, attempt 1 of 3, workflow wf_auth, step 0): HTTP 401: token expired; retrying in 0 ms (credentials are refreshed first).",
    );
  });

  it('fails with a clear message on a second auth-expired in a row, after exactly one refresh', async () => {
    const { provider, seen, agent } = paymentsWithTokens(true);
    const keel = keelFor(agent);

    const final = await keel.startAndRun('one-call', {}, { id: 'wf_auth2' });

    expect(final.status).toBe('failed');
    expect(seen).toEqual(['payments-token-1', 'payments-token-2']);
    expect(provider.stats.refreshes).toBe(2);
    expect(final.failure).toMatchObject({ code: 'TOOL_FAILED', tool: 'pay', errorClass: 'auth-expired', attempts: 2 });
    expect(final.failure!.message).toBe(
      "Tool 'pay' failed (auth-expired, attempt 2 of 3, workflow wf_auth2, step 0): HTTP 401: token expired; " +
        'the workflow fails (still auth-expired after refreshing credentials (attempt 2 of 3); not retried again).',
    );
  });
});

describe('fallbacks', () => {
  const down = () => {
    throw new HttpError(503, 'rates service unavailable');
  };

  it('uses another tool after the retries are exhausted, and journals the fallback', async () => {
    const primary = toolNamed('live_rate', { retry: { maxAttempts: 2, baseDelayMs: 1 }, fallback: { tool: 'published_rate' }, execute: down });
    const secondary = toolNamed('published_rate', {
      execute: (args, ctx) => {
        ctx.set('source', 'published');
        return { id: args.id, rate: 1.08 };
      },
    });
    const agent = defineAgent({
      name: 'rates',
      tools: [primary, secondary],
      initial: 'pricing',
      states: { pricing: { tools: ['live_rate'], next: ['done'], on: { live_rate: 'done' } }, done: { final: true } },
      decide: () => ({ tool: 'live_rate', args: { id: 'eur' } }),
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('rates', {}, { id: 'wf_fb_tool' });

    expect(final).toMatchObject({ status: 'completed', state: 'done' });
    const { journal } = await keel.inspect(final.id);
    expect(journal.filter((entry) => entry.step === 0).map((entry) => entry.kind)).toEqual([
      'workflow-started',
      'action-decided',
      'tool-call-failed',
      'tool-call-failed',
      'fallback-used',
      'tool-call-completed',
      'state-changed',
    ]);
    const lastFailure = ofKind(journal, 'tool-call-failed')[1]!;
    expect(dataOf(lastFailure).message).toBe(
      "Tool 'live_rate' failed (transient, attempt 2 of 2, workflow wf_fb_tool, step 0): HTTP 503: rates service unavailable; using the fallback (no attempts left (attempt 2 of 2)).",
    );
    expect(ofKind(journal, 'fallback-used')).toMatchObject([{ name: 'live_rate', status: 'tool', data: { tool: 'published_rate', instead: 'live_rate', errorClass: 'transient' } }]);
    expect(ofKind(journal, 'tool-call-completed')).toMatchObject([{ name: 'live_rate', attempt: 2, data: { fallback: 'tool', result: { id: 'eur', rate: 1.08 } } }]);
    // The fallback tool's context writes are committed with the step.
    expect(await keel.store.loadContext(final.id)).toEqual({ source: 'published' });
  });

  function ratesWithFallback(secondary: AnyTool, extra: Partial<Parameters<typeof defineAgent>[0]> = {}): Agent {
    const primary = toolNamed('live_rate', { retry: { maxAttempts: 1 }, fallback: { tool: secondary.name }, permission: 'rates:read', execute: down });
    return defineAgent({
      name: 'rates',
      tools: [primary, secondary],
      initial: 'pricing',
      states: { pricing: { tools: ['live_rate'], next: ['done'], on: { live_rate: 'done' } }, done: { final: true } },
      decide: () => ({ tool: 'live_rate', args: { id: 'eur' } }),
      ...extra,
    });
  }

  it("runs the fallback tool only within its own service's rate budget: a spent budget is no result, never a wait", async () => {
    let published = 0;
    const secondary = toolNamed('published_rate', {
      service: 'published',
      execute: (args) => {
        published++;
        return { id: args.id, rate: 1.08 };
      },
    });
    const keel = keelFor(ratesWithFallback(secondary, { services: { published: { rateLimit: { points: 1, durationSeconds: 60 } } } }));

    expect((await keel.startAndRun('rates', {})).status).toBe('completed');
    const second = await keel.startAndRun('rates', {}, { id: 'wf_fb_budget' });

    expect(published).toBe(1);
    expect(second).toMatchObject({ status: 'failed', failure: { code: 'TOOL_FAILED' } });
    expect(second.failure!.message).toMatch(/its fallback gave no result: tool 'published_rate' cannot run now: service 'published' rate budget is spent; next call in \d+ ms\.$/);
  });

  it('runs the fallback tool only within the principal\'s grants, and audits its permission decision', async () => {
    let published = 0;
    const secondary = toolNamed('published_rate', {
      permission: 'rates:published',
      execute: (args) => {
        published++;
        return { id: args.id, rate: 1.08 };
      },
    });
    const clock = new ManualClock();
    const keel = keelFor(ratesWithFallback(secondary, { permissions: ['rates:read', 'rates:published'] }), { security: {}, clock });
    await addGrant(keel.store, { principalId: 'eve', permission: 'rates:read', by: 'ops' }, clock.now());

    const final = await keel.startAndRun('rates', {}, { principal: { id: 'eve' } });

    expect(published).toBe(0);
    expect(final).toMatchObject({ status: 'failed', failure: { code: 'TOOL_FAILED' } });
    expect(final.failure!.message).toContain("its fallback gave no result: tool 'published_rate' may not run: Permission denied: tool 'published_rate'");
    const denied = (await keel.store.readAudit({ workflowId: final.id })).filter((entry) => entry.kind === 'permission.decided' && entry.outcome === 'deny');
    expect(denied).toMatchObject([{ subject: 'published_rate', data: { permission: 'rates:published', code: 'no-grant' } }]);
  });

  it("uses this worker's last good result for the same arguments, and says how old it is", async () => {
    const clock = new ManualClock();
    let healthy = true;
    const rate = toolNamed('live_rate', {
      retry: { maxAttempts: 2, baseDelayMs: 1 },
      fallback: { cached: true, maxAgeMs: 60_000 },
      execute: (args) => {
        if (!healthy) down();
        return { id: args.id, rate: 1.1 };
      },
    });
    const keel = keelFor(oneCallAgent(rate, { id: 'eur' }), { clock });
    await keel.startAndRun('one-call', {});
    healthy = false;
    clock.advance(20_000);

    const final = await keel.startAndRun('one-call', {});

    expect(final.status).toBe('completed');
    const { journal } = await keel.inspect(final.id);
    expect(ofKind(journal, 'fallback-used')).toMatchObject([{ status: 'cached', data: { ageMs: 20_000, instead: 'live_rate', errorClass: 'transient' } }]);
    expect(ofKind(journal, 'tool-call-completed')).toMatchObject([{ data: { fallback: 'cached', result: { id: 'eur', rate: 1.1 } } }]);
  });

  it('fails, saying the cache had nothing, when no cached result is young enough', async () => {
    const rate = toolNamed('live_rate', { retry: { maxAttempts: 1 }, fallback: { cached: true, maxAgeMs: 60_000 }, execute: down });
    const keel = keelFor(oneCallAgent(rate, { id: 'eur' }));

    const final = await keel.startAndRun('one-call', {}, { id: 'wf_fb_miss' });

    expect(final.status).toBe('failed');
    expect(final.failure!.message).toBe(
      "Tool 'live_rate' failed (transient, attempt 1 of 1, workflow wf_fb_miss, step 0): HTTP 503: rates service unavailable; " +
        'the workflow fails (no attempts left (attempt 1 of 1)), and its fallback gave no result: this worker holds no cached result for these arguments younger than 60000 ms.',
    );
    const { journal } = await keel.inspect(final.id);
    expect(ofKind(journal, 'fallback-used')).toEqual([]);
  });

  it('computes a degraded value from the arguments and the failure', async () => {
    const failures: { errorClass: string; message: string }[] = [];
    const rate = toolNamed('live_rate', {
      retry: { maxAttempts: 1 },
      fallback: {
        value: (args: { id: string }, failure: { errorClass: string; message: string }) => {
          failures.push(failure);
          return { id: args.id, rate: null, degraded: true };
        },
      },
      execute: down,
    });
    const keel = keelFor(oneCallAgent(rate, { id: 'eur' }));

    const final = await keel.startAndRun('one-call', {}, { id: 'wf_fb_value' });

    expect(final.status).toBe('completed');
    expect(failures).toEqual([
      {
        errorClass: 'transient',
        message: "Tool 'live_rate' failed (transient, attempt 1 of 1, workflow wf_fb_value, step 0): HTTP 503: rates service unavailable; using the fallback (no attempts left (attempt 1 of 1)).",
      },
    ]);
    const { journal } = await keel.inspect(final.id);
    expect(ofKind(journal, 'fallback-used')).toMatchObject([{ status: 'value', data: { instead: 'live_rate', errorClass: 'transient' } }]);
    expect(ofKind(journal, 'tool-call-completed')).toMatchObject([{ data: { fallback: 'value', result: { id: 'eur', rate: null, degraded: true } } }]);
  });

  it('does not fall back on invalid input: the decider sees the error and corrects the call', async () => {
    let fallbackUsed = false;
    const rate = toolNamed('live_rate', {
      fallback: {
        value: () => {
          fallbackUsed = true;
          return null;
        },
      },
      execute: (args) => {
        if (args.id !== 'eur') throw new ToolError('invalid-input', `unknown currency '${args.id}'`);
        return { rate: 1.1 };
      },
    });
    const agent = defineAgent({
      name: 'rates',
      tools: [rate],
      initial: 'pricing',
      states: { pricing: { tools: ['live_rate'], next: ['done'], on: { live_rate: 'done' } }, done: { final: true } },
      decide: (view) => ({ tool: 'live_rate', args: { id: view.lastObservation?.type === 'tool-error' ? 'eur' : 'euro' } }),
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('rates', {}, { id: 'wf_fb_invalid' });

    expect(final).toMatchObject({ status: 'completed', step: 2 });
    expect(fallbackUsed).toBe(false);
    const { journal } = await keel.inspect(final.id);
    expect(ofKind(journal, 'fallback-used')).toEqual([]);
    expect(ofKind(journal, 'tool-call-failed')).toMatchObject([{ step: 0, status: 'invalid-input', data: { final: true } }]);
    expect(dataOf(ofKind(journal, 'tool-call-failed')[0]).message).toBe(
      "Tool 'live_rate' failed (invalid-input, attempt 1 of 3, workflow wf_fb_invalid, step 0): unknown currency 'euro'; the decider sees the error.",
    );
  });
});

describe('a completed call is never repeated', () => {
  it('records the kept result on resume after an ILLEGAL_TRANSITION that followed a side effect, without calling the tool again', async () => {
    let target = 'nowhere';
    let payments = 0;
    const pay = toolNamed('pay', {
      sideEffect: true,
      execute: (args) => {
        payments++;
        return { paid: args.id };
      },
    });
    const agent = defineAgent({
      name: 'payer',
      tools: [pay],
      initial: 'paying',
      states: {
        paying: { tools: ['pay'], next: ['done'], on: { pay: () => target } },
        done: { final: true },
        nowhere: { final: true },
      },
      decide: () => ({ tool: 'pay', args: { id: 'c1' } }),
    });
    const keel = keelFor(agent);

    const failed = await keel.startAndRun('payer', {}, { id: 'wf_illegal' });
    expect(failed).toMatchObject({ status: 'failed', failure: { code: 'ILLEGAL_TRANSITION' } });
    expect(payments).toBe(1);

    // The fix: a transition the state allows (transition functions are not part of the fingerprint).
    target = 'done';
    const resumed = await keel.resume('wf_illegal');

    expect(resumed).toMatchObject({ status: 'completed', state: 'done' });
    expect(payments).toBe(1);
    const { journal } = await keel.inspect('wf_illegal');
    expect(ofKind(journal, 'tool-call-completed')).toHaveLength(1);
    expect(ofKind(journal, 'action-decided')).toHaveLength(1);
    expect(journal.filter((entry) => entry.step === 0).map((entry) => entry.kind)).toEqual([
      'workflow-started',
      'action-decided',
      'checkpoint-saved',
      'tool-call-completed',
      'workflow-failed',
      'workflow-resumed',
      'state-changed',
    ]);
  });
});

describe('secrets', () => {
  it("keeps credential tokens and configured secrets out of the journal and the failure record", async () => {
    const apiKey = 'sk-live-0123456789abcdef';
    const provider = createCredentialProvider({ service: 'payments', fetchToken: async () => ({ token: 'bearer-token-9f8e7d6c5b4a' }) });
    const pay = toolNamed('pay', {
      service: 'payments',
      retry: { maxAttempts: 2, baseDelayMs: 1 },
      execute: async (_args, ctx) => {
        const token = await ctx.credentials();
        if (ctx.attempt === 1) {
          throw new ToolError('transient', `gateway echoed Authorization: Bearer ${token} and key ${apiKey}`, { details: { authorization: `Bearer ${token}`, key: apiKey } });
        }
        throw new Error(`account locked for key ${apiKey} (token ${token})`);
      },
    });
    const agent = oneCallAgent(pay, { id: 'c1' }, { services: { payments: { credentials: provider } } });
    const keel = keelFor(agent, { secrets: () => [apiKey] });

    const final = await keel.startAndRun('one-call', {}, { id: 'wf_secrets' });

    expect(final.status).toBe('failed');
    const { journal } = await keel.inspect(final.id);
    const stored = JSON.stringify({ journal, failure: final.failure });
    expect(stored).not.toContain(apiKey);
    expect(stored).not.toContain('bearer-token-9f8e7d6c5b4a');
    expect(dataOf(ofKind(journal, 'tool-call-failed')[0])).toMatchObject({
      message: expect.stringMatching(/^Tool 'pay' failed \(transient, attempt 1 of 2, workflow wf_secrets, step 0\): gateway echoed Authorization: Bearer \[REDACTED\] and key \[REDACTED\]; retrying in \d+ ms/),
      details: { authorization: '[REDACTED]', key: '[REDACTED]' },
    });
    expect(final.failure!.message).toBe(
      "Tool 'pay' failed (fatal, attempt 2 of 2, workflow wf_secrets, step 0): unrecognised error: account locked for key [REDACTED] (token [REDACTED]); the workflow fails.",
    );
  });
});

describe('work({ once: true })', () => {
  it("waits for a retry timer that falls due, but not for a workflow waiting on something else", async () => {
    let calls = 0;
    const tool = toolNamed('pay', {
      execute: (args) => {
        calls++;
        if (calls === 1) throw new ToolError('transient', 'busy', { retryAfterMs: 60 });
        return { paid: args.id };
      },
    });
    const keel = keelFor(oneCallAgent(tool, { id: 'c1' }), { clock: systemClock, parkAfterMs: 10 });
    const retried = await keel.start('one-call', {});
    const approval = await keel.start('one-call', {});
    // A wait for a person (an approval that expires in an hour) is not the worker's to wait for.
    await keel.store.updateWorkflow(approval.id, { status: 'waiting', waitingFor: 'approval', wakeAt: Date.now() + 3_600_000 }, []);

    await keel.work({ once: true, concurrency: 1, pollMs: 20 });

    const [afterRetry, afterApproval] = await Promise.all([keel.store.getWorkflow(retried.id), keel.store.getWorkflow(approval.id)]);
    expect(afterRetry).toMatchObject({ status: 'completed' });
    expect(afterApproval).toMatchObject({ status: 'waiting', waitingFor: 'approval' });
    expect(calls).toBe(2);
    const { journal } = await keel.inspect(retried.id);
    expect(ofKind(journal, 'workflow-parked')).toMatchObject([{ name: 'retry' }]);
  });
});
