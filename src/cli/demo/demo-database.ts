// The demo runs on a fresh database, so its summary and `keel list` show the demo and nothing
// else. When the database it was pointed at (--db, KEEL_DB or the default) already holds
// workflows, the demo leaves it alone and uses a new file beside it, demo-<time>.db, and says so.
// A file that is not a usable Keel database is refused as by every command, never replaced.

import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import type { Store } from '../../store/types.js';
import { openDatabase } from '../database.js';
import { shellQuote, type DatabaseChoice } from '../options.js';

export interface DemoDatabase {
  store: Store;
  path: string;
  /** The --db flag the suggested commands repeat (empty for the database they use anyway). */
  flag: string;
  /** Why the demo is not using the database it was pointed at, when it is not. */
  note?: string;
}

export async function openDemoDatabase(choice: DatabaseChoice, cwd: string, now: Date = new Date()): Promise<DemoDatabase> {
  const store = openDatabase(choice.path, { mustExist: false });
  const held = Object.values(await store.countByStatus()).reduce((sum, count) => sum + count, 0);
  if (held === 0) return { store, path: choice.path, flag: choice.flag };
  await store.close();
  const path = freshPath(dirname(choice.path), now);
  const shown = displayPath(path, cwd);
  return {
    store: openDatabase(path, { mustExist: false }),
    path,
    flag: ` --db ${shellQuote(shown)}`,
    note: `${displayPath(choice.path, cwd)} already holds ${held} workflow${held === 1 ? '' : 's'}: the demo leaves it alone and runs on a new file, ${shown}.`,
  };
}

function freshPath(directory: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  for (let copy = 1; ; copy++) {
    const path = join(directory, `demo-${stamp}${copy === 1 ? '' : `-${copy}`}.db`);
    if (!existsSync(path)) return path;
  }
}

/** Relative to the working folder when inside it, so suggested commands stay short. */
export function displayPath(path: string, cwd: string): string {
  const inside = relative(cwd, path);
  return inside !== '' && !inside.startsWith('..') && !isAbsolute(inside) ? inside : path;
}
