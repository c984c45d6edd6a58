// What every command module receives from main: where to write, and how to say which exit code
// the command ends with. Commands return through it instead of calling process.exit, so the
// whole CLI runs in-process (tests, embedding) and a finished command leaves nothing running.

import type { CliIo } from './io.js';

export interface CommandContext {
  io: CliIo;
  /** Sets the code `keel` exits with once the command's action has returned. */
  exitWith(code: number): void;
}
