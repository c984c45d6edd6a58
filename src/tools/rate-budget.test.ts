// Rate budgets: quotas and steady rates refuse with a bounded wait, two stores on one file (two
// processes' worth) share one budget, users do not share theirs, a pause reaches every worker,
// and the counters live in a keel_rate_ table of the Keel database. Time is moved with fake Date.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeelError } from '../errors.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.js';
import { createRateBudget, rateLimitTable, steadyRateJitterMs, steadySlotMs, type RateBudget, type TakeResult } from './rate-budget.js';

const start = Date.UTC(2026, 0, 1, 12, 0, 0);

let directory: string;
let stores: SqliteStore[];

function openStoreOnSharedFile(): SqliteStore {
  const store = openSqliteStore({ path: join(directory, 'keel.db') });
  stores.push(store);
  return store;
}

async function takeTimes(budget: RateBudget, times: number, service = 'payments', userId?: string): Promise<TakeResult[]> {
  const results: TakeResult[] = [];
  for (let i = 0; i < times; i++) results.push(await budget.take(service, userId));
  return results;
}

function waitOf(result: TakeResult): number {
  if (result.ok) throw new Error('expected the budget to refuse');
  return result.waitMs;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(start);
  directory = mkdtempSync(join(tmpdir(), 'keel-rate-budget-'));
  stores = [];
});

afterEach(async () => {
  vi.useRealTimers();
  for (const store of stores) await store.close();
  rmSync(directory, { recursive: true, force: true });
});

describe('rate budget', () => {
  it('refuses the call after a quota of N per second with a wait of at most a second', async () => {
    const budget = createRateBudget({ store: openStoreOnSharedFile(), services: { payments: { points: 4, durationSeconds: 1 } } });
    const results = await takeTimes(budget, 5);
    expect(results.slice(0, 4)).toEqual(Array(4).fill({ ok: true }));
    expect(results[4]).toMatchObject({ ok: false, limit: 'service' });
    expect(waitOf(results[4])).toBeGreaterThan(0);
    expect(waitOf(results[4])).toBeLessThanOrEqual(1000);

    vi.setSystemTime(start + 1000);
    expect(await budget.take('payments')).toEqual({ ok: true });
  });

  it('spaces calls at a steady rate so that no second holds more than perSecond calls', async () => {
    const perSecond = 5;
    const budgets = [openStoreOnSharedFile(), openStoreOnSharedFile()].map((store) => createRateBudget({ store, services: { payments: { perSecond } } }));
    const first = await budgets[0].take('payments');
    const second = await budgets[1].take('payments');
    expect(first).toEqual({ ok: true });
    expect(waitOf(second)).toBeGreaterThan(0);
    expect(waitOf(second)).toBeLessThanOrEqual(steadySlotMs(perSecond));

    // Two workers asking every 7 ms for three seconds.
    const granted: number[] = [start];
    for (let now = start + 7; now < start + 3000; now += 7) {
      vi.setSystemTime(now);
      for (const budget of budgets) if ((await budget.take('payments')).ok) granted.push(now);
    }
    // Even a call delayed by steadyRateJitterMs on its way cannot make a second at the service hold more.
    for (const at of granted) {
      expect(granted.filter((other) => other >= at && other < at + 1000 + steadyRateJitterMs).length).toBeLessThanOrEqual(perSecond);
    }
    expect(granted.length).toBeGreaterThanOrEqual(3 * perSecond - 1);
  });

  it('is shared by two stores on the same file, as by two worker processes', async () => {
    const config = { services: { payments: { points: 3, durationSeconds: 10 } } };
    const a = createRateBudget({ store: openStoreOnSharedFile(), ...config });
    const b = createRateBudget({ store: openStoreOnSharedFile(), ...config });
    expect(await a.take('payments')).toEqual({ ok: true });
    expect(await b.take('payments')).toEqual({ ok: true });
    expect(await a.take('payments')).toEqual({ ok: true });
    const refusedB = await b.take('payments');
    const refusedA = await a.take('payments');
    expect(refusedB).toMatchObject({ ok: false, limit: 'service' });
    expect(waitOf(refusedB)).toBeGreaterThan(0);
    expect(waitOf(refusedB)).toBeLessThanOrEqual(10_000);
    expect(refusedA).toMatchObject({ ok: false, limit: 'service' });
    // Other services have budgets of their own (here: none configured, so no limit).
    expect(await takeTimes(b, 5, 'ledger')).toEqual(Array(5).fill({ ok: true }));
  });

  it("keeps each user's budget apart, and a refused call costs no budget", async () => {
    const budget = createRateBudget({
      store: openStoreOnSharedFile(),
      services: { payments: { points: 3, durationSeconds: 60, perUser: { points: 2, durationSeconds: 600 } } },
    });
    expect(await takeTimes(budget, 2, 'payments', 'alice')).toEqual([{ ok: true }, { ok: true }]);
    const alice = await budget.take('payments', 'alice');
    expect(alice).toMatchObject({ ok: false, limit: 'user' });
    expect(waitOf(alice)).toBeLessThanOrEqual(600_000);
    expect(await budget.take('payments', 'alice')).toMatchObject({ ok: false, limit: 'user' });
    // Alice's refused calls took nothing from the service: it still has one call left, for bob.
    expect(await budget.take('payments', 'bob')).toEqual({ ok: true });
    // Now the service is exhausted: bob is refused, and the point his own budget lent is given back.
    expect(await budget.take('payments', 'bob')).toMatchObject({ ok: false, limit: 'service' });
    vi.setSystemTime(start + 60_000);
    expect(await budget.take('payments', 'bob')).toEqual({ ok: true });
    expect(await budget.take('payments', 'bob')).toMatchObject({ ok: false, limit: 'user' });
    expect(await budget.take('payments', 'carol')).toEqual({ ok: true });
  });

  it('pauses a service for every worker on the store until the Retry-After has passed', async () => {
    const config = { services: { payments: { points: 100, durationSeconds: 1 } }, pauseCheckIntervalMs: 0 };
    const a = createRateBudget({ store: openStoreOnSharedFile(), ...config });
    const b = createRateBudget({ store: openStoreOnSharedFile(), ...config });
    await a.pause('payments', 30_000);
    for (const budget of [a, b]) {
      const result = await budget.take('payments');
      expect(result).toMatchObject({ ok: false, limit: 'paused' });
      expect(waitOf(result)).toBeGreaterThan(29_000);
      expect(waitOf(result)).toBeLessThanOrEqual(30_000);
    }
    // A shorter pause from another worker's 429 does not cut the longer one short.
    vi.setSystemTime(start + 10_000);
    await b.pause('payments', 5_000);
    expect(waitOf(await a.take('payments'))).toBeGreaterThan(15_000);
    expect(await a.take('ledger')).toEqual({ ok: true });

    vi.setSystemTime(start + 30_000);
    expect(await a.take('payments')).toEqual({ ok: true });
    expect(await b.take('payments')).toEqual({ ok: true });
  });

  it('notices another worker\'s pause within pauseCheckIntervalMs, without reading the store on every call', async () => {
    const a = createRateBudget({ store: openStoreOnSharedFile(), pauseCheckIntervalMs: 250 });
    const b = createRateBudget({ store: openStoreOnSharedFile(), pauseCheckIntervalMs: 250 });
    expect(await b.take('payments')).toEqual({ ok: true });
    await a.pause('payments', 10_000);
    vi.setSystemTime(start + 249);
    expect(await b.take('payments')).toEqual({ ok: true }); // what b read at `start` still holds
    vi.setSystemTime(start + 250);
    const result = await b.take('payments');
    expect(result).toMatchObject({ ok: false, limit: 'paused' });
    expect(waitOf(result)).toBe(9_750);
  });

  it('keeps its counters in a keel_rate_ table of the Keel database, which reopens cleanly', async () => {
    const store = openStoreOnSharedFile();
    const budget = createRateBudget({ store, services: { payments: { points: 1, durationSeconds: 60 } } });
    await budget.take('payments');
    const tables = (store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'keel_rate_%'").all() as Array<{ name: string }>).map(
      (table) => table.name,
    );
    expect(tables).toEqual([rateLimitTable]);
    await store.close();

    const reopened = openStoreOnSharedFile();
    const again = createRateBudget({ store: reopened, services: { payments: { points: 1, durationSeconds: 60 } } });
    expect(await again.take('payments')).toMatchObject({ ok: false, limit: 'service' });
  });

  it('keeps budgets in memory, per process, when there is no store backend', async () => {
    const budget = createRateBudget({ store: {}, services: { payments: { points: 2, durationSeconds: 1, perUser: { points: 1, durationSeconds: 1 } } } });
    expect(await budget.take('payments', 'alice')).toEqual({ ok: true });
    expect(await budget.take('payments', 'alice')).toMatchObject({ ok: false, limit: 'user' });
    expect(await budget.take('payments', 'bob')).toEqual({ ok: true });
    expect(await budget.take('payments')).toMatchObject({ ok: false, limit: 'service' });
    await budget.pause('ledger', 2000);
    expect(await budget.take('ledger')).toMatchObject({ ok: false, limit: 'paused' });
    vi.setSystemTime(start + 2000);
    expect(await budget.take('ledger')).toEqual({ ok: true });
  });

  it('reports a store it cannot use as STORE_UNAVAILABLE, naming the service', async () => {
    const store = openStoreOnSharedFile();
    const budget = createRateBudget({ store, services: { payments: { perSecond: 1 } } });
    await store.close();
    const error = await budget.take('payments').catch((caught: unknown) => caught);
    expect(KeelError.isInstance(error) && error.code).toBe('STORE_UNAVAILABLE');
    expect((error as KeelError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/^Could not take a call from the rate budget of service 'payments': the store failed/);
  });

  it('refuses budgets it cannot honour', () => {
    expect(() => createRateBudget({ services: { payments: { points: 5 } } })).toThrow(
      "Rate budget for 'payments' is not valid: points and durationSeconds go together: give both or neither.",
    );
    expect(() => createRateBudget({ services: { payments: { perSecond: 0 } } })).toThrow(/perSecond must be a positive number \(got 0\)/);
    expect(() => createRateBudget({ defaults: { perUser: { points: 1.5, durationSeconds: 1 } } })).toThrow(/^Rate budget for 'defaults' is not valid: perUser.points/);
  });
});
