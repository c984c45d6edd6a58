// Exit codes of the keel command and how an error becomes a message. A person sees one paragraph
// naming the problem and the fix, never only a stack trace; KEEL_DEBUG=1 adds the stack.

import { CommanderError } from 'commander';
import { KeelError, errorMessage } from '../errors.js';
import type { CliIo } from './io.js';

export const ExitCode = {
  ok: 0,
  /** A workflow the command ran ended failed. */
  workflowFailed: 1,
  /** `keel audit verify` found a changed, missing or misplaced entry. */
  auditBroken: 1,
  /** Bad usage or bad input: unknown command or option, unreadable input, unknown id, unusable database. */
  badInput: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Writes what went wrong to stderr and returns the exit code for it. */
export function reportError(error: unknown, io: CliIo, debug = process.env.KEEL_DEBUG === '1'): number {
  if (error instanceof CommanderError) {
    // Commander has already printed its own message (help, version, or what was wrong with the usage).
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.badInput;
  }
  if (KeelError.isInstance(error)) {
    io.stderr.write(`keel: ${error.message}\n`);
    if (debug) io.stderr.write(stackOf(error));
    return error.exitCode;
  }
  io.stderr.write(
    `keel: unexpected error: ${errorMessage(error)}. This is a bug in Keel or in the agent's code, not in your input; ` +
      `run again with KEEL_DEBUG=1 to see the stack trace, and report it with that output.\n`,
  );
  if (debug) io.stderr.write(stackOf(error));
  return ExitCode.workflowFailed;
}

function stackOf(error: unknown): string {
  const lines: string[] = [];
  for (let current: unknown = error, depth = 0; current !== undefined && depth < 5; depth++) {
    lines.push(depth === 0 ? String((current as Error)?.stack ?? current) : `caused by: ${String((current as Error)?.stack ?? current)}`);
    current = (current as { cause?: unknown })?.cause;
  }
  return `${lines.join('\n')}\n`;
}
