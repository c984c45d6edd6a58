// Telemetry's cost per step: what the spans of src/telemetry add to the step loop.
//   off  no tracer provider registered: the API's no-op tracer (the library default);
//   sdk  a BasicTracerProvider with a SimpleSpanProcessor and an exporter that drops every span,
//        with the AsyncLocalStorage context manager: the cost of recording, not of exporting.
// Two figures each:
//   step   a real workflow step (model decision through the scripted model, tool call, commit
//          to a SQLite file), per step, workflows of 10 steps;
//   spans  the span work of one step alone (a tenth of a run span, a chat span, a tool span), so
//          the no-op path's cost is visible under the noise of a step.
// The modes take turns in rounds. The whole-step difference is reported but not held to the
// target: a step is dominated by its SQLite commits, whose noise is larger than the spans' cost.
// Part of `npm run bench` (scenario `telemetry`); also runnable alone:
//   npx tsc -p tsconfig.json && node dist/bench/telemetry-overhead.js

import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { createKeel, defineAgent, defineTool, openSqliteStore } from '../src/index.js';
import { scriptedModel } from '../src/model/scripted-model.js';
import { WorkflowTracing } from '../src/telemetry/workflow-tracing.js';
import { withTempDatabase } from './workload.js';

const stepsPerWorkflow = 10;
const dropAll: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => undefined };

type Mode = 'off' | 'sdk';

function useMode(mode: Mode): void {
  trace.disable();
  context.disable();
  if (mode === 'sdk') {
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(dropAll)] }));
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  }
}

const work = defineTool({ name: 'work', description: 'Does a step of work.', input: z.object({ n: z.number() }), execute: ({ n }) => ({ n }) });
const agent = defineAgent({
  name: 'stepper',
  version: '1',
  tools: [work],
  initial: 'working',
  states: {
    working: { tools: ['work'], next: ['done'], on: { work: (result) => ((result as { n: number }).n >= stepsPerWorkflow - 1 ? 'done' : 'working') } },
    done: { final: true },
  },
});

async function stepMicros(path: string, workflows: number): Promise<number> {
  const store = openSqliteStore({ path });
  const model = scriptedModel((view) => ({ tool: 'work', input: { n: view.step } }), { modelId: 'gpt-4o-mini', provider: 'openai.chat' });
  const keel = createKeel({ store, agents: [agent], model });
  const ids: string[] = [];
  for (let index = 0; index < workflows; index++) ids.push((await keel.start('stepper', {})).id);
  const started = performance.now();
  for (const id of ids) await keel.run(id);
  const elapsed = performance.now() - started;
  await keel.close();
  return (elapsed * 1000) / (workflows * stepsPerWorkflow);
}

function spanMicros(steps: number): number {
  const decision = { source: 'model' as const, tool: 'work', args: {}, provider: 'openai.chat', model: 'gpt-4o-mini', usage: { inputTokens: 420, outputTokens: 31 }, finishReason: 'tool-calls', confidence: 0.9 };
  const started = performance.now();
  let tracing: WorkflowTracing | undefined;
  for (let step = 0; step < steps; step++) {
    if (step % stepsPerWorkflow === 0) {
      tracing?.end({ status: 'running', state: 'working', step });
      tracing = new WorkflowTracing({ workflowId: `wf_${step}`, agent: 'stepper', agentVersion: 'v1', principal: 'bench', step, recovered: false });
    }
    const chat = tracing!.startChat(step, 'gpt-4o-mini', 'openai.chat');
    tracing!.endChat(chat, decision, 0.0001);
    const tool = tracing!.startTool(step, 'work', `wf:${step}`, 'working');
    tracing!.endTool(tool, { attempts: 1, stateTo: 'working' });
  }
  tracing?.end({ status: 'completed', state: 'done', step: steps });
  return ((performance.now() - started) * 1000) / steps;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export interface TelemetryModeFigures {
  /** A whole workflow step, in µs. */
  stepUs: number;
  /** The span work of one step alone, in µs. */
  spansUs: number;
}

export interface TelemetryOverheadResult {
  rounds: number;
  /** Workflows of `stepsPerWorkflow` steps run per mode and round. */
  workflows: number;
  stepsPerWorkflow: number;
  /** Steps of span work timed per mode and round. */
  spanSteps: number;
  off: TelemetryModeFigures;
  sdk: TelemetryModeFigures;
  /** Span work with no provider, as a share of a step with tracing off. */
  noopShare: number;
  /** Span work with the SDK and a dropping exporter, as a share of a step with tracing off. */
  sdkShare: number;
  /** Whole-step difference, SDK minus off, as a share of a step with tracing off (noisy: a step is dominated by its commits). */
  stepDeltaShare: number;
}

export interface TelemetryOverheadOptions {
  rounds?: number;
  workflows?: number;
  spanSteps?: number;
  /** Workflows per mode run (and thrown away) before measuring. */
  warmupWorkflows?: number;
}

export async function runTelemetryOverhead(options: TelemetryOverheadOptions = {}): Promise<TelemetryOverheadResult> {
  const rounds = options.rounds ?? 7;
  const workflows = options.workflows ?? 50;
  const spanSteps = options.spanSteps ?? 50_000;
  const warmupWorkflows = options.warmupWorkflows ?? 20;
  const results: Record<Mode, { step: number[]; spans: number[] }> = { off: { step: [], spans: [] }, sdk: { step: [], spans: [] } };
  await withTempDatabase(async (path) => {
    for (const mode of ['off', 'sdk'] as const) {
      useMode(mode);
      await stepMicros(`${path}.warm-${mode}`, warmupWorkflows);
      spanMicros(warmupWorkflows * 1000);
    }
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['off', 'sdk'] as const) {
        useMode(mode);
        results[mode].step.push(await stepMicros(`${path}.${mode}-${round}`, workflows));
        results[mode].spans.push(spanMicros(spanSteps));
      }
    }
  });
  useMode('off');
  const off = { stepUs: median(results.off.step), spansUs: median(results.off.spans) };
  const sdk = { stepUs: median(results.sdk.step), spansUs: median(results.sdk.spans) };
  return {
    rounds,
    workflows,
    stepsPerWorkflow,
    spanSteps,
    off,
    sdk,
    noopShare: off.spansUs / off.stepUs,
    sdkShare: sdk.spansUs / off.stepUs,
    stepDeltaShare: (sdk.stepUs - off.stepUs) / off.stepUs,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runTelemetryOverhead();
  const pct = (value: number) => `${(value * 100).toFixed(2)}%`;
  process.stdout.write(
    [
      `step, tracing off (no provider): ${result.off.stepUs.toFixed(1)} µs/step`,
      `step, SDK + dropping exporter:   ${result.sdk.stepUs.toFixed(1)} µs/step (${pct(result.stepDeltaShare)} vs off)`,
      `span work per step, no provider: ${result.off.spansUs.toFixed(2)} µs (${pct(result.noopShare)} of a step)`,
      `span work per step, SDK:         ${result.sdk.spansUs.toFixed(2)} µs (${pct(result.sdkShare)} of a step)`,
    ].join('\n') + '\n',
  );
}
