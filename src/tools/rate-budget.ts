// Rate-limit budgets per downstream service, and optionally per user of a service. Every worker
// that uses the same store shares them: the counters live in the store's database (SQLite table
// keel_rate_limits, through rate-limiter-flexible), or in memory when the store offers no backend.
// A budget never sleeps: take() answers at once with how long to wait, so the runner can wait in
// memory or park the workflow durably. A 429 pauses the whole service for its Retry-After.

import { RateLimiterMemory, RateLimiterRes, RateLimiterSQLite, type RateLimiterAbstract, type RateLimiterStoreAbstract } from 'rate-limiter-flexible';
import { KeelError } from '../errors.js';
import type { RateLimiterBackend, Store } from '../store/types.js';

export interface BudgetConfig {
  /**
   * A steady rate: calls spaced evenly, so no stretch of one second ever holds more than
   * `perSecond` calls (no bursts at window edges), at the service too, where a call held up on
   * its way by up to steadyRateJitterMs arrives closer to the next (see steadySlotMs).
   */
  perSecond?: number;
  /** A quota: at most `points` calls in each window of `durationSeconds` (bursts allowed inside it). */
  points?: number;
  durationSeconds?: number;
  /** A quota per user of this service, on top of the service's own limits. */
  perUser?: { points: number; durationSeconds: number };
}

export interface RateBudgetOptions {
  /** The Keel store whose database holds the counters; without one, budgets are per process. */
  store?: Pick<Store, 'rateLimiterBackend'>;
  /** Budgets by service name; services not listed use `defaults`, or have no limit but pauses. */
  services?: Record<string, BudgetConfig>;
  defaults?: BudgetConfig;
  /**
   * How long a worker trusts what it last read about a service's pause: another worker's 429
   * reaches it within this time. Saves a store read on every call. Default 250 ms.
   */
  pauseCheckIntervalMs?: number;
}

/** Which limit refused the call: a pause after a 429, the service's budget, or the user's. */
export type BudgetLimit = 'paused' | 'service' | 'user';

export type TakeResult = { ok: true } | { ok: false; waitMs: number; limit: BudgetLimit };

export interface RateBudget {
  /** Takes one call from the service's budget (and the user's, when given); never waits. */
  take(service: string, userId?: string): Promise<TakeResult>;
  /** Pauses the service for every worker on the store, e.g. for a 429's Retry-After. Never shortens a pause. */
  pause(service: string, ms: number): Promise<void>;
  /** Settings for a service whose budget is not in use yet; refused once it is. */
  configure(service: string, config: BudgetConfig): void;
}

export const rateLimitTable = 'keel_rate_limits';

/** How often (at most) expired counters are deleted from the table. */
const cleanupEveryMs = 5 * 60_000;
const defaultPauseCheckIntervalMs = 250;

interface Bucket {
  limiter: RateLimiterAbstract;
  key: string;
  limit: BudgetLimit;
}

interface ServiceLimiters {
  /** In the order they are taken: the user's first, so an exhausted user costs the service nothing. */
  perUser?: RateLimiterAbstract;
  service: RateLimiterAbstract[];
}

export function createRateBudget(options: RateBudgetOptions = {}): RateBudget {
  return new StoreRateBudget(options);
}

class StoreRateBudget implements RateBudget {
  private readonly backend: RateLimiterBackend;
  private readonly configs: Map<string, BudgetConfig>;
  private readonly defaults: BudgetConfig | undefined;
  private readonly limiters = new Map<string, ServiceLimiters>();
  private readonly pauses: RateLimiterAbstract;
  /** Resolves once the SQLite table exists; rate-limiter-flexible creates it asynchronously. */
  private readonly ready: Promise<void>;
  private readonly pauseCheckIntervalMs: number;
  /** What this worker last read of each service's pause: paused until `until`, read at `checkedAt`. */
  private readonly knownPauses = new Map<string, { until: number; checkedAt: number }>();
  private lastCleanup = 0;

  constructor(options: RateBudgetOptions) {
    this.backend = options.store?.rateLimiterBackend?.() ?? { kind: 'memory' };
    this.defaults = options.defaults && validateBudget('defaults', options.defaults);
    this.pauseCheckIntervalMs = options.pauseCheckIntervalMs ?? defaultPauseCheckIntervalMs;
    this.configs = new Map(Object.entries(options.services ?? {}).map(([service, config]) => [service, validateBudget(service, config)]));
    // A pause is a key blocked until the pause ends; its limiter is never consumed from.
    const pauseOptions = { keyPrefix: 'pause', points: 0, duration: 0 };
    if (this.backend.kind === 'sqlite') {
      const db = this.backend.db;
      let pauses!: RateLimiterAbstract;
      this.ready = new Promise<void>((resolve, reject) => {
        pauses = new RateLimiterSQLite({ ...pauseOptions, storeClient: db, storeType: 'better-sqlite3', tableName: rateLimitTable }, (error) =>
          error ? reject(error) : resolve(),
        );
      });
      // A failure is reported by take() and pause(), which await `ready`; never as an unhandled rejection.
      this.ready.catch(() => undefined);
      this.pauses = pauses;
    } else {
      this.ready = Promise.resolve();
      this.pauses = new RateLimiterMemory(pauseOptions);
    }
  }

  async take(service: string, userId?: string): Promise<TakeResult> {
    try {
      await this.ready;
      const pausedMs = await this.pausedFor(service);
      if (pausedMs > 0) return { ok: false, waitMs: pausedMs, limit: 'paused' };
      const limiters = this.limitersFor(service);
      const buckets: Bucket[] = [];
      if (limiters.perUser && userId !== undefined) buckets.push({ limiter: limiters.perUser, key: JSON.stringify([service, userId]), limit: 'user' });
      for (const limiter of limiters.service) buckets.push({ limiter, key: service, limit: 'service' });

      const taken: Bucket[] = [];
      for (const bucket of buckets) {
        const refusal = await consumeOne(bucket);
        if (refusal) {
          // Give back what this call took from the other buckets: it is not going to be made.
          await Promise.all(taken.map((done) => done.limiter.reward(done.key, 1)));
          return { ok: false, waitMs: refusal.waitMs, limit: bucket.limit };
        }
        taken.push(bucket);
      }
      await this.cleanUpNowAndThen();
      return { ok: true };
    } catch (error) {
      throw this.storeFailure(service, 'take a call from', error);
    }
  }

  async pause(service: string, ms: number): Promise<void> {
    if (!(ms > 0)) return;
    try {
      await this.ready;
      const now = Date.now();
      if ((await this.readPause(service, now)) - now >= ms) return;
      await this.pauses.block(service, ms / 1000);
      this.knownPauses.set(service, { until: now + ms, checkedAt: now });
    } catch (error) {
      throw this.storeFailure(service, 'pause', error);
    }
  }

  /** How long the service is still paused, in ms (0: not paused). */
  private async pausedFor(service: string): Promise<number> {
    const now = Date.now();
    const known = this.knownPauses.get(service);
    // A pause is never shortened, so one known to run on is trusted to its end without a read.
    const until = known && (known.until > now || now - known.checkedAt < this.pauseCheckIntervalMs) ? known.until : await this.readPause(service, now);
    return until > now ? Math.ceil(until - now) : 0;
  }

  /** Reads when the service's pause ends from the store (0 or a past time: not paused). */
  private async readPause(service: string, now: number): Promise<number> {
    const pause = await this.pauses.get(service);
    // The memory backend keeps a record until its timer fires, so an expired pause can still be read.
    const until = pause && pause.msBeforeNext > 0 ? now + pause.msBeforeNext : 0;
    this.knownPauses.set(service, { until, checkedAt: now });
    return until;
  }

  configure(service: string, config: BudgetConfig): void {
    if (this.limiters.has(service)) {
      throw new KeelError('INVALID_DEFINITION', `The rate budget of service '${service}' is already in use; its settings cannot change in a running worker. Declare the service's budget once (in createKeel's services or in the first agent that uses it).`);
    }
    this.configs.set(service, validateBudget(service, config));
  }

  private limitersFor(service: string): ServiceLimiters {
    let limiters = this.limiters.get(service);
    if (!limiters) {
      const config = this.configs.get(service) ?? this.defaults ?? {};
      limiters = { service: [] };
      // The steady rate is one call per slot of steadySlotMs; rate-limiter-flexible takes fractional seconds.
      if (config.perSecond !== undefined) limiters.service.push(this.limiter('rate', 1, steadySlotMs(config.perSecond) / 1000));
      if (config.points !== undefined) limiters.service.push(this.limiter('quota', config.points, config.durationSeconds!));
      if (config.perUser) limiters.perUser = this.limiter('user', config.perUser.points, config.perUser.durationSeconds);
      this.limiters.set(service, limiters);
    }
    return limiters;
  }

  private limiter(keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
    if (this.backend.kind === 'memory') return new RateLimiterMemory({ keyPrefix, points, duration });
    // `ready` has resolved: the table exists.
    return new RateLimiterSQLite({
      keyPrefix,
      points,
      duration,
      storeClient: this.backend.db,
      storeType: 'better-sqlite3',
      tableName: rateLimitTable,
      tableCreated: true,
    });
  }

  /**
   * Counters of users seen once stay in the table after they expire. rate-limiter-flexible can
   * delete them on a timer (clearExpiredByTimeout), but that timer outlives a closed store and
   * then fails unhandled; so expired rows are deleted here, from take(), every few minutes.
   */
  private async cleanUpNowAndThen(): Promise<void> {
    if (this.backend.kind !== 'sqlite' || Date.now() - this.lastCleanup < cleanupEveryMs) return;
    this.lastCleanup = Date.now();
    await (this.pauses as RateLimiterStoreAbstract & { clearExpired(before: number): Promise<void> }).clearExpired(Date.now() - 60_000);
  }

  private storeFailure(service: string, what: string, error: unknown): KeelError {
    if (KeelError.isInstance(error)) return error;
    const reason = error instanceof Error ? error.message : String(error);
    return new KeelError(
      'STORE_UNAVAILABLE',
      `Could not ${what} the rate budget of service '${service}': the store failed (${reason}). No call to the service was made; ` +
        `check that the Keel database is reachable and not locked by a stuck process, then retry.`,
      { cause: error, retryable: true },
    );
  }
}

/**
 * How much a call may be held up between leaving the budget and reaching the service (a busy
 * event loop, a token refresh it waits for) without the service seeing more than perSecond calls
 * in a second: two calls spaced 1000/perSecond ms apart at the budget arrive closer together
 * when the first is delayed.
 */
export const steadyRateJitterMs = 50;

/**
 * The gap between two calls at a steady rate of perSecond, in whole ms: perSecond gaps span a
 * second plus steadyRateJitterMs (so the rate granted is at most perSecond * 1000/1050), and one
 * more ms because rate-limiter-flexible reads Date.now(), whole milliseconds, and opens the next
 * slot at exactly the end of the last, granting gaps up to 1 ms shorter than asked.
 */
export function steadySlotMs(perSecond: number): number {
  return Math.ceil((1000 + steadyRateJitterMs) / perSecond) + 1;
}

/** Consumes one point; a refusal (not an error) says how long until the bucket has one again. */
async function consumeOne(bucket: Bucket): Promise<{ waitMs: number } | undefined> {
  try {
    await bucket.limiter.consume(bucket.key, 1);
    return undefined;
  } catch (refusal) {
    if (!(refusal instanceof RateLimiterRes)) throw refusal;
    return { waitMs: Math.max(1, Math.ceil(refusal.msBeforeNext)) };
  }
}

function validateBudget(service: string, config: BudgetConfig): BudgetConfig {
  const problems: string[] = [];
  const positive = (value: number | undefined) => value !== undefined && Number.isFinite(value) && value > 0;
  const wholePositive = (value: number | undefined) => Number.isInteger(value) && value! > 0;
  if (config.perSecond !== undefined && !positive(config.perSecond)) {
    problems.push(`perSecond must be a positive number (got ${config.perSecond})`);
  }
  if ((config.points === undefined) !== (config.durationSeconds === undefined)) {
    problems.push('points and durationSeconds go together: give both or neither');
  } else if (config.points !== undefined && !(wholePositive(config.points) && positive(config.durationSeconds))) {
    problems.push(`points must be a whole number above 0 and durationSeconds a positive number (got ${config.points} per ${config.durationSeconds} s)`);
  }
  if (config.perUser && !(wholePositive(config.perUser.points) && positive(config.perUser.durationSeconds))) {
    problems.push(
      `perUser.points must be a whole number above 0 and perUser.durationSeconds a positive number (got ${config.perUser.points} per ${config.perUser.durationSeconds} s)`,
    );
  }
  if (problems.length > 0) {
    throw new KeelError('INVALID_DEFINITION', `Rate budget for '${service}' is not valid: ${problems.join('; ')}. Fix it where the budgets are created.`);
  }
  return config;
}
