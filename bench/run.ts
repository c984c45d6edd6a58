// The entry of `npm run bench` (compiled to dist/bench/run.js). Reads the flags, runs the chosen
// scenarios and prints the tables, or with --json only the result as JSON on stdout; progress
// always goes to stderr so stdout stays machine-readable. Exit codes: 0 done (targets met or
// not: they are reported, never enforced), 1 the bench itself failed, 2 bad usage.

import { BenchUsageError, benchUsage, parseBenchArgs } from './bench-args.js';
import { formatReport } from './report.js';
import { runBench } from './scenarios.js';
import { fullSizes, quickSizes } from './workload.js';

async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseBenchArgs(argv);
  } catch (error) {
    if (!(error instanceof BenchUsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\nRun with --help for the usage.\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${benchUsage}\n`);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const result = await runBench({ sizes: args.quick ? quickSizes : fullSizes, quick: args.quick, scenarios: args.scenarios, log });
  process.stdout.write(args.json ? `${JSON.stringify(result, null, 2)}\n` : `\n${formatReport(result)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `bench: the bench stopped: ${error instanceof Error ? error.message : String(error)}\n` +
        `${error instanceof Error && error.stack ? `${error.stack}\n` : ''}No figures were printed because a partial run would compare unequal work.\n`,
    );
    process.exitCode = 1;
  },
);
