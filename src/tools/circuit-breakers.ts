// Circuit breakers per downstream service, one registry per worker process, shared by every
// workflow it runs. A breaker opens when its service looks unhealthy (too many transient or
// rate-limited failures in a row, or too large a share of them over a window), fails calls fast
// while open, lets exactly one probe call through once `halfOpenAfterMs` has passed, and closes
// when the probe gets an answer. Built on cockatiel's CircuitBreakerPolicy; this module adds the
// registry, the one-probe rule (cockatiel queues calls behind a probe instead of failing them),
// combined consecutive-or-ratio opening, Keel's error and messages, events and counters.
// Breakers hold no durable state: each describes what this process has seen of a service.

import { circuitBreaker, CircuitState, handleWhen, isBrokenCircuitError, type CircuitBreakerPolicy } from 'cockatiel';
import { KeelError } from '../errors.js';
import { formatSeconds as seconds, ServiceHealth, type ServiceHealthConfig } from './service-health.js';
import { classifyError, ToolError, type ErrorClass } from './tool-error.js';

export interface BreakerConfig {
  /** Opens after this many failures in a row that say the service is unhealthy. Default 5. */
  consecutiveFailures?: number;
  /**
   * Also opens when more than `threshold` (between 0 and 1) of the calls in the last `windowMs`
   * failed, once at least `minimumCalls` (default 10) were made in that window.
   */
  failureRatio?: { threshold: number; windowMs: number; minimumCalls?: number };
  /** How long the breaker stays open before one probe call may go through. Default 10 000 ms. */
  halfOpenAfterMs?: number;
}

export interface CircuitBreakersOptions {
  /** Settings per service name; services not listed here use `defaults`. */
  services?: Record<string, BreakerConfig>;
  defaults?: BreakerConfig;
}

export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

export interface BreakerCounters {
  opened: number;
  halfOpened: number;
  closed: number;
  /** Calls failed fast because the breaker was open, half-open with a probe in flight, or isolated. */
  rejected: number;
}

/** `reason` is a sentence for logs and the journal, e.g. "5 consecutive failures". */
export type BreakerStateListener = (service: string, from: BreakerState, to: BreakerState, reason: string) => void;

export interface RunOptions {
  classify?: (error: unknown) => ErrorClass;
}

export interface ServiceBreaker {
  readonly service: string;
  readonly state: BreakerState;
  readonly counters: Readonly<BreakerCounters>;
  /**
   * Runs `fn` through the breaker; throws BreakerOpenError without calling `fn` when failing fast.
   * `classify` decides the class of what `fn` throws (e.g. with the tool's own classifier);
   * default classifyError.
   */
  run<T>(fn: () => PromiseLike<T> | T, options?: RunOptions): Promise<T>;
  /** While open: when the next call may go through as the probe (possibly already past). */
  retryAt(): number | undefined;
  /** Holds the breaker open (an operator's choice) until the handle is disposed. */
  isolate(): { dispose(): void };
}

export interface CircuitBreakers {
  /** The breaker of a service, created on first use with the service's settings. */
  for(service: string): ServiceBreaker;
  /**
   * Settings for a service not configured yet (agents declare their services when registered).
   * Refused once the service's breaker exists, so running workflows never see settings change.
   */
  configure(service: string, config: BreakerConfig): void;
  /** Returns a function that removes the listener. */
  onStateChange(listener: BreakerStateListener): () => void;
  /** Counters of every breaker created so far, by service name. */
  counters(): Record<string, BreakerCounters>;
}

const defaultConsecutiveFailures = 5;
const defaultHalfOpenAfterMs = 10_000;

const breakerOpenMarker = Symbol.for('keel.breaker-open-error');

/** Thrown instead of calling a service whose breaker is failing fast. Class 'transient'. */
export class BreakerOpenError extends ToolError {
  readonly [breakerOpenMarker] = true;
  readonly service: string;
  readonly state: Exclude<BreakerState, 'closed'>;
  /** When a call may go through again: park the workflow until then rather than retrying sooner. */
  readonly retryAtMs: number;

  constructor(service: string, state: Exclude<BreakerState, 'closed'>, retryAtMs: number, message: string) {
    super('transient', message, { retryAfterMs: Math.max(0, retryAtMs - Date.now()) });
    this.name = 'BreakerOpenError';
    this.service = service;
    this.state = state;
    this.retryAtMs = retryAtMs;
  }

  static override isInstance(error: unknown): error is BreakerOpenError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[breakerOpenMarker] === true;
  }
}

export function createCircuitBreakers(options: CircuitBreakersOptions = {}): CircuitBreakers {
  const defaults = validateConfig('defaults', options.defaults ?? {});
  const configs = new Map(Object.entries(options.services ?? {}).map(([service, config]) => [service, validateConfig(service, config)]));
  const breakers = new Map<string, KeelServiceBreaker>();
  const listeners = new Set<BreakerStateListener>();
  const emit: BreakerStateListener = (service, from, to, reason) => {
    for (const listener of listeners) {
      try {
        listener(service, from, to, reason);
      } catch {
        // A listener (a logger, a metrics counter) must never change the outcome of a tool call.
      }
    }
  };
  return {
    for(service) {
      let breaker = breakers.get(service);
      if (!breaker) {
        breaker = new KeelServiceBreaker(service, configs.get(service) ?? defaults, emit);
        breakers.set(service, breaker);
      }
      return breaker;
    },
    configure(service, config) {
      if (breakers.has(service)) {
        throw new KeelError('INVALID_DEFINITION', `The circuit breaker of service '${service}' is already in use; its settings cannot change in a running worker. Declare the service's settings once (in createKeel's services or in the first agent that uses it).`);
      }
      configs.set(service, validateConfig(service, config));
    },
    onStateChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    counters() {
      return Object.fromEntries([...breakers].map(([service, breaker]) => [service, { ...breaker.counters }]));
    },
  };
}

/** Only failures that say the service itself is struggling count against it; a bad request does not. */
export function countsAgainstService(error: unknown, errorClass: ErrorClass = classifyError(error)): boolean {
  if (BreakerOpenError.isInstance(error)) return false;
  return errorClass === 'transient' || errorClass === 'rate-limited';
}

class KeelServiceBreaker implements ServiceBreaker {
  readonly counters: BreakerCounters = { opened: 0, halfOpened: 0, closed: 0, rejected: 0 };
  private readonly policy: CircuitBreakerPolicy;
  private readonly health: ServiceHealth;
  private current: BreakerState = 'closed';
  private openedAt = 0;
  private openReason = '';
  /** The class of a probe call's error that did not count against the service, if any. */
  private probeAnsweredWith: string | undefined;
  /** Classes decided by a call's own `classify`, for the policy's filter, which sees only the error. */
  private readonly classified = new WeakMap<object, ErrorClass>();

  constructor(
    readonly service: string,
    private readonly config: ServiceHealthConfig & { halfOpenAfterMs: number },
    private readonly emit: BreakerStateListener,
  ) {
    this.health = new ServiceHealth(config);
    const counted = handleWhen((error) => {
      const errorClass = this.classified.get(error) ?? classifyError(error);
      const counts = countsAgainstService(error, errorClass);
      if (!counts) this.probeAnsweredWith = errorClass;
      return counts;
    });
    this.policy = circuitBreaker(counted, { halfOpenAfter: config.halfOpenAfterMs, breaker: this.health });
    this.policy.onHalfOpen(() => {
      this.probeAnsweredWith = undefined;
    });
    this.policy.onStateChange((next) => this.changedTo(stateNames[next]));
  }

  get state(): BreakerState {
    return this.current;
  }

  retryAt(): number | undefined {
    return this.current === 'open' ? this.openedAt + this.config.halfOpenAfterMs : undefined;
  }

  async run<T>(fn: () => PromiseLike<T> | T, options: RunOptions = {}): Promise<T> {
    // cockatiel makes calls that arrive during a probe wait for it and then run; Keel fails them
    // fast instead, so a recovering service sees exactly one call until it has answered.
    if (this.current === 'half-open') throw this.rejection();
    const classify = options.classify;
    let started = false;
    try {
      return await this.policy.execute(async () => {
        started = true;
        if (!classify) return fn();
        try {
          return await fn();
        } catch (error) {
          if (typeof error === 'object' && error !== null) this.classified.set(error, classify(error));
          throw error;
        }
      });
    } catch (error) {
      if (!started && isBrokenCircuitError(error)) throw this.rejection();
      throw error;
    }
  }

  isolate(): { dispose(): void } {
    return this.policy.isolate();
  }

  private rejection(): BreakerOpenError {
    this.counters.rejected++;
    const now = Date.now();
    const name = `Circuit breaker for service '${this.service}'`;
    if (this.current === 'open') {
      const retryAtMs = this.openedAt + this.config.halfOpenAfterMs;
      return new BreakerOpenError(
        this.service,
        'open',
        retryAtMs,
        `${name} is open after ${this.openReason}; failing fast until ${timeOfDay(retryAtMs)} (in ${seconds(retryAtMs - now)}), when one probe call goes through.`,
      );
    }
    const retryAtMs = now + this.config.halfOpenAfterMs;
    if (this.current === 'isolated') {
      return new BreakerOpenError(
        this.service,
        'isolated',
        retryAtMs,
        `${name} is held open by an operator (isolated); calls fail fast until it is released. Checking again at ${timeOfDay(retryAtMs)}.`,
      );
    }
    return new BreakerOpenError(
      this.service,
      'half-open',
      retryAtMs,
      `${name} is half-open: its one probe call is in flight, so other calls fail fast; try again after ${timeOfDay(retryAtMs)} (in ${seconds(retryAtMs - now)}).`,
    );
  }

  private changedTo(next: BreakerState): void {
    const from = this.current;
    if (next === from) return;
    this.current = next;
    let reason: string;
    if (next === 'open') {
      this.counters.opened++;
      this.openedAt = Date.now();
      this.openReason = from === 'half-open' ? 'its probe call failed' : this.health.tripReason;
      reason = `opened after ${this.openReason}; one probe call in ${seconds(this.config.halfOpenAfterMs)}`;
    } else if (next === 'half-open') {
      this.counters.halfOpened++;
      reason = `open for ${seconds(Date.now() - this.openedAt)}; letting one probe call through`;
    } else if (next === 'closed') {
      this.counters.closed++;
      reason =
        from === 'isolated'
          ? 'released by an operator'
          : this.probeAnsweredWith
            ? `the probe call was answered (with a ${this.probeAnsweredWith} error, which does not count against the service)`
            : 'the probe call succeeded';
    } else {
      reason = 'isolated by an operator';
    }
    this.emit(this.service, from, next, reason);
  }
}

const stateNames: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

function validateConfig(service: string, config: BreakerConfig): ServiceHealthConfig & { halfOpenAfterMs: number } {
  const problems: string[] = [];
  const consecutiveFailures = config.consecutiveFailures ?? defaultConsecutiveFailures;
  const halfOpenAfterMs = config.halfOpenAfterMs ?? defaultHalfOpenAfterMs;
  if (!Number.isInteger(consecutiveFailures) || consecutiveFailures < 1) {
    problems.push(`consecutiveFailures must be a whole number of at least 1 (got ${consecutiveFailures})`);
  }
  if (!Number.isFinite(halfOpenAfterMs) || halfOpenAfterMs < 0) {
    problems.push(`halfOpenAfterMs must be a number of milliseconds, 0 or more (got ${halfOpenAfterMs})`);
  }
  const ratio = config.failureRatio;
  if (ratio) {
    if (!(ratio.threshold > 0 && ratio.threshold < 1)) {
      problems.push(`failureRatio.threshold must be between 0 and 1, exclusive (got ${ratio.threshold})`);
    }
    if (!(Number.isFinite(ratio.windowMs) && ratio.windowMs >= 1)) {
      problems.push(`failureRatio.windowMs must be a positive number of milliseconds (got ${ratio.windowMs})`);
    }
    if (ratio.minimumCalls !== undefined && !(Number.isInteger(ratio.minimumCalls) && ratio.minimumCalls >= 1)) {
      problems.push(`failureRatio.minimumCalls must be a whole number of at least 1 (got ${ratio.minimumCalls})`);
    }
  }
  if (problems.length > 0) {
    throw new KeelError('INVALID_DEFINITION', `Circuit breaker settings for '${service}' are not valid: ${problems.join('; ')}. Fix them where the breakers are created.`);
  }
  return { consecutiveFailures, halfOpenAfterMs, failureRatio: ratio };
}

function timeOfDay(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 19)}Z`;
}
