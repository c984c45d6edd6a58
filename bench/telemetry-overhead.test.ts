// Smoke test of the bench's telemetry scenario: tiny sizes through the same code as the full run,
// checking the shape of the figures, the target row and the report section. No timing is
// asserted: targets are reported, never enforced.

import { trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { formatReport } from './report.js';
import type { BenchResult } from './scenarios.js';
import { evaluateTargets } from './targets.js';
import { runTelemetryOverhead } from './telemetry-overhead.js';
import { quickSizes } from './workload.js';

describe('the telemetry scenario', () => {
  it('times a step and its span work with tracing off and with the SDK, and yields the 10% target', async () => {
    const result = await runTelemetryOverhead({
      rounds: quickSizes.telemetryRounds,
      workflows: quickSizes.telemetryWorkflows,
      spanSteps: quickSizes.telemetrySpanSteps,
      warmupWorkflows: quickSizes.telemetryWarmupWorkflows,
    });
    expect(result).toMatchObject({ rounds: quickSizes.telemetryRounds, workflows: quickSizes.telemetryWorkflows, spanSteps: quickSizes.telemetrySpanSteps, stepsPerWorkflow: 10 });
    for (const figure of [result.off.stepUs, result.off.spansUs, result.sdk.stepUs, result.sdk.spansUs]) {
      expect(Number.isFinite(figure) && figure > 0).toBe(true);
    }
    expect(result.sdkShare).toBeCloseTo(result.sdk.spansUs / result.off.stepUs);
    expect(result.noopShare).toBeCloseTo(result.off.spansUs / result.off.stepUs);
    // The scenario leaves no tracer provider behind for whatever runs next.
    expect(trace.getTracer('after').startSpan('probe').isRecording()).toBe(false);

    const targets = evaluateTargets({ telemetry: result });
    expect(targets).toEqual([
      { name: 'Telemetry: overhead per step (SDK, no-op exporter) under 10% of the core per-step time (tracing off)', figure: result.sdkShare, limit: 0.1, unit: 'share', met: result.sdkShare <= 0.1 },
    ]);

    const report = formatReport({ quick: true, environment: {}, sizes: quickSizes, telemetry: result, targets, totalSeconds: 1 } as BenchResult);
    expect(report).toContain('Telemetry  What the OpenTelemetry spans');
    expect(report).toMatch(/SDK, no-op exporter\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d%/);
    expect(report).toMatch(/\[(met|NOT met)\] +Telemetry: overhead per step .*: \d+\.\d\d% \(limit 10\.00%\)/);
  });
});
