// The three scenarios of `npm run bench`, each run against Keel, LangGraph.js and (for S1) the
// floor. Every database lives in its own temporary folder, deleted when its run ends. Results
// are plain data, and every row says what it measures: report.ts prints them, --json emits them.
//
// A step's time includes the model decision, which both systems make the same way (AI SDK
// generateText over the scripted model, same prompt) and which is most of a step. A system's
// per-step overhead is therefore its step time minus that decision's time, and the targets
// compare overheads: the floor has no model, so only overheads can be compared with it.

import Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { runFloorLoop } from './floor.js';
import { measureDecisionCost, runKeelLoop, runKeelMany, standaloneDecisions } from './keel-scenarios.js';
import { runLangGraphLoop, runLangGraphMany } from './langgraph-scenarios.js';
import { runRunnerOverhead, type RunnerResult } from './runner-overhead.js';
import { summarize, windowMedian, type Summary } from './stats.js';
import { evaluateTargets, type Target } from './targets.js';
import { runAuditVerify, type AuditVerifyResult } from './audit-verify.js';
import { runApprovalLatency, type ApprovalLatencyResult } from './approval-latency.js';
import { runTelemetryOverhead, type TelemetryOverheadResult } from './telemetry-overhead.js';
import { BenchDurability, oneKbMessage, withTempDatabase, type ScenarioSizes, type StepSeries, type ThroughputRun } from './workload.js';

export const BenchSystem = { keel: 'keel', langgraph: 'langgraph', floor: 'floor', floorWithModel: 'floor-with-model', aiSdk: 'ai-sdk' } as const;
export type BenchSystem = (typeof BenchSystem)[keyof typeof BenchSystem];

export interface StepRow {
  system: BenchSystem;
  label: string;
  /** What the row measures, in a sentence. */
  measures: string;
  durability: BenchDurability;
  /** SQLite's synchronous setting read back from the database ('-' when there is none). */
  synchronous: string;
  steps: number;
  totalMs: number;
  stepsPerSecond: number;
  /** Whole steps, model decision included. */
  perStep: Summary;
  /** The model decision inside each step; null where there is no model (the floor). */
  model: Summary | null;
  /** Each step's time minus its model decision's: the system's own cost per step. Null for the model-only row. */
  overhead: Summary | null;
  /** Time inside each step spent in the durable store's writes. Null for the model-only row. */
  write: Summary | null;
}

export interface S1Comparison {
  durability: typeof BenchDurability.normal | typeof BenchDurability.full;
  steps: number;
  /** Keel's mean per-step overhead over LangGraph's with equal durability. */
  keelOverLangGraph: number;
  /** Keel's mean per-step overhead over the floor's mean step time. */
  keelOverFloor: number;
  /** Keel's mean per-step overhead over the floor's when the floor also makes the model decision every step (diagnostic). */
  keelOverFloorWithModel: number;
  /** Keel's mean whole-step time over LangGraph's (model decision included), for reference. */
  keelOverLangGraphWholeStep: number;
}

export interface S1Result {
  rows: StepRow[];
  comparisons: S1Comparison[];
}

/** Medians over the steps within `window` of `step`. */
export interface GrowthProbe {
  step: number;
  /** Whole steps, model decision included. */
  stepMs: number;
  /** Step minus model decision: the system's own cost. */
  overheadMs: number;
  /** Store writes. */
  writeMs: number;
}

export interface GrowthRow {
  system: BenchSystem;
  label: string;
  measures: string;
  steps: number;
  totalMs: number;
  probes: GrowthProbe[];
  /** Step time at the last probe over step time at the first. */
  growth: number;
  /** Overhead at the last probe over overhead at the first. */
  overheadGrowth: number;
  /** Write time at the last probe over write time at the first. */
  writeGrowth: number;
  databaseBytes: number;
}

export interface S2Result {
  messageBytes: number;
  window: number;
  rows: GrowthRow[];
}

export interface ThroughputRow extends ThroughputRun {
  system: BenchSystem;
  label: string;
  measures: string;
  workflowsPerSecond: number;
  stepsPerSecond: number;
}

export interface S3Result {
  rows: ThroughputRow[];
}

export type Log = (line: string) => void;

const measures = {
  keel: 'keel.startAndRun over openSqliteStore; a step = modelDecider (generateText, scripted model) + gates + the no-op tool + two commits; it ends at the step-completed event.',
  langgraphEqual:
    "StateGraph agent -> tools loop with SqliteSaver on a WAL file with Keel's synchronous setting, invoked with durability 'sync'; a step = both nodes and their checkpoints.",
  langgraphDefaults: "The same graph as SqliteSaver.fromConnString opens the file, LangGraph's default durability ('async': checkpoints written while the next node runs).",
  floor:
    "Keel's rows for a step written with better-sqlite3 alone (two IMMEDIATE transactions: workflows update + action-decided row + its audit row; workflows update + tool-call-completed row + its audit row); no model, no tool.",
  floorWithModel:
    "Diagnostic: the floor's writes, each step preceded by Keel's model decision (modelDecider, no store), so the writes run under the memory and garbage-collector load Keel's commits run under.",
  decisionAlone: 'modelDecider.decide with the same 40-observation history and no store: the model cost both systems pay every step.',
} as const;

export async function runS1(sizes: ScenarioSizes, log: Log): Promise<S1Result> {
  log(`S1: warming up each system with ${sizes.warmupSteps} steps`);
  await warmUp(sizes.warmupSteps, false);
  const rows: StepRow[] = [];
  const comparisons: S1Comparison[] = [];
  for (const [durability, steps] of [
    [BenchDurability.normal, sizes.s1Steps],
    [BenchDurability.full, sizes.s1FullSteps],
  ] as const) {
    const level = `synchronous=${durability.toUpperCase()}`;
    log(`S1: ${steps} steps, ${level}: Keel`);
    const keel = stepRow(BenchSystem.keel, 'Keel', measures.keel, durability, await withTempDatabase((path) => runKeelLoop({ path, steps, durability })));
    log(`S1: ${steps} steps, ${level}: LangGraph (durability 'sync')`);
    const langgraph = stepRow(
      BenchSystem.langgraph,
      "LangGraph, durability 'sync' (equal)",
      measures.langgraphEqual,
      durability,
      await withTempDatabase((path) => runLangGraphLoop({ path, steps, durability })),
    );
    log(`S1: ${steps} steps, ${level}: floor`);
    const floor = stepRow(BenchSystem.floor, 'floor (Keel rows, better-sqlite3 only)', measures.floor, durability, await withTempDatabase((path) => runFloorLoop({ path, steps, durability })));
    log(`S1: ${steps} steps, ${level}: floor with the model decision (diagnostic)`);
    const floorWithModel = stepRow(
      BenchSystem.floorWithModel,
      'floor + model decision (diagnostic)',
      measures.floorWithModel,
      durability,
      await withTempDatabase((path) => runFloorLoop({ path, steps, durability, beforeStep: standaloneDecisions(steps) })),
    );
    rows.push(keel, langgraph, floor, floorWithModel);
    comparisons.push({
      durability,
      steps,
      keelOverLangGraph: keel.overhead!.meanMs / langgraph.overhead!.meanMs,
      keelOverFloor: keel.overhead!.meanMs / floor.overhead!.meanMs,
      keelOverFloorWithModel: keel.overhead!.meanMs / floorWithModel.overhead!.meanMs,
      keelOverLangGraphWholeStep: keel.perStep.meanMs / langgraph.perStep.meanMs,
    });
  }
  log(`S1: ${sizes.s1Steps} steps: LangGraph with its defaults`);
  const defaults = await withTempDatabase((path) => runLangGraphLoop({ path, steps: sizes.s1Steps, durability: BenchDurability.langgraphDefault }));
  rows.push(stepRow(BenchSystem.langgraph, "LangGraph defaults (durability 'async')", measures.langgraphDefaults, BenchDurability.langgraphDefault, defaults));
  log(`S1: ${sizes.s1Steps} model decisions alone`);
  const decisions = await measureDecisionCost(sizes.s1Steps);
  rows.push(decisionRow(decisions));
  return { rows, comparisons };
}

export async function runS2(sizes: ScenarioSizes, log: Log): Promise<S2Result> {
  log(`S2: warming up each system with ${sizes.warmupSteps} growing steps`);
  await warmUp(sizes.warmupSteps, true);
  const steps = sizes.s2Steps;
  const durability = BenchDurability.normal;
  log(`S2: ${steps} steps appending ${oneKbMessage.length} bytes each: Keel`);
  const keel = await withTempDatabase((path) => runKeelLoop({ path, steps, durability, appendMessages: true }));
  log(`S2: ${steps} steps appending ${oneKbMessage.length} bytes each: LangGraph (durability 'sync')`);
  const langgraph = await withTempDatabase((path) => runLangGraphLoop({ path, steps, durability, appendMessages: true }));
  return {
    messageBytes: oneKbMessage.length,
    window: sizes.s2Window,
    rows: [
      growthRow(BenchSystem.keel, 'Keel', 'The S1 Keel workflow whose tool calls ctx.append; each append commits one context row with the step.', keel, sizes),
      growthRow(
        BenchSystem.langgraph,
        "LangGraph, durability 'sync', append reducer",
        "The S1 LangGraph graph with a 'messages' channel whose reducer appends; SqliteSaver checkpoints it every superstep.",
        langgraph,
        sizes,
      ),
    ],
  };
}

export async function runS3(sizes: ScenarioSizes, log: Log): Promise<S3Result> {
  const shape = { workflows: sizes.s3Workflows, stepsPerWorkflow: sizes.s3StepsPerWorkflow, concurrency: sizes.s3Concurrency, durability: BenchDurability.normal };
  log(`S3: ${shape.workflows} workflows x ${shape.stepsPerWorkflow} steps, ${shape.concurrency} in flight: Keel`);
  const keel = await withTempDatabase((path) => runKeelMany({ path, ...shape }));
  log(`S3: ${shape.workflows} workflows x ${shape.stepsPerWorkflow} steps, ${shape.concurrency} in flight: LangGraph`);
  const langgraph = await withTempDatabase((path) => runLangGraphMany({ path, ...shape }));
  return {
    rows: [
      throughputRow(
        BenchSystem.keel,
        `Keel, keel.work({ concurrency: ${shape.concurrency} })`,
        'keel.start for every workflow, then one worker claims and runs them (leases, two commits a step) until none is runnable.',
        keel,
      ),
      throughputRow(
        BenchSystem.langgraph,
        `LangGraph, ${shape.concurrency} concurrent invokes (reference)`,
        "One graph.invoke per workflow on its own thread id, durability 'sync'; no queue, claims or leases, so it does less than Keel's worker.",
        langgraph,
      ),
    ],
  };
}

/** Short throwaway runs of every system, so the measured runs do not pay for loading and JIT. */
async function warmUp(steps: number, appendMessages: boolean): Promise<void> {
  const durability = BenchDurability.normal;
  await withTempDatabase((path) => runKeelLoop({ path, steps, durability, appendMessages }));
  await withTempDatabase((path) => runLangGraphLoop({ path, steps, durability, appendMessages }));
  if (!appendMessages) await withTempDatabase((path) => runFloorLoop({ path, steps, durability }));
}

function stepRow(system: BenchSystem, label: string, measuresText: string, durability: BenchDurability, series: StepSeries): StepRow {
  const hasModel = series.modelMs.some((ms) => ms > 0);
  return {
    system,
    label,
    measures: measuresText,
    durability,
    synchronous: series.synchronous,
    steps: series.stepMs.length,
    totalMs: series.totalMs,
    stepsPerSecond: (series.stepMs.length / series.totalMs) * 1000,
    perStep: summarize(series.stepMs),
    model: hasModel ? summarize(series.modelMs) : null,
    overhead: summarize(series.stepMs.map((ms, index) => ms - series.modelMs[index]!)),
    write: summarize(series.writeMs),
  };
}

function decisionRow(decisions: number[]): StepRow {
  const totalMs = decisions.reduce((total, sample) => total + sample, 0);
  const summary = summarize(decisions);
  return {
    system: BenchSystem.aiSdk,
    label: 'model decision alone (no store)',
    measures: measures.decisionAlone,
    durability: BenchDurability.normal,
    synchronous: '-',
    steps: decisions.length,
    totalMs,
    stepsPerSecond: (decisions.length / totalMs) * 1000,
    perStep: summary,
    model: summary,
    overhead: null,
    write: null,
  };
}

function growthRow(system: BenchSystem, label: string, measuresText: string, series: StepSeries, sizes: ScenarioSizes): GrowthRow {
  const overheadMs = series.stepMs.map((ms, index) => ms - series.modelMs[index]!);
  const probes = sizes.s2Probes.map((step) => ({
    step,
    stepMs: windowMedian(series.stepMs, step, sizes.s2Window),
    overheadMs: windowMedian(overheadMs, step, sizes.s2Window),
    writeMs: windowMedian(series.writeMs, step, sizes.s2Window),
  }));
  const [first, last] = [probes[0]!, probes[probes.length - 1]!];
  return {
    system,
    label,
    measures: measuresText,
    steps: series.stepMs.length,
    totalMs: series.totalMs,
    probes,
    growth: last.stepMs / first.stepMs,
    overheadGrowth: last.overheadMs / first.overheadMs,
    writeGrowth: last.writeMs / first.writeMs,
    databaseBytes: series.databaseBytes,
  };
}

function throughputRow(system: BenchSystem, label: string, measuresText: string, run: ThroughputRun): ThroughputRow {
  return {
    ...run,
    system,
    label,
    measures: measuresText,
    workflowsPerSecond: (run.completed / run.totalMs) * 1000,
    stepsPerSecond: ((run.completed * run.stepsPerWorkflow) / run.totalMs) * 1000,
  };
}

async function runRunner(sizes: ScenarioSizes, log: Log): Promise<RunnerResult> {
  log(`Runner: ${sizes.runnerWarmupCalls} warm-up and ${sizes.runnerCalls} measured calls per variant, in ${sizes.runnerRounds} rounds`);
  return runRunnerOverhead(sizes);
}

async function runAudit(sizes: ScenarioSizes, log: Log): Promise<AuditVerifyResult> {
  log(`Audit: writing ${sizes.auditEntries} audit entries, then verifying them as keel audit verify does`);
  return withTempDatabase((path) => runAuditVerify({ path, entries: sizes.auditEntries, log }));
}

async function runApproval(sizes: ScenarioSizes, log: Log): Promise<ApprovalLatencyResult> {
  log(`Approval: parking ${sizes.approvalParked} workflows waiting for approval, then timing ${sizes.approvalSamples} approvals one at a time (worker concurrency ${sizes.approvalConcurrency}, poll ${sizes.approvalPollMs} ms)`);
  return withTempDatabase((path) =>
    runApprovalLatency({ path, parked: sizes.approvalParked, samples: sizes.approvalSamples, concurrency: sizes.approvalConcurrency, pollMs: sizes.approvalPollMs, log }),
  );
}

async function runTelemetry(sizes: ScenarioSizes, log: Log): Promise<TelemetryOverheadResult> {
  log(`Telemetry: ${sizes.telemetryRounds} rounds of ${sizes.telemetryWorkflows} workflows x 10 steps and ${sizes.telemetrySpanSteps} steps of span work, tracing off and SDK taking turns`);
  return runTelemetryOverhead({ rounds: sizes.telemetryRounds, workflows: sizes.telemetryWorkflows, spanSteps: sizes.telemetrySpanSteps, warmupWorkflows: sizes.telemetryWarmupWorkflows });
}

export const ScenarioName = { s1: 's1', s2: 's2', s3: 's3', runner: 'runner', audit: 'audit', approval: 'approval', telemetry: 'telemetry' } as const;
export type ScenarioName = (typeof ScenarioName)[keyof typeof ScenarioName];

export interface BenchResult {
  quick: boolean;
  /** Versions of the runtime and of the libraries measured. */
  environment: Record<string, string>;
  sizes: ScenarioSizes;
  s1?: S1Result;
  s2?: S2Result;
  s3?: S3Result;
  runner?: RunnerResult;
  audit?: AuditVerifyResult;
  approval?: ApprovalLatencyResult;
  telemetry?: TelemetryOverheadResult;
  targets: Target[];
  totalSeconds: number;
}

export async function runBench(options: { sizes: ScenarioSizes; quick: boolean; scenarios: readonly ScenarioName[]; log: Log }): Promise<BenchResult> {
  const startedAt = performance.now();
  const environment = benchEnvironment();
  const s1 = options.scenarios.includes(ScenarioName.s1) ? await runS1(options.sizes, options.log) : undefined;
  const s2 = options.scenarios.includes(ScenarioName.s2) ? await runS2(options.sizes, options.log) : undefined;
  const s3 = options.scenarios.includes(ScenarioName.s3) ? await runS3(options.sizes, options.log) : undefined;
  const runner = options.scenarios.includes(ScenarioName.runner) ? await runRunner(options.sizes, options.log) : undefined;
  const audit = options.scenarios.includes(ScenarioName.audit) ? await runAudit(options.sizes, options.log) : undefined;
  const approval = options.scenarios.includes(ScenarioName.approval) ? await runApproval(options.sizes, options.log) : undefined;
  const telemetry = options.scenarios.includes(ScenarioName.telemetry) ? await runTelemetry(options.sizes, options.log) : undefined;
  return {
    quick: options.quick,
    environment,
    sizes: options.sizes,
    ...(s1 && { s1 }),
    ...(s2 && { s2 }),
    ...(s3 && { s3 }),
    ...(runner && { runner }),
    ...(audit && { audit }),
    ...(approval && { approval }),
    ...(telemetry && { telemetry }),
    targets: evaluateTargets({ s1, s2, runner, audit, telemetry }),
    totalSeconds: (performance.now() - startedAt) / 1000,
  };
}

function benchEnvironment(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const version = (name: string) => (require(`${name}/package.json`) as { version: string }).version;
  const database = new Database(':memory:');
  try {
    return {
      date: new Date().toISOString(),
      cpu: `${cpus()[0]?.model ?? 'unknown'} x ${cpus().length}`,
      memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      sqlite: String((database.prepare('SELECT sqlite_version() AS version').get() as { version: string }).version),
      'better-sqlite3': version('better-sqlite3'),
      ai: version('ai'),
      '@langchain/langgraph': version('@langchain/langgraph'),
      '@langchain/langgraph-checkpoint-sqlite': version('@langchain/langgraph-checkpoint-sqlite'),
    };
  } finally {
    database.close();
  }
}
