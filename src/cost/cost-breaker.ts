// The cost circuit breaker: trips when the spend of the last hour exceeds a threshold, or when
// the error rate of the last window does; while open, new workflows are refused and running ones
// park (waiting for 'cost-breaker') before their next model call, with a message saying why and
// how to close it. It closes by an operator (`keel breaker reset`, which puts the workflows it
// parked back to work) or, when configured, after a cool-down (the workflows it parked wake then). Its state and the events it counts live in the store's database (tables
// keel_cost_breaker and keel_cost_breaker_events, created on first use like the rate-limit
// tables), so every worker and the CLI see one breaker.

import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { JournalKind, type NewJournalEntry, type RateLimiterBackend, type Store } from '../store/types.js';

export interface CostBreakerConfig {
  /** Trip when model spend over the last hour exceeds this (USD). */
  maxSpendPerHourUsd?: number;
  /** Trip when errors / (errors + successes) of tool calls and model calls over the window exceed this (0-1). */
  maxErrorRate?: number;
  /** The error-rate window (default 10 minutes). */
  errorWindowMs?: number;
  /** Calls the window must hold before the error rate counts (default 10). */
  minCalls?: number;
  /** Closes by itself this long after opening; without it only `keel breaker reset` closes it. */
  coolDownMs?: number;
}

export interface CostBreakerStatus {
  state: 'closed' | 'open';
  openedAt: number | null;
  reason: string | null;
  spendLastHourUsd: number;
  errorRate: number | null;
  calls: number;
}

const hourMs = 3_600_000;

/** A change of the breaker's state, for the audit log: who or what changed it, and why. */
export interface CostBreakerChange {
  from: 'closed' | 'open';
  to: 'closed' | 'open';
  reason: string;
  /** The operator who reset it; absent when the breaker changed by itself (a trip, a cool-down). */
  by?: string;
}

/** What a workflow the breaker parked waits for. */
export const costBreakerWait = 'cost-breaker';

/** Why no model call or new workflow may start now; `closesAt` when the breaker closes by itself. */
export interface CostBreakerRefusal {
  message: string;
  closesAt?: number;
}

/** Events older than both windows count for nothing; they are deleted at most this often. */
const pruneEveryMs = 60_000;

export class CostBreaker {
  private readonly db: BetterSqlite3.Database;
  /** Prepared once: `observe` runs for every commit and `refusal` before every model call. */
  private readonly sql: ReturnType<typeof prepareStatements>;
  private prunedAt = -Infinity;

  constructor(
    private readonly config: CostBreakerConfig,
    store: Pick<Store, 'rateLimiterBackend'> | undefined,
    private readonly now: () => number,
    /** Told of each change this instance makes (every worker and the CLI share the state, so each reports its own). */
    private readonly onChange?: (change: CostBreakerChange) => void,
  ) {
    const backend: RateLimiterBackend = store?.rateLimiterBackend?.() ?? { kind: 'memory' };
    this.db = backend.kind === 'sqlite' ? backend.db : new Database(':memory:');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS keel_cost_breaker (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, opened_at INTEGER, reason TEXT);
      CREATE TABLE IF NOT EXISTS keel_cost_breaker_events (at INTEGER NOT NULL, kind TEXT NOT NULL, usd REAL NOT NULL DEFAULT 0);
      CREATE INDEX IF NOT EXISTS keel_cost_breaker_events_at ON keel_cost_breaker_events (at);
      INSERT OR IGNORE INTO keel_cost_breaker (id, state) VALUES (1, 'closed');
    `);
    this.sql = prepareStatements(this.db);
  }

  recordSpend(usd: number): void {
    if (usd > 0) this.record('spend', usd);
  }

  /** Counts the outcomes of calls in a commit's journal entries. */
  observe(entries: readonly NewJournalEntry[]): void {
    for (const entry of entries) {
      const kind =
        entry.kind === JournalKind.toolCallCompleted || entry.kind === JournalKind.actionDecided
          ? 'ok'
          : entry.kind === JournalKind.toolCallFailed || entry.kind === JournalKind.modelCallFailed
            ? 'error'
            : undefined;
      if (kind) this.record(kind, 0);
    }
  }

  status(): CostBreakerStatus {
    const now = this.now();
    const row = this.sql.state.get() as { state: 'closed' | 'open'; openedAt: number | null; reason: string | null };
    const spend = (this.sql.spendSince.get(now - hourMs) as { usd: number }).usd;
    const counts = this.sql.callsSince.get(now - this.errorWindowMs()) as { errors: number | null; calls: number | null };
    const calls = counts.calls ?? 0;
    return { ...row, spendLastHourUsd: spend, errorRate: calls > 0 ? (counts.errors ?? 0) / calls : null, calls };
  }

  /**
   * Why no model call or new workflow may start now, or undefined. Trips the breaker when a
   * threshold is passed, and closes it after its cool-down.
   */
  refusal(): CostBreakerRefusal | undefined {
    let status = this.status();
    const now = this.now();
    if (status.state === 'open' && this.config.coolDownMs !== undefined && status.openedAt !== null && now - status.openedAt >= this.config.coolDownMs) {
      this.close(`its cool-down of ${Math.round(this.config.coolDownMs / 1000)} s ended`);
      status = this.status();
    }
    if (status.state === 'closed') {
      const reason = this.tripReason(status);
      if (!reason) return undefined;
      // Guarded, so that of several workers that see the threshold passed, one trips it (and audits it).
      const tripped = this.sql.open.run(now, reason).changes === 1;
      if (tripped) this.onChange?.({ from: 'closed', to: 'open', reason });
      status = this.status();
    }
    const closesAt = this.config.coolDownMs !== undefined && status.openedAt !== null ? status.openedAt + this.config.coolDownMs : undefined;
    const closes = closesAt !== undefined ? `it closes by itself at ${new Date(closesAt).toISOString()}, or` : 'it closes';
    const message = `The cost circuit breaker is open (${status.reason}); ${closes} when an operator runs \`keel breaker reset\` after checking the spend (\`keel costs --since 1h\`) and the errors.`;
    return closesAt === undefined ? { message } : { message, closesAt };
  }

  /** An operator closes the breaker (after checking the spend and the errors); it forgets the events that tripped it. */
  reset(by: string): void {
    this.close('reset by an operator', by);
  }

  private close(reason: string, by?: string): void {
    const closed = this.db.transaction(() => {
      const changed = this.sql.close.run().changes === 1;
      this.sql.deleteUpTo.run(this.now());
      return changed;
    })();
    if (closed) this.onChange?.({ from: 'open', to: 'closed', reason, ...(by === undefined ? {} : { by }) });
  }

  /** Counts one event, and now and then forgets those no window reaches any more, so the table stays small. */
  private record(kind: 'spend' | 'ok' | 'error', usd: number): void {
    const now = this.now();
    this.sql.insert.run(now, kind, usd);
    if (now - this.prunedAt < pruneEveryMs) return;
    this.prunedAt = now;
    this.sql.deleteUpTo.run(now - Math.max(hourMs, this.errorWindowMs()));
  }

  private errorWindowMs(): number {
    return this.config.errorWindowMs ?? 600_000;
  }

  private tripReason(status: CostBreakerStatus): string | undefined {
    const { maxSpendPerHourUsd, maxErrorRate } = this.config;
    if (maxSpendPerHourUsd !== undefined && status.spendLastHourUsd > maxSpendPerHourUsd) {
      return `model spend over the last hour is $${status.spendLastHourUsd.toFixed(6)}, over the limit of $${maxSpendPerHourUsd.toFixed(6)}`;
    }
    if (maxErrorRate !== undefined && status.errorRate !== null && status.calls >= (this.config.minCalls ?? 10) && status.errorRate > maxErrorRate) {
      return `${Math.round(status.errorRate * 100)}% of the last ${status.calls} calls failed, over the limit of ${Math.round(maxErrorRate * 100)}%`;
    }
    return undefined;
  }
}

function prepareStatements(db: BetterSqlite3.Database) {
  return {
    insert: db.prepare(`INSERT INTO keel_cost_breaker_events (at, kind, usd) VALUES (?, ?, ?)`),
    deleteUpTo: db.prepare(`DELETE FROM keel_cost_breaker_events WHERE at <= ?`),
    state: db.prepare(`SELECT state, opened_at AS openedAt, reason FROM keel_cost_breaker WHERE id = 1`),
    spendSince: db.prepare(`SELECT COALESCE(SUM(usd), 0) AS usd FROM keel_cost_breaker_events WHERE kind = 'spend' AND at > ?`),
    callsSince: db.prepare(`SELECT SUM(kind = 'error') AS errors, SUM(kind IN ('ok', 'error')) AS calls FROM keel_cost_breaker_events WHERE at > ?`),
    open: db.prepare(`UPDATE keel_cost_breaker SET state = 'open', opened_at = ?, reason = ? WHERE id = 1 AND state = 'closed'`),
    close: db.prepare(`UPDATE keel_cost_breaker SET state = 'closed', opened_at = NULL, reason = NULL WHERE id = 1 AND state = 'open'`),
  };
}
