// Opens the store named by --db / KEEL_DB: a file path (SQLite, the default ./.keel/keel.db).
// KEEL_DURABILITY=full makes every SQLite commit survive power loss, not only a process crash.

import { KeelError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { openSqliteStore, type Durability } from './sqlite/sqlite-store.js';
import type { Store } from './types.js';

export const defaultDatabasePath = './.keel/keel.db';

export interface OpenStoreOptions {
  database?: string;
  durability?: string;
  clock?: Clock;
}

export function openStore(options: OpenStoreOptions = {}): Store {
  const database = options.database ?? process.env.KEEL_DB ?? defaultDatabasePath;
  const durability = (options.durability ?? process.env.KEEL_DURABILITY ?? 'normal').toLowerCase();
  if (durability !== 'normal' && durability !== 'full') {
    throw new KeelError('BAD_INPUT', `KEEL_DURABILITY='${durability}' is not known: use 'normal' (survives a process crash, the default) or 'full' (survives power loss).`);
  }
  if (/^postgres(ql)?:\/\//.test(database)) {
    throw new KeelError(
      'STORE_UNAVAILABLE',
      `KEEL_DB names a PostgreSQL database, and this version of Keel has only the embedded SQLite store. Use a file path (default ${defaultDatabasePath}).`,
    );
  }
  return openSqliteStore({ path: database, durability: durability as Durability, clock: options.clock });
}
