// Time is injected everywhere so tests can move it by hand instead of sleeping.

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told: for tests of leases, expiry and backoff. */
export class ManualClock implements Clock {
  constructor(private current = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
  set(time: number): void {
    this.current = time;
  }
}

/** A UTC time of day for messages, to the second: "12:00:03Z". */
export function timeOfDay(time: number): string {
  return `${new Date(time).toISOString().slice(11, 19)}Z`;
}
