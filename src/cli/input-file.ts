// Reads a workflow's JSON input from a file or standard input (`--input -`). Every way this can
// go wrong ends in a BAD_INPUT error that names the file, the line and column, and the fix.

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { KeelError, errorMessage } from '../errors.js';
import type { CliIo } from './io.js';
import { jsonErrorPosition } from './json-error-position.js';

export async function readJsonInput(source: string, io: CliIo): Promise<unknown> {
  const fromStdin = source === '-';
  const name = fromStdin ? 'standard input' : `input file ${source}`;
  const text = fromStdin ? await io.readStdin() : await readInputFile(source, io.cwd);
  const json = text.replace(/^\uFEFF/, '');
  if (json.trim() === '') {
    throw new KeelError('BAD_INPUT', `The ${name} is empty. Put the workflow's input there as one JSON object (e.g. {"claimId": "C-1001", ...}).`);
  }
  try {
    return JSON.parse(json);
  } catch (error) {
    const position = jsonErrorPosition(json);
    const where = position ? ` at line ${position.line}, column ${position.column} (position ${position.offset})` : '';
    throw new KeelError(
      'BAD_INPUT',
      `The ${name} is not valid JSON${where}: ${parserReason(error)}. Fix the JSON there and run the command again; nothing was started or stored.`,
      { cause: error },
    );
  }
}

async function readInputFile(path: string, cwd: string): Promise<string> {
  const absolute = resolve(cwd, path);
  try {
    return await readFile(absolute, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a folder, not a file'
          : code === 'EACCES' || code === 'EPERM'
            ? 'cannot be read (permission denied)'
            : `cannot be read (${errorMessage(error)})`;
    throw new KeelError(
      'BAD_INPUT',
      `The input file ${path} ${problem} (looked at ${absolute}). Pass --input with the path to a JSON file, or --input - to read the JSON from standard input.`,
      { cause: error },
    );
  }
}

/** JSON.parse's own reason, without the whole input it quotes back ("..." is not valid JSON). */
function parserReason(error: unknown): string {
  return errorMessage(error)
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/\n/g, '\\n');
}
