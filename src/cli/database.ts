// Opens the database a command names. Commands that only read or change existing workflows
// refuse a path where no database exists, instead of silently creating an empty one there
// (a mistyped --db would otherwise look like "no workflows").

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KeelError } from '../errors.js';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/types.js';

export function openDatabase(path: string, options: { mustExist: boolean }): Store {
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new KeelError(
      'STORE_UNAVAILABLE',
      `${path} is a folder, not a database file. Point --db (or KEEL_DB) at a file inside it, e.g. ${join(path, 'keel.db')}.`,
    );
  }
  if (options.mustExist && !existsSync(path)) {
    throw new KeelError(
      'STORE_UNAVAILABLE',
      `There is no Keel database at ${path}. Point --db (or KEEL_DB) at the database your workflows ran in, ` +
        `or start some first with \`keel run <agent> --input <file>\` or \`keel demo\`.`,
    );
  }
  return openStore({ database: path });
}

/** Runs `use` with the store open, and closes it however `use` ends. */
export async function withDatabase<T>(path: string, options: { mustExist: boolean }, use: (store: Store) => Promise<T>): Promise<T> {
  const store = openDatabase(path, options);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}
