// The `runner` scenario: what Keel's tool runner (src/tools/tool-runner.ts) adds to one
// successful call of a no-op tool, against calling the tool's execute directly. In process, one
// call at a time as the step loop makes them, with no journal or audit writes (a step's commits
// are S1's business). Rows:
//   direct       tool.execute(args, context), awaited;
//   runner       admit + attempt for a tool that names no service (timeout, abort signal);
//   service      the tool names a service with the default circuit breaker and no budget of its own
//                (the breaker, and the shared pause check that every service's calls make);
//   rate budget  the same with a rate budget in the store's SQLite file: one counter write per call,
//                shared by every worker on the store, reported apart because its cost is that write.
// Each variant runs in rounds, the variants taking turns, so a slow stretch of the machine
// falls on all of them alike; times are per call, in microseconds.

import { z } from 'zod';
import { defineTool, openSqliteStore, type Principal, type SqliteStore, type ToolContext } from '../src/index.js';
import { ToolRunner, type ServiceConfig } from '../src/tools/tool-runner.js';
import { silentLogger } from '../src/util/logger.js';
import { summarize } from './stats.js';
import { withTempDatabase, type ScenarioSizes } from './workload.js';

export const RunnerVariant = { direct: 'direct', runner: 'runner', service: 'service', rateBudget: 'rate-budget' } as const;
export type RunnerVariant = (typeof RunnerVariant)[keyof typeof RunnerVariant];

/** Per-call times in microseconds. */
export interface MicroSummary {
  count: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export interface RunnerCallRow {
  variant: RunnerVariant;
  label: string;
  measures: string;
  call: MicroSummary;
  /** This row's figure minus the direct call's (mean minus mean, p50 minus p50, p99 minus p99); null for the direct row. */
  overhead: { meanUs: number; p50Us: number; p99Us: number } | null;
}

export interface RunnerResult {
  /** Measured calls per variant, after `warmupCalls` unmeasured ones. */
  calls: number;
  warmupCalls: number;
  /** The variants take turns: each round runs calls/rounds calls of every variant. */
  rounds: number;
  rows: RunnerCallRow[];
}


const serviceName = 'bench-service';
const budgetedServiceName = 'bench-budgeted';
const principal: Principal = { id: 'bench-user' };

const variants: readonly { variant: RunnerVariant; label: string; measures: string }[] = [
  { variant: RunnerVariant.direct, label: 'direct call', measures: 'await tool.execute(args, context) on the no-op tool: the baseline.' },
  {
    variant: RunnerVariant.runner,
    label: 'runner, no service',
    measures: "runner.admit + runner.attempt for a tool that names no service: callTool's timeout timer and AbortController, the credentials hook, result and duration.",
  },
  {
    variant: RunnerVariant.service,
    label: 'runner, service with breaker',
    measures:
      "The same with the tool's service declared with the default circuit breaker and no rate budget: adds the breaker (cockatiel) and the budget's pause check (read from the store at most every 250 ms).",
  },
  {
    variant: RunnerVariant.rateBudget,
    label: 'runner, service with rate budget (SQLite)',
    measures:
      "The same with a rate budget on the store's SQLite file (a quota that never runs out): every call also writes its counter (RateLimiterSQLite), the budget every worker on the store shares.",
  },
];

/** Runs every variant on one SQLite store (a temporary file, as a worker's store is) and summarises each. */
export async function runRunnerOverhead(scenarioSizes: ScenarioSizes): Promise<RunnerResult> {
  const sizes = { calls: scenarioSizes.runnerCalls, warmupCalls: scenarioSizes.runnerWarmupCalls, rounds: scenarioSizes.runnerRounds };
  if (sizes.calls % sizes.rounds !== 0) {
    throw new Error(`The runner scenario's ${sizes.calls} calls do not divide into ${sizes.rounds} rounds; pick sizes where they do, so every variant makes the same calls.`);
  }
  return withTempDatabase(async (path) => {
    const store = openSqliteStore({ path });
    try {
      const calls = callsByVariant(store);
      for (const call of Object.values(calls)) await repeat(call, sizes.warmupCalls);
      const samples = new Map<RunnerVariant, number[]>(variants.map(({ variant }) => [variant, []]));
      const perRound = sizes.calls / sizes.rounds;
      for (let round = 0; round < sizes.rounds; round++) {
        // Each round starts with a different variant, so none always runs right after another's garbage.
        for (let turn = 0; turn < variants.length; turn++) {
          const { variant } = variants[(round + turn) % variants.length]!;
          samples.get(variant)!.push(...(await repeat(calls[variant], perRound)));
        }
      }
      const direct = microSummary(samples.get(RunnerVariant.direct)!);
      return {
        ...sizes,
        rows: variants.map(({ variant, label, measures }) => {
          const call = variant === RunnerVariant.direct ? direct : microSummary(samples.get(variant)!);
          const overhead = variant === RunnerVariant.direct ? null : { meanUs: call.meanUs - direct.meanUs, p50Us: call.p50Us - direct.p50Us, p99Us: call.p99Us - direct.p99Us };
          return { variant, label, measures, call, overhead };
        }),
      };
    } finally {
      await store.close();
    }
  });
}

type Call = () => Promise<void>;

/** One successful call per variant, each checked: a refused or failed call would not measure a successful one. */
function callsByVariant(store: SqliteStore): Record<RunnerVariant, Call> {
  const plain = noOpTool();
  const withService = noOpTool(serviceName);
  const budgeted = noOpTool(budgetedServiceName);
  const services: Record<string, ServiceConfig> = {
    [serviceName]: {},
    // Never runs out during the bench: every call is admitted and pays for its counter write.
    [budgetedServiceName]: { rateLimit: { points: 1_000_000_000, durationSeconds: 3600 } },
  };
  const runner = new ToolRunner({ store, services });
  const context = toolContext();
  const args = { step: 1 };
  const throughRunner = (tool: typeof plain): Call => {
    return async () => {
      const blocked = await runner.admit(tool, principal);
      if (blocked) throw new Error(`The runner scenario's call of tool '${tool.name}' was refused (${blocked.message}); the bench measures successful calls only.`);
      const outcome = await runner.attempt(tool, args, context);
      if (!outcome.ok) throw new Error(`The runner scenario's call of tool '${tool.name}' failed: ${'message' in outcome ? outcome.message : outcome.blocked.message}.`);
    };
  };
  return {
    [RunnerVariant.direct]: async () => {
      await plain.execute(args, context);
    },
    [RunnerVariant.runner]: throughRunner(plain),
    [RunnerVariant.service]: throughRunner(withService),
    [RunnerVariant.rateBudget]: throughRunner(budgeted),
  };
}

function noOpTool(service?: string) {
  return defineTool({
    name: 'noop',
    description: 'Does nothing and says so.',
    input: z.object({ step: z.number() }),
    ...(service && { service }),
    execute: (args) => ({ step: args.step, done: false }),
  });
}

/** Built once, as the step loop builds one per attempt outside the runner; the signal lives as long as the workflow's. */
function toolContext(): ToolContext {
  const signal = new AbortController().signal;
  return {
    workflowId: 'wf_bench_runner',
    step: 1,
    idempotencyKey: 'wf_bench_runner:1',
    attempt: 1,
    principal,
    signal,
    logger: silentLogger,
    input: {},
    get: () => undefined,
    set: () => undefined,
    append: () => undefined,
    credentials: async () => {
      throw new Error('The no-op tool asks for no credentials.');
    },
  };
}

/** Makes `count` calls one after another; each call's time in ms. */
async function repeat(call: Call, count: number): Promise<number[]> {
  const times = new Array<number>(count);
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    await call();
    times[index] = performance.now() - started;
  }
  return times;
}

function microSummary(samplesMs: readonly number[]): MicroSummary {
  const summary = summarize(samplesMs);
  return { count: summary.count, meanUs: summary.meanMs * 1000, p50Us: summary.p50Ms * 1000, p99Us: summary.p99Ms * 1000, maxUs: summary.maxMs * 1000 };
}
