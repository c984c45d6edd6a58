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
  {
    version: 2,
    name: '0002_audit',
    // The hash-chained audit log (keel-audit-v1, see src/audit/chain.ts). Append-only: rows are
    // never updated or deleted, not even by pruning. data holds canonical JSON text, the exact
    // bytes the hash covers.
    sql: `
      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        workflow_id TEXT,
        step INTEGER,
        subject TEXT,
        outcome TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      -- One index only: every index is one more page written by every commit of every step. Queries
      -- by actor or time scan the table (about half a second per million entries); a permission
      -- review that needs them faster adds its index in a migration of its own.
      CREATE INDEX audit_by_workflow ON audit (workflow_id, seq);
    `,
  },
  {
    version: 3,
    name: '0003_grants',
    // Least privilege (docs/security.md). Grants are never deleted: a revoked grant keeps who
    // revoked it and when. task_types and resources are JSON arrays, NULL meaning "any".
    // Every change to these tables is audited in the transaction that makes it.
    sql: `
      CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        principal_id TEXT NOT NULL,
        permission TEXT NOT NULL,
        task_types TEXT,
        resources TEXT,
        expires_at INTEGER,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER,
        revoked_by TEXT,
        last_used_at INTEGER
      );
      CREATE INDEX grants_by_principal ON grants (principal_id, permission);

      CREATE TABLE principals (
        id TEXT PRIMARY KEY,
        roles TEXT NOT NULL,
        department TEXT,
        updated_by TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: '0004_approvals',
    // Human in the loop (src/approval): one row per proposed action held for a person. A row is
    // decided once (status leaves 'pending' once, guarded by the UPDATE's WHERE); the workflow
    // itself waits in workflows with waiting_for 'approval' and wake_at at the expiry.
    sql: `
      CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        workflow_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        tool TEXT NOT NULL,
        args TEXT NOT NULL,
        reasoning TEXT,
        confidence REAL,
        reasons TEXT NOT NULL,
        approvers TEXT,
        requester TEXT NOT NULL,
        allow_self_approval INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        status TEXT NOT NULL,
        decided_by TEXT,
        decided_at INTEGER,
        comment TEXT,
        modified_args TEXT
      );
      CREATE INDEX approvals_by_workflow ON approvals (workflow_id, step);
      CREATE INDEX approvals_by_status ON approvals (status, created_at);
    `,
  },
];

export const latestSchemaVersion = sqliteMigrations[sqliteMigrations.length - 1]!.version;
