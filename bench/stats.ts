// Summaries of timing samples: mean and percentiles of per-step times, and the mean or median of
// a window of steps around a given step (S2 reports the cost of a step at a given depth as the
// window's median, so one garbage-collection pause does not decide the figure).

export interface Summary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Nearest-rank percentile of ascending samples; `fraction` in (0, 1]. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of no samples: the run recorded no steps.');
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`percentile fraction ${fraction} is outside (0, 1].`);
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    meanMs: mean(sorted),
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1]!,
  };
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('mean of no samples: the run recorded no steps.');
  return samples.reduce((total, sample) => total + sample, 0) / samples.length;
}

/** Mean time of the steps within `radius` of `step` (1-based; sample k-1 is step k), clipped to the run. */
export function windowMean(samples: readonly number[], step: number, radius: number): number {
  return mean(window(samples, step, radius));
}

/** Median time of the steps within `radius` of `step`: one garbage-collection pause in the window does not move it. */
export function windowMedian(samples: readonly number[], step: number, radius: number): number {
  return percentile([...window(samples, step, radius)].sort((a, b) => a - b), 0.5);
}

function window(samples: readonly number[], step: number, radius: number): readonly number[] {
  if (step < 1 || step > samples.length) {
    throw new RangeError(`step ${step} is outside the run, which has steps 1 to ${samples.length}.`);
  }
  const first = Math.max(1, step - radius);
  const last = Math.min(samples.length, step + radius);
  return samples.slice(first - 1, last);
}
