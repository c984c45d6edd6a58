// The command line of `npm run bench`: which scenarios, which sizes, which output. Parsing only;
// run.ts acts on the result. A wrong flag is a usage error (exit 2) that says what was wrong and
// what the valid flags are, never a bench run with a guessed meaning.

import { parseArgs } from 'node:util';
import { ScenarioName } from './scenarios.js';

export interface BenchArgs {
  json: boolean;
  quick: boolean;
  help: boolean;
  /** In the order S1, S2, S3, runner, audit, approval, telemetry, whatever order they were given in. */
  scenarios: ScenarioName[];
}

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

const allScenarios = Object.values(ScenarioName);

export const benchUsage = `Usage: npm run bench -- [options]    (or: node dist/bench/run.js [options])

Measures Keel against LangGraph.js on the same workflow (scripted model, no-op tool, durable SQLite store).

Options:
  --json                 print only the result as JSON on stdout (progress goes to stderr)
  --quick                tiny sizes, for a smoke run: the figures are not meaningful
  --scenario <names>     run only these scenarios: ${allScenarios.join(', ')} (repeatable, or a comma list; default: all)
  -h, --help             print this help

Scenarios:
  s1  per-step overhead: one 1,000-step workflow; Keel, LangGraph with equal durability,
      LangGraph's defaults, and the floor (Keel's rows written with better-sqlite3 alone),
      with synchronous=NORMAL and FULL
  s2  growing state: 2,000 steps, each appending a 1 KB message to the context
  s3  many workflows: 200 workflows x 20 steps, 16 in flight at once, in one process
  runner  the tool runner's overhead per successful call of a no-op tool, against calling
          it directly: no service, a service with a breaker, a service with a SQLite rate budget
  audit   keel audit verify over an audit log of 1,000,000 entries (written first, not timed)
  approval  approval signal to the approved step starting and completing (p50/p99), with
          1,000 workflows parked waiting for approval; no target
  telemetry  OpenTelemetry's cost per step: tracing off (no provider) and the SDK with a
          no-op exporter, against a step with tracing off

Targets are printed as met or not met; they are never asserted.`;

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        json: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        scenario: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    // parseArgs names the offending flag or argument; we add what the valid ones are.
    const reason = error instanceof Error ? error.message : String(error);
    throw new BenchUsageError(`${reason}\nValid options: --json, --quick, --scenario <${allScenarios.join('|')}>, --help.`);
  }
  const { json, quick, help, scenario } = parsed.values;
  return { json: json === true, quick: quick === true, help: help === true, scenarios: scenarioList(scenario ?? []) };
}

function scenarioList(values: readonly string[]): ScenarioName[] {
  if (values.length === 0) return [...allScenarios];
  const chosen = new Set<ScenarioName>();
  for (const name of values.flatMap((value) => value.split(',')).map((name) => name.trim().toLowerCase())) {
    if (!isScenarioName(name)) {
      throw new BenchUsageError(`Unknown scenario '${name}' in --scenario. Known scenarios: ${allScenarios.join(', ')} (e.g. --scenario s1,s3).`);
    }
    chosen.add(name);
  }
  return allScenarios.filter((name) => chosen.has(name));
}

function isScenarioName(name: string): name is ScenarioName {
  return (allScenarios as readonly string[]).includes(name);
}
