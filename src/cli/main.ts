// The keel command: one commander program, one module per command under commands/. main() never
// exits the process: it returns the exit code (0 success, 1 a workflow failed, 2 bad usage or
// input), so tests and other programs run the CLI in-process. Only when this module is the
// program itself (bin/keel.js) does it set process.exitCode.

import { Command } from 'commander';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CommandContext } from './command-context.js';
import { approvalsCommand, approveCommand, rejectCommand } from './commands/approvals.js';
import { handoffsCommand } from './commands/handoffs.js';
import { auditCommand } from './commands/audit.js';
import { breakerCommand } from './commands/breaker.js';
import { costsCommand } from './commands/costs.js';
import { feedbackCommand } from './commands/feedback.js';
import { statsCommand } from './commands/stats.js';
import { demoCommand } from './commands/demo.js';
import { grantsCommand } from './commands/grants.js';
import { inspectCommand } from './commands/inspect.js';
import { listCommand } from './commands/list.js';
import { permissionsCommand } from './commands/permissions.js';
import { principalsCommand } from './commands/principals.js';
import { pruneCommand } from './commands/prune.js';
import { resumeCommand } from './commands/resume.js';
import { runCommand } from './commands/run.js';
import { workerCommand } from './commands/worker.js';
import { ExitCode, reportError } from './exit.js';
import { processIo, type CliIo } from './io.js';
import { repositoryFilePath } from './package-files.js';

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const program = createProgram({ io, exitWith: (code) => (exitCode = code) });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    return reportError(error, io);
  }
}

export function createProgram(context: CommandContext): Command {
  const { io } = context;
  const program = new Command('keel')
    .description('A durable runtime for LLM agents: run, inspect and resume workflows stored in a SQLite file.')
    .version(packageVersion(), '-V, --version', 'print the version of keel')
    .exitOverride()
    // Options belong to the command named before them: `keel audit verify --json` is verify's
    // --json, not audit's, though both commands have one.
    .enablePositionalOptions()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .showHelpAfterError("(run 'keel <command> --help' to see the command's options)");
  for (const command of [demoCommand, runCommand, listCommand, inspectCommand, resumeCommand, workerCommand, pruneCommand, auditCommand, costsCommand, breakerCommand, statsCommand, feedbackCommand, grantsCommand, principalsCommand, permissionsCommand, approvalsCommand, approveCommand, rejectCommand, handoffsCommand]) {
    // Commands are built apart from the program, so they take its output and exit settings here.
    program.addCommand(inheritSettings(command(context), program));
  }
  return program;
}

/** Copies the program's output, exit and parsing settings down to a command and its subcommands (keel audit verify). */
function inheritSettings(command: Command, parent: Command): Command {
  command.copyInheritedSettings(parent);
  for (const subcommand of command.commands) inheritSettings(subcommand, command);
  return command;
}

function packageVersion(): string {
  const path = repositoryFilePath('package.json');
  if (!path) return 'unknown';
  return String((JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown }).version ?? 'unknown');
}

/** True when node runs this module as the program: directly, or through bin/keel.js (also via an npm bin link). */
function runAsProgram(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  const candidates = [fileURLToPath(import.meta.url), repositoryFilePath('bin/keel.js')];
  try {
    const real = realpathSync(entry);
    return candidates.some((candidate) => candidate !== undefined && realpathSync(candidate) === real);
  } catch {
    return false;
  }
}

if (runAsProgram()) {
  // Output piped into a program that stopped reading (keel list | head): stop quietly, as
  // programs killed by SIGPIPE do, instead of crashing on the failed write.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? ExitCode.ok);
  });
  // Only the program itself registers a tracer provider: main() run in-process (tests, other
  // programs) keeps whatever provider its host set up. The SDK is loaded only when asked for.
  const tracing = process.env.OTEL_TRACES_EXPORTER?.trim()
    ? (await import('../telemetry/tracing-from-environment.js')).startTracingFromEnvironment(process.env, process.stderr)
    : undefined;
  process.exitCode = await main(process.argv.slice(2));
  await tracing?.shutdown();
}
