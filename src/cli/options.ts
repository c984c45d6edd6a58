// Options several commands share, and the parsers that turn option text into values. A parser
// that refuses a value throws commander's InvalidArgumentError, so the user gets commander's
// usage message and exit code 2.

import { InvalidArgumentError, Option, type Command } from 'commander';
import { resolve } from 'node:path';
import { defaultDatabasePath } from '../store/open-store.js';

export function databaseOption(options: { withDefault: boolean } = { withDefault: true }): Option {
  const option = new Option('--db <path>', 'SQLite database file').env('KEEL_DB');
  return options.withDefault ? option.default(defaultDatabasePath) : option;
}

export interface DatabaseChoice {
  /** Absolute path of the database file. */
  path: string;
  /** How to name this database in a command we suggest: empty when it is the one the user gets anyway. */
  flag: string;
}

/** The database a command was pointed at, and the `--db` flag to repeat in the commands it suggests. */
export function databaseChoice(command: Command, cwd: string): DatabaseChoice {
  const given = command.opts<{ db: string }>().db;
  const fromCli = command.getOptionValueSource('db') === 'cli';
  return { path: resolve(cwd, given), flag: fromCli ? ` --db ${shellQuote(given)}` : '' };
}

export function positiveInteger(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < 1) {
    throw new InvalidArgumentError(`Expected a whole number of at least 1, got '${value}'.`);
  }
  return number;
}

export function nonNegativeInteger(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number)) {
    throw new InvalidArgumentError(`Expected a whole number of 0 or more, got '${value}'.`);
  }
  return number;
}

const durationUnits: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** An ISO date/time, or a duration before `now` such as 7d, 12h, 30m, 45s or 2w. */
export function parsePointInTime(value: string, now: number = Date.now()): number {
  const relative = /^(\d+)\s*([smhdw])$/i.exec(value.trim());
  if (relative) return now - Number(relative[1]) * durationUnits[relative[2]!.toLowerCase()]!;
  const isoLike = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim());
  const time = Date.parse(value.trim());
  if (!isoLike || Number.isNaN(time)) {
    throw new InvalidArgumentError(
      `Expected an ISO date or time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z) or a duration ago such as 7d, 12h, 30m, 45s or 2w; got '${value}'.`,
    );
  }
  return time;
}

/** An ISO date/time, or a duration from `now` such as 8h, 30d or 2w: when something ends. */
export function parseFutureTime(value: string, now: number = Date.now()): number {
  const relative = /^(\d+)\s*([smhdw])$/i.exec(value.trim());
  if (relative) return now + Number(relative[1]) * durationUnits[relative[2]!.toLowerCase()]!;
  const isoLike = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim());
  const time = Date.parse(value.trim());
  if (!isoLike || Number.isNaN(time)) {
    throw new InvalidArgumentError(`Expected an ISO date or time (e.g. 2026-12-31 or 2026-12-31T18:00:00Z) or a duration from now such as 8h, 30d or 2w; got '${value}'.`);
  }
  return time;
}

export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
