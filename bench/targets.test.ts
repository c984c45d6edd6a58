// The targets' verdicts from given figures: met, not met, and no verdict when noise swamped a
// difference. Plain figures in, so nothing here depends on timing.

import { describe, expect, it } from 'vitest';
import { formatTargets } from './report.js';
import { RunnerVariant, type RunnerResult } from './runner-overhead.js';
import { evaluateTargets } from './targets.js';

function runnerResult(directMeanUs: number, serviceMeanUs: number): RunnerResult {
  const call = (meanUs: number) => ({ count: 100, meanUs, p50Us: meanUs, p99Us: meanUs * 2, maxUs: meanUs * 3 });
  const overhead = (meanUs: number) => ({ meanUs: meanUs - directMeanUs, p50Us: meanUs - directMeanUs, p99Us: 2 * (meanUs - directMeanUs) });
  return {
    calls: 100,
    warmupCalls: 10,
    rounds: 5,
    rows: [
      { variant: RunnerVariant.direct, label: 'direct call', measures: 'the baseline', call: call(directMeanUs), overhead: null },
      { variant: RunnerVariant.service, label: 'runner, service', measures: 'with a breaker', call: call(serviceMeanUs), overhead: overhead(serviceMeanUs) },
    ],
  };
}

describe('bench targets', () => {
  it('meets a target at or under its limit and misses one over it', () => {
    const [met] = evaluateTargets({ runner: runnerResult(2, 12) });
    expect(met).toMatchObject({ figure: 10, limit: 50, met: true });
    expect(met!.inconclusive).toBeUndefined();
    const [missed] = evaluateTargets({ runner: runnerResult(2, 80) });
    expect(missed).toMatchObject({ figure: 78, met: false });
    expect(missed!.inconclusive).toBeUndefined();
  });

  it('gives no verdict, never "met", when a cost measured apart comes out at or below zero', () => {
    // A direct call slowed by a pause while the runner's calls were not: the difference is negative.
    for (const [direct, service] of [
      [9, 4.4],
      [5, 5],
    ] as const) {
      const [target] = evaluateTargets({ runner: runnerResult(direct, service) });
      expect(target!.met).toBe(false);
      expect(target!.inconclusive).toMatch(/at or below zero.*noise.*again/);
      const [line] = formatTargets([target!]).slice(1);
      expect(line).toMatch(/^ {2}\[no verdict\] Runner: .*µs \(limit 50 µs\); the cost came out at or below zero/);
    }
  });
});
