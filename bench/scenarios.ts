// The three scenarios of `npm run bench`, each run against Keel, LangGraph.js and (for S1) the
// floor, and the targets Keel is held to. Every database lives in its own temporary folder,
// deleted when its run ends. Results are plain data: report.ts prints them, --json emits them.

import Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { runFloorLoop } from './floor.js';
import { measureDecisionCost, runKeelLoop, runKeelMany } from './keel-scenarios.js';
import { runLangGraphLoop, runLangGraphMany } from './langgraph-scenarios.js';
import { summarize, windowMean, type Summary } from './stats.js';
import { BenchDurability, oneKbMessage, withTempDatabase, type ScenarioSizes, type StepSeries, type ThroughputRun } from './workload.js';

export const BenchSystem = { keel: 'keel', langgraph: 'langgraph', floor: 'floor', aiSdk: 'ai-sdk' } as const;
export type BenchSystem = (typeof BenchSystem)[keyof typeof BenchSystem];

export interface StepRow {
  system: BenchSystem;
  label: string;
  durability: BenchDurability;
  /** SQLite's synchronous setting read back from the database ('-' when there is none). */
  synchronous: string;
  steps: number;
  totalMs: number;
  stepsPerSecond: number;
  perStep: Summary;
}

export interface S1Comparison {
  durability: typeof BenchDurability.normal | typeof BenchDurability.full;
  steps: number;
  /** Keel's mean per-step time over LangGraph's with equal durability. */
  keelOverLangGraph: number;
  /** Keel's mean per-step time over the floor's. */
  keelOverFloor: number;
}

export interface S1Result {
  rows: StepRow[];
  comparisons: S1Comparison[];
}

export interface GrowthRow {
  system: BenchSystem;
  label: string;
  steps: number;
  totalMs: number;
  /** Mean per-step time of the steps within `window` of each probed step. */
  probes: { step: number; meanMs: number }[];
  /** Last probe over first probe. */
  growth: number;
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
  workflowsPerSecond: number;
  stepsPerSecond: number;
}

export interface S3Result {
  rows: ThroughputRow[];
}

export type Log = (line: string) => void;

export async function runS1(sizes: ScenarioSizes, log: Log): Promise<S1Result> {
  log(`S1: warming up each system with ${sizes.warmupSteps} steps`);
  await warmUp(sizes.warmupSteps, false);
  const rows: StepRow[] = [];
  const comparisons: S1Comparison[] = [];
  for (const [durability, steps] of [
    [BenchDurability.normal, sizes.s1Steps],
    [BenchDurability.full, sizes.s1FullSteps],
  ] as const) {
    log(`S1: ${steps} steps, synchronous=${durability.toUpperCase()}: Keel`);
    const keel = stepRow(BenchSystem.keel, 'Keel', durability, await withTempDatabase((path) => runKeelLoop({ path, steps, durability })));
    log(`S1: ${steps} steps, synchronous=${durability.toUpperCase()}: LangGraph (durability 'sync')`);
    const langgraph = stepRow(BenchSystem.langgraph, "LangGraph, durability 'sync' (equal)", durability, await withTempDatabase((path) => runLangGraphLoop({ path, steps, durability })));
    log(`S1: ${steps} steps, synchronous=${durability.toUpperCase()}: floor`);
    const floor = stepRow(BenchSystem.floor, 'floor (Keel rows, better-sqlite3 only)', durability, await withTempDatabase(async (path) => runFloorLoop({ path, steps, durability })));
    rows.push(keel, langgraph, floor);
    comparisons.push({
      durability,
      steps,
      keelOverLangGraph: keel.perStep.meanMs / langgraph.perStep.meanMs,
      keelOverFloor: keel.perStep.meanMs / floor.perStep.meanMs,
    });
  }
  log(`S1: ${sizes.s1Steps} steps: LangGraph with its defaults`);
  const defaults = await withTempDatabase((path) => runLangGraphLoop({ path, steps: sizes.s1Steps, durability: BenchDurability.langgraphDefault }));
  rows.push(stepRow(BenchSystem.langgraph, "LangGraph defaults (durability 'async')", BenchDurability.langgraphDefault, defaults));
  log(`S1: ${sizes.s1Steps} model decisions alone`);
  const decisions = await measureDecisionCost(sizes.s1Steps);
  const decisionTotal = decisions.reduce((total, sample) => total + sample, 0);
  rows.push(
    stepRow(BenchSystem.aiSdk, 'generateText alone (Keel decider, no store)', BenchDurability.normal, {
      stepMs: decisions,
      totalMs: decisionTotal,
      databaseBytes: 0,
      synchronous: '-',
    }),
  );
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
    rows: [growthRow(BenchSystem.keel, 'Keel', keel, sizes), growthRow(BenchSystem.langgraph, "LangGraph, durability 'sync', append reducer", langgraph, sizes)],
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
      throughputRow(BenchSystem.keel, `Keel, keel.work({ concurrency: ${shape.concurrency} })`, keel),
      throughputRow(BenchSystem.langgraph, `LangGraph, ${shape.concurrency} concurrent invokes (reference)`, langgraph),
    ],
  };
}

/** Short throwaway runs of every system, so the measured runs do not pay for loading and JIT. */
async function warmUp(steps: number, appendMessages: boolean): Promise<void> {
  const durability = BenchDurability.normal;
  await withTempDatabase((path) => runKeelLoop({ path, steps, durability, appendMessages }));
  await withTempDatabase((path) => runLangGraphLoop({ path, steps, durability, appendMessages }));
  if (!appendMessages) await withTempDatabase(async (path) => runFloorLoop({ path, steps, durability }));
}

function stepRow(system: BenchSystem, label: string, durability: BenchDurability, series: StepSeries): StepRow {
  return {
    system,
    label,
    durability,
    synchronous: series.synchronous,
    steps: series.stepMs.length,
    totalMs: series.totalMs,
    stepsPerSecond: (series.stepMs.length / series.totalMs) * 1000,
    perStep: summarize(series.stepMs),
  };
}

function growthRow(system: BenchSystem, label: string, series: StepSeries, sizes: ScenarioSizes): GrowthRow {
  const probes = sizes.s2Probes.map((step) => ({ step, meanMs: windowMean(series.stepMs, step, sizes.s2Window) }));
  return {
    system,
    label,
    steps: series.stepMs.length,
    totalMs: series.totalMs,
    probes,
    growth: probes[probes.length - 1]!.meanMs / probes[0]!.meanMs,
    databaseBytes: series.databaseBytes,
  };
}

function throughputRow(system: BenchSystem, label: string, run: ThroughputRun): ThroughputRow {
  return {
    ...run,
    system,
    label,
    workflowsPerSecond: (run.completed / run.totalMs) * 1000,
    stepsPerSecond: ((run.completed * run.stepsPerWorkflow) / run.totalMs) * 1000,
  };
}

export const ScenarioName = { s1: 's1', s2: 's2', s3: 's3' } as const;
export type ScenarioName = (typeof ScenarioName)[keyof typeof ScenarioName];

export interface Target {
  name: string;
  /** The measured ratio. */
  figure: number;
  /** The most the ratio may be for the target to be met. */
  limit: number;
  met: boolean;
}

export interface BenchResult {
  quick: boolean;
  /** Versions of the runtime and of the libraries measured. */
  environment: Record<string, string>;
  sizes: ScenarioSizes;
  s1?: S1Result;
  s2?: S2Result;
  s3?: S3Result;
  targets: Target[];
  totalSeconds: number;
}

export async function runBench(options: { sizes: ScenarioSizes; quick: boolean; scenarios: readonly ScenarioName[]; log: Log }): Promise<BenchResult> {
  const startedAt = performance.now();
  const result: BenchResult = { quick: options.quick, environment: benchEnvironment(), sizes: options.sizes, targets: [], totalSeconds: 0 };
  if (options.scenarios.includes(ScenarioName.s1)) result.s1 = await runS1(options.sizes, options.log);
  if (options.scenarios.includes(ScenarioName.s2)) result.s2 = await runS2(options.sizes, options.log);
  if (options.scenarios.includes(ScenarioName.s3)) result.s3 = await runS3(options.sizes, options.log);
  result.targets = evaluateTargets(result);
  result.totalSeconds = (performance.now() - startedAt) / 1000;
  return result;
}

function benchEnvironment(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const version = (name: string) => (require(`${name}/package.json`) as { version: string }).version;
  const database = new Database(':memory:');
  try {
    return {
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

/** The targets Keel is held to. Reported as met or not; never asserted in tests (timings vary by machine). */
export function evaluateTargets(result: Pick<BenchResult, 's1' | 's2'>): Target[] {
  const targets: Target[] = [];
  for (const comparison of result.s1?.comparisons ?? []) {
    const level = comparison.durability.toUpperCase();
    targets.push(target(`S1 ${level}: Keel per-step time at most 1/5 of LangGraph's with equal durability`, comparison.keelOverLangGraph, 0.2));
    targets.push(target(`S1 ${level}: Keel per-step time within 3x of the floor`, comparison.keelOverFloor, 3));
  }
  const keelGrowth = result.s2?.rows.find((row) => row.system === BenchSystem.keel);
  if (keelGrowth) {
    const [first, last] = [keelGrowth.probes[0]!, keelGrowth.probes[keelGrowth.probes.length - 1]!];
    targets.push(target(`S2: Keel per-step time at step ${last.step} within 1.5x of step ${first.step}`, keelGrowth.growth, 1.5));
  }
  return targets;
}

function target(name: string, figure: number, limit: number): Target {
  return { name, figure, limit, met: figure <= limit };
}
