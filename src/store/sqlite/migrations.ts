// SQLite schema migrations: ordered, named steps. The database's PRAGMA user_version is the
// number of the last one applied; a database written by a newer Keel is refused, never altered.

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: '0001_workflows',
    sql: `
      CREATE TABLE workflows (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        agent_version TEXT NOT NULL,
        agent_module TEXT,
        principal TEXT NOT NULL,
        input TEXT NOT NULL,
        status TEXT NOT NULL,
        state TEXT NOT NULL,
        step INTEGER NOT NULL DEFAULT 0,
        waiting_for TEXT,
        outcome TEXT,
        failure TEXT,
        lease_owner TEXT,
        lease_expires_at INTEGER,
        wake_at INTEGER,
        recoveries INTEGER NOT NULL DEFAULT 0,
        context_bytes INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        pruned_at INTEGER
      );
      CREATE INDEX workflows_runnable ON workflows (status, wake_at, created_at);
      CREATE INDEX workflows_finished ON workflows (updated_at) WHERE status IN ('completed', 'failed', 'cancelled');

      CREATE TABLE journal (
        seq INTEGER PRIMARY KEY,
        workflow_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        kind TEXT NOT NULL,
        name TEXT,
        status TEXT,
        attempt INTEGER,
        duration_ms REAL,
        tokens_in INTEGER,
        tokens_out INTEGER,
        data TEXT,
        at INTEGER NOT NULL
      );
      CREATE INDEX journal_by_workflow ON journal (workflow_id, seq);

      -- item -1 holds a plain value; items 0..n hold the elements of a list appended to item by item.
      CREATE TABLE context (
        workflow_id TEXT NOT NULL,
        key TEXT NOT NULL,
        item INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (workflow_id, key, item)
      ) WITHOUT ROWID;
    `,
  },
];

export const latestSchemaVersion = sqliteMigrations[sqliteMigrations.length - 1]!.version;
