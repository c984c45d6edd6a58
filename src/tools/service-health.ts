// The rule that decides when a service's breaker opens: after a number of failures in a row
// (cockatiel's ConsecutiveBreaker) or, when configured, when too large a share of the calls in a
// window failed (cockatiel's SamplingBreaker). cockatiel's breakers apply one rule each, so this
// IBreaker composes the two and remembers which one tripped, for the breaker's messages.

import { ConsecutiveBreaker, SamplingBreaker, type CircuitState, type IBreaker } from 'cockatiel';

export interface ServiceHealthConfig {
  consecutiveFailures: number;
  failureRatio?: { threshold: number; windowMs: number; minimumCalls?: number };
}

const defaultMinimumCalls = 10;

/** Opens on consecutive failures, or on the failure ratio when configured; `tripReason` says which. */
export class ServiceHealth implements IBreaker {
  tripReason = '';
  private readonly consecutive: ConsecutiveBreaker;
  private readonly ratio: { breaker: SamplingBreaker; windowMs: number } | undefined;

  constructor(private readonly config: ServiceHealthConfig) {
    this.consecutive = new ConsecutiveBreaker(config.consecutiveFailures);
    const ratio = config.failureRatio;
    if (ratio) {
      const window = samplingWindow(ratio.windowMs);
      // SamplingBreaker takes a minimum rate, not a count, over the window it rounds to whole
      // buckets; convert so that exactly `minimumCalls` calls in the window are enough.
      const minimumCalls = ratio.minimumCalls ?? defaultMinimumCalls;
      const minimumRps = ((minimumCalls - 0.5) * 1000) / window.effectiveMs;
      this.ratio = {
        breaker: new SamplingBreaker({ threshold: ratio.threshold, duration: ratio.windowMs, minimumRps }),
        windowMs: window.effectiveMs,
      };
    }
  }

  get state(): unknown {
    return { consecutive: this.consecutive.state, ratio: this.ratio?.breaker.state };
  }

  set state(value: unknown) {
    const saved = value as { consecutive: number; ratio?: unknown };
    this.consecutive.state = saved.consecutive;
    if (this.ratio && saved.ratio !== undefined) this.ratio.breaker.state = saved.ratio;
  }

  success(state: CircuitState): void {
    this.consecutive.success();
    if (this.ratio) {
      this.forgetExpiredCalls(this.ratio);
      this.ratio.breaker.success(state);
    }
  }

  failure(state: CircuitState): boolean {
    // Both rules must see every failure, so no short-circuit here.
    const inARow = this.consecutive.failure();
    let tooMany = false;
    if (this.ratio) {
      this.forgetExpiredCalls(this.ratio);
      tooMany = this.ratio.breaker.failure(state);
    }
    if (inARow) {
      this.tripReason = `${this.consecutive.state} consecutive failures`;
    } else if (tooMany) {
      const sample = this.ratio!.breaker.state as SamplingState;
      const calls = sample.currentFailures + sample.currentSuccesses;
      const share = Math.round((100 * sample.currentFailures) / calls);
      this.tripReason = `${sample.currentFailures} of ${calls} calls (${share}%) failed in the last ${formatSeconds(this.config.failureRatio!.windowMs)}`;
    }
    return inARow || tooMany;
  }

  /**
   * SamplingBreaker (cockatiel 3.2.1) moves on by one bucket per call, so after a quiet spell
   * longer than a bucket, calls from before the window still count. Drop every bucket that
   * started a whole window ago before each call.
   */
  private forgetExpiredCalls(ratio: { breaker: SamplingBreaker; windowMs: number }): void {
    const sample = ratio.breaker.state as SamplingState;
    const horizon = Date.now() - ratio.windowMs;
    let { currentFailures, currentSuccesses } = sample;
    for (const bucket of sample.windows) {
      if (bucket.startedAt > horizon || (bucket.failures === 0 && bucket.successes === 0)) continue;
      currentFailures -= bucket.failures;
      currentSuccesses -= bucket.successes;
      bucket.failures = 0;
      bucket.successes = 0;
    }
    if (currentFailures !== sample.currentFailures || currentSuccesses !== sample.currentSuccesses) {
      ratio.breaker.state = { currentFailures, currentSuccesses };
    }
  }
}

/** SamplingBreaker's serialised state (its `state` getter), which it reads back with Object.assign. */
interface SamplingState {
  windows: Array<{ startedAt: number; failures: number; successes: number }>;
  currentFailures: number;
  currentSuccesses: number;
}

/** How SamplingBreaker divides a window: at least 5 buckets of at most a second each. */
function samplingWindow(windowMs: number): { effectiveMs: number } {
  const buckets = Math.max(5, Math.ceil(windowMs / 1000));
  return { effectiveMs: Math.round(windowMs / buckets) * buckets };
}

/** "9.8 s": durations in messages. */
export function formatSeconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}
