// The workload both systems run, shared by the Keel, LangGraph and floor runners: the scenario
// sizes, the one decision the scripted model takes every step, the shape of a run's raw timings,
// and the throwaway folders the databases live in.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DecisionView } from '../src/index.js';
import type { ScriptedAction } from '../src/testing.js';

/** The SQLite durability a run asks for: Keel's two settings, and LangGraph left at its defaults. */
export const BenchDurability = { normal: 'normal', full: 'full', langgraphDefault: 'langgraph-default' } as const;
export type BenchDurability = (typeof BenchDurability)[keyof typeof BenchDurability];

export interface ScenarioSizes {
  /** Steps of the S1 workflow with synchronous=NORMAL. */
  s1Steps: number;
  /** Steps of the S1 workflow with synchronous=FULL: every commit waits for the disk, so fewer. */
  s1FullSteps: number;
  /** Steps run (and thrown away) per system before S1 and S2 measure, so the JIT is warm for everyone. */
  warmupSteps: number;
  s2Steps: number;
  /** The steps of S2 whose per-step time is reported (1-based). */
  s2Probes: readonly number[];
  /** Steps either side of a probe averaged into its figure. */
  s2Window: number;
  s3Workflows: number;
  s3StepsPerWorkflow: number;
  s3Concurrency: number;
  /** Measured calls per variant of the runner scenario, made in `runnerRounds` rounds (it must divide them). */
  runnerCalls: number;
  /** Calls per variant made (and thrown away) before the runner scenario measures. */
  runnerWarmupCalls: number;
  runnerRounds: number;
  /** Entries in the audit log the audit scenario writes and then verifies. */
  auditEntries: number;
  /** Workflows parked waiting for approval while the approval scenario approves some of them. */
  approvalParked: number;
  /** Approvals the approval scenario times, one at a time (at most approvalParked). */
  approvalSamples: number;
  approvalConcurrency: number;
  /** The worker's idle poll interval in the approval scenario: an approval waits up to one interval. */
  approvalPollMs: number;
  /** Rounds of the telemetry scenario, in which tracing off and the SDK take turns. */
  telemetryRounds: number;
  /** Workflows of 10 steps run per telemetry mode and round. */
  telemetryWorkflows: number;
  /** Steps of span work alone timed per telemetry mode and round. */
  telemetrySpanSteps: number;
  /** Workflows per telemetry mode run (and thrown away) before measuring. */
  telemetryWarmupWorkflows: number;
}

export const fullSizes: ScenarioSizes = {
  s1Steps: 1000,
  s1FullSteps: 200,
  warmupSteps: 100,
  s2Steps: 2000,
  s2Probes: [10, 1000, 2000],
  s2Window: 5,
  s3Workflows: 200,
  s3StepsPerWorkflow: 20,
  s3Concurrency: 16,
  runnerCalls: 20_000,
  runnerWarmupCalls: 5_000,
  runnerRounds: 20,
  auditEntries: 1_000_000,
  approvalParked: 1000,
  approvalSamples: 100,
  approvalConcurrency: 8,
  approvalPollMs: 20,
  telemetryRounds: 5,
  telemetryWorkflows: 40,
  telemetrySpanSteps: 50_000,
  telemetryWarmupWorkflows: 20,
};

/** Small enough for a test run; the same code paths as the full bench. */
export const quickSizes: ScenarioSizes = {
  s1Steps: 30,
  s1FullSteps: 10,
  warmupSteps: 5,
  s2Steps: 40,
  s2Probes: [10, 20, 40],
  s2Window: 2,
  s3Workflows: 8,
  s3StepsPerWorkflow: 4,
  s3Concurrency: 3,
  runnerCalls: 400,
  runnerWarmupCalls: 100,
  runnerRounds: 4,
  auditEntries: 2_000,
  approvalParked: 50,
  approvalSamples: 10,
  approvalConcurrency: 8,
  approvalPollMs: 20,
  telemetryRounds: 1,
  telemetryWorkflows: 2,
  telemetrySpanSteps: 200,
  telemetryWarmupWorkflows: 1,
};

/** The agent's name in both systems. */
export const loopAgentName = 'bench-loop';
/** The one tool: a no-op in S1 and S3, appends a message to the context in S2. */
export const workToolName = 'work';
/** How many earlier observations the model sees: the default window of Keel's model decider. */
export const historyWindow = 40;

/** The 1 KB message S2 appends every step. */
export const oneKbMessage = 'The quick brown fox jumps over the lazy dog. '.repeat(24).slice(0, 1024);

/** What the scripted model decides at every step, in both systems: call the work tool once. */
export function decideWork(view: DecisionView): ScriptedAction {
  return { tool: workToolName, input: { step: view.step } };
}

/** One workflow's run: the time each step took (1-based step k at index k-1) and in total. */
export interface StepSeries {
  stepMs: number[];
  /** Of each step, the time the model decision took (prompt, generateText, scripted model); 0 where there is no model. */
  modelMs: number[];
  /** Of each step, the time spent in the durable store's writes (Keel's commits, LangGraph's checkpoint puts). */
  writeMs: number[];
  totalMs: number;
  /** The database file plus its -wal file when the run ended, before the database was closed. */
  databaseBytes: number;
  /** SQLite's synchronous setting the run wrote with (OFF, NORMAL, FULL, EXTRA), read back from the database. */
  synchronous: string;
}

/** Many workflows run side by side. */
export interface ThroughputRun {
  workflows: number;
  stepsPerWorkflow: number;
  concurrency: number;
  totalMs: number;
  completed: number;
}

/**
 * Collects a run's per-step figures as it goes: when each step ended, and the model and write
 * time spent inside it. Time added before `endStep` belongs to the step that `endStep` ends.
 */
export class StepLog {
  private readonly finishedAt: number[] = [];
  private readonly modelMs: number[] = [];
  private readonly writeMs: number[] = [];
  private startedAt = performance.now();
  private model = 0;
  private write = 0;

  /** Marks the start of the first step (and forgets any write made while setting up). */
  start(): void {
    this.startedAt = performance.now();
    this.model = 0;
    this.write = 0;
  }

  addModel(ms: number): void {
    this.model += ms;
  }

  addWrite(ms: number): void {
    this.write += ms;
  }

  endStep(): void {
    this.finishedAt.push(performance.now());
    this.modelMs.push(this.model);
    this.writeMs.push(this.write);
    this.model = 0;
    this.write = 0;
  }

  get steps(): number {
    return this.finishedAt.length;
  }

  /** Time since `start`: the run's total when called as the run returns. */
  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  /** Replaces the model times with ones the system recorded itself (Keel journals each decision's duration). */
  useModelMs(modelMs: readonly number[]): void {
    if (modelMs.length !== this.finishedAt.length) {
      throw new Error(`Got model times for ${modelMs.length} steps, but the run recorded ${this.finishedAt.length} steps; the per-step overhead would be misaligned.`);
    }
    this.modelMs.splice(0, this.modelMs.length, ...modelMs);
  }

  series(end: { totalMs: number; databaseBytes: number; synchronous: string }): StepSeries {
    return { stepMs: stepDurations(this.startedAt, this.finishedAt), modelMs: [...this.modelMs], writeMs: [...this.writeMs], ...end };
  }
}

/** Per-step times from the moments each step finished, measured from when the run began. */
export function stepDurations(startedAt: number, finishedAt: readonly number[]): number[] {
  return finishedAt.map((at, index) => at - (index === 0 ? startedAt : finishedAt[index - 1]!));
}

/** Reads PRAGMA synchronous back from an open database, as the name SQLite documents it by. */
export function synchronousName(database: { pragma(source: string, options: { simple: true }): unknown }): string {
  const level = Number(database.pragma('synchronous', { simple: true }));
  return ['OFF', 'NORMAL', 'FULL', 'EXTRA'][level] ?? `level ${level}`;
}

export function databaseBytes(path: string): number {
  return [path, `${path}-wal`].reduce((total, file) => total + fileSize(file), 0);
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Runs `body` with a database path in a fresh temporary folder, and deletes the folder afterwards. */
export async function withTempDatabase<T>(body: (path: string) => Promise<T>): Promise<T> {
  const folder = mkdtempSync(join(tmpdir(), 'keel-bench-'));
  try {
    return await body(join(folder, 'bench.db'));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
