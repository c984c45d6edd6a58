// The embedded Store: one SQLite file through better-sqlite3, WAL mode. Default durability
// (synchronous=NORMAL) makes every commit survive a process crash; 'full' (synchronous=FULL)
// makes it survive power loss too. Several processes may share the file: SQLite serialises
// writers and a busy timeout makes them wait their turn.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { AuditEntry, AuditHead, AuditQuery, NewAuditEntry, StoredAuditEntry } from '../../audit/audit-entry.js';
import { KeelError, unknownWorkflow } from '../../errors.js';
import { systemClock, type Clock } from '../../util/clock.js';
import type {
  ApprovalDecisionRecord,
  ApprovalQuery,
  ApprovalRequest,
  AuditRange,
  Claim,
  ClaimOptions,
  Commit,
  ContextChange,
  Grant,
  GrantQuery,
  JournalEntry,
  ListOptions,
  NewGrant,
  NewJournalEntry,
  NewWorkflow,
  Principal,
  PruneResult,
  RateLimiterBackend,
  Store,
  WorkflowPatch,
  WorkflowRecord,
  WorkflowStatus,
} from '../types.js';
import { latestSchemaVersion, sqliteMigrations } from './migrations.js';
import { parsedEntry, SqliteAuditLog } from './sqlite-audit.js';
import { SqliteGrants } from './sqlite-grants.js';
import { SqliteApprovals } from './sqlite-approvals.js';

export const Durability = { normal: 'normal', full: 'full' } as const;
export type Durability = (typeof Durability)[keyof typeof Durability];

export interface SqliteStoreOptions {
  path: string;
  durability?: Durability;
  clock?: Clock;
  /** How long a writer waits for another process's write lock. */
  busyTimeoutMs?: number;
}

type Row = Record<string, unknown>;

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly path: string;
  readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly statements;
  /** The commit's workflow updates, by SQL text: few shapes recur on every step, so each is prepared once. */
  private readonly workflowUpdates = new Map<string, Database.Statement>();
  /** Built once: wrapping a function in a transaction per commit costs as much as a statement. */
  private readonly durability: 'normal' | 'full';
  private readonly commitTransaction: Database.Transaction<(commit: Commit, now: number) => void>;
  private readonly audit: SqliteAuditLog;
  private readonly grants: SqliteGrants;
  private readonly approvals: SqliteApprovals;

  constructor(options: SqliteStoreOptions) {
    this.path = options.path === ':memory:' ? ':memory:' : resolve(options.path);
    this.clock = options.clock ?? systemClock;
    this.db = openDatabase(this.path, options.busyTimeoutMs ?? 10_000);
    try {
      // Migrate first: it reads the file before anything else does, so a file that is not a
      // database is reported as STORE_CORRUPT rather than as a raw SQLite error.
      migrate(this.db, this.path);
      this.durability = options.durability === 'full' ? 'full' : 'normal';
      this.db.pragma(`synchronous = ${this.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.statements = prepareStatements(this.db);
    this.audit = new SqliteAuditLog(this.db);
    this.grants = new SqliteGrants(this.db, this.audit);
    this.approvals = new SqliteApprovals(this.db);
    this.commitTransaction = this.db.transaction((commit: Commit, now: number) => this.writeCommit(commit, now));
  }

  // Every transaction that appends audit entries is IMMEDIATE: it takes the write lock before
  // reading the chain's head, so no other writer can extend the same head meanwhile.

  async createWorkflow(workflow: NewWorkflow, journal: NewJournalEntry[], audit?: NewAuditEntry[]): Promise<WorkflowRecord> {
    const now = this.clock.now();
    this.db.transaction(() => {
      this.statements.insertWorkflow.run({
        id: workflow.id,
        agent: workflow.agent,
        agent_version: workflow.agentVersion,
        agent_module: workflow.agentModule,
        principal: JSON.stringify(workflow.principal),
        input: JSON.stringify(workflow.input ?? null),
        state: workflow.state,
        now,
      });
      this.insertJournal(workflow.id, journal, now);
      this.audit.append(audit, now);
    }).immediate();
    return (await this.getWorkflow(workflow.id))!;
  }

  async getWorkflow(id: string): Promise<WorkflowRecord | undefined> {
    const row = this.statements.getWorkflow.get(id) as Row | undefined;
    return row ? toWorkflow(row) : undefined;
  }

  async listWorkflows(options: ListOptions = {}): Promise<WorkflowRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.status) {
      where.push('status = ?');
      params.push(options.status);
    }
    if (options.agent) {
      where.push('agent = ?');
      params.push(options.agent);
    }
    if (options.waitingFor) {
      where.push('waiting_for = ?');
      params.push(options.waitingFor);
    }
    const sql = `SELECT * FROM workflows ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at, id LIMIT ?`;
    params.push(options.limit ?? 1000);
    return (this.db.prepare(sql).all(...params) as Row[]).map(toWorkflow);
  }

  async countByStatus(): Promise<Record<WorkflowStatus, number>> {
    const counts = { pending: 0, running: 0, waiting: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const row of this.db.prepare('SELECT status, count(*) AS n FROM workflows GROUP BY status').all() as Row[]) {
      counts[row.status as WorkflowStatus] = Number(row.n);
    }
    return counts;
  }

  async countWaiting(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const row of this.db.prepare(`SELECT waiting_for AS reason, count(*) AS n FROM workflows WHERE status = 'waiting' GROUP BY waiting_for`).all() as Row[]) {
      counts[String(row.reason ?? 'unknown')] = Number(row.n);
    }
    return counts;
  }

  async claim(options: ClaimOptions): Promise<Claim | undefined> {
    const now = this.clock.now();
    const claimOne = this.db.transaction((): Claim | undefined => {
      const candidates = (
        options.workflowId
          ? this.statements.claimableById.all({ now, id: options.workflowId })
          : this.statements.claimable.all({ now })
      ) as Row[];
      const row = candidates.find((candidate) => !options.agents || options.agents.includes(String(candidate.agent)));
      if (!row) return undefined;
      const recovered = row.status === 'running';
      this.statements.takeLease.run({
        id: row.id,
        owner: options.owner,
        expires: now + options.leaseMs,
        recoveries: Number(row.recoveries) + (recovered ? 1 : 0),
        now,
      });
      const workflow = toWorkflow(this.statements.getWorkflow.get(row.id) as Row);
      return { workflow, recovered };
    });
    return claimOne.immediate();
  }

  async renewLease(workflowId: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = this.clock.now();
    return this.statements.renewLease.run({ id: workflowId, owner, expires: now + leaseMs, now }).changes === 1;
  }

  async nextWakeAt(waitingFor: readonly string[]): Promise<number | undefined> {
    const row = this.statements.nextWakeAt.get(JSON.stringify(waitingFor)) as { wake: number | null };
    return row.wake ?? undefined;
  }

  async commit(commit: Commit): Promise<void> {
    if (commit.crashSafeOnly && this.durability === 'full') {
      // synchronous is per connection and may change between transactions: this one skips the fsync.
      this.db.pragma('synchronous = NORMAL');
      try {
        this.commitTransaction.immediate(commit, this.clock.now());
      } finally {
        this.db.pragma('synchronous = FULL');
      }
      return;
    }
    this.commitTransaction.immediate(commit, this.clock.now());
  }

  private writeCommit(commit: Commit, now: number): void {
    const patch = commit.workflow ?? {};
    const { sql, params } = patchSql(patch, now, commit.leaseMs);
    const changed = this.workflowUpdate(sql).run({ ...params, id: commit.workflowId, owner: commit.leaseOwner }).changes;
    if (changed !== 1) {
      throw new KeelError(
        'LEASE_LOST',
        `Workflow ${commit.workflowId} is no longer leased by worker ${commit.leaseOwner}: another worker took it over ` +
          `(this worker was too slow to renew its lease). This worker stops working on it; nothing was written.`,
        { workflowId: commit.workflowId },
      );
    }
    this.applyContext(commit.workflowId, commit.context ?? []);
    if (commit.approval && 'create' in commit.approval) this.approvals.insert(commit.approval.create, now);
    if (commit.approval && 'expire' in commit.approval) this.approvals.decide({ id: commit.approval.expire, status: 'expired', by: 'keel' }, now);
    if (commit.approval && 'escalate' in commit.approval) this.approvals.escalate(commit.approval.escalate);
    this.insertJournal(commit.workflowId, commit.journal, now);
    this.audit.append(commit.audit, now);
  }

  private workflowUpdate(setSql: string): Database.Statement {
    let statement = this.workflowUpdates.get(setSql);
    if (!statement) {
      statement = this.db.prepare(`UPDATE workflows SET ${setSql} WHERE id = @id AND lease_owner = @owner`);
      this.workflowUpdates.set(setSql, statement);
    }
    return statement;
  }

  async updateWorkflow(workflowId: string, patch: WorkflowPatch, journal: NewJournalEntry[], audit?: NewAuditEntry[]): Promise<WorkflowRecord> {
    const now = this.clock.now();
    this.db.transaction(() => {
      const { sql, params } = patchSql(patch, now, undefined);
      const changed = this.db
        .prepare(`UPDATE workflows SET ${sql} WHERE id = @id AND (lease_owner IS NULL OR lease_expires_at < @now)`)
        .run({ ...params, id: workflowId, now }).changes;
      if (changed !== 1) {
        const exists = this.statements.getWorkflow.get(workflowId);
        if (!exists) throw unknownWorkflow(workflowId);
        throw new KeelError(
          'WORKFLOW_NOT_RESUMABLE',
          `Workflow ${workflowId} is being run by a worker right now (its lease is live); wait for it to stop, or retry after the lease expires.`,
          { workflowId },
        );
      }
      this.insertJournal(workflowId, journal, now);
      this.audit.append(audit, now);
    }).immediate();
    return (await this.getWorkflow(workflowId))!;
  }

  async loadContext(workflowId: string): Promise<Record<string, unknown>> {
    const context: Record<string, unknown> = {};
    for (const row of this.statements.loadContext.all(workflowId) as Row[]) {
      const key = String(row.key);
      const value = JSON.parse(String(row.value));
      if (Number(row.item) < 0) context[key] = value;
      else ((context[key] ??= []) as unknown[]).push(value);
    }
    return context;
  }

  async readJournal(workflowId: string): Promise<JournalEntry[]> {
    return (this.statements.readJournal.all(workflowId) as Row[]).map(toJournalEntry);
  }

  async pruneFinished(before: number): Promise<PruneResult> {
    const now = this.clock.now();
    return this.db.transaction((): PruneResult => {
      const ids = (
        this.db
          .prepare(
            `SELECT id FROM workflows WHERE status IN ('completed', 'failed', 'cancelled') AND updated_at < ? AND pruned_at IS NULL`,
          )
          .all(before) as Row[]
      ).map((row) => String(row.id));
      let journalEntries = 0;
      let contextRows = 0;
      const deleteJournal = this.db.prepare('DELETE FROM journal WHERE workflow_id = ?');
      const deleteContext = this.db.prepare('DELETE FROM context WHERE workflow_id = ?');
      const markPruned = this.db.prepare('UPDATE workflows SET pruned_at = ? WHERE id = ?');
      for (const id of ids) {
        journalEntries += deleteJournal.run(id).changes;
        contextRows += deleteContext.run(id).changes;
        markPruned.run(now, id);
      }
      return { workflows: ids.length, journalEntries, contextRows };
    })();
  }

  async appendAudit(entries: NewAuditEntry[]): Promise<AuditEntry[]> {
    const now = this.clock.now();
    return this.db.transaction(() => this.audit.append(entries, now)).immediate().map(parsedEntry);
  }

  async readAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    return this.audit.read(query);
  }

  iterateAudit(range?: AuditRange): AsyncIterable<StoredAuditEntry> {
    return this.audit.iterate(range);
  }

  async auditHead(): Promise<AuditHead | undefined> {
    return this.audit.head();
  }

  async addGrant(grant: NewGrant): Promise<Grant> {
    return this.grants.add(grant, this.clock.now());
  }

  async revokeGrant(id: string, revocation: { by: string; reason?: string }): Promise<Grant> {
    return this.grants.revoke(id, revocation, this.clock.now());
  }

  async getGrant(id: string): Promise<Grant | undefined> {
    return this.grants.get(id);
  }

  async listGrants(query: GrantQuery = {}): Promise<Grant[]> {
    return this.grants.list(query);
  }

  async markGrantsUsed(ids: readonly string[], at: number): Promise<void> {
    this.grants.markUsed(ids, at);
  }

  async savePrincipal(principal: Principal, by: string): Promise<Principal> {
    return this.grants.savePrincipal(principal, by, this.clock.now());
  }

  async getPrincipal(id: string): Promise<Principal | undefined> {
    return this.grants.getPrincipal(id);
  }

  async listPrincipals(): Promise<Principal[]> {
    return this.grants.listPrincipals();
  }

  /** Rate budgets share this connection: their counters live in this file, in keel_rate_* tables. */
  rateLimiterBackend(): RateLimiterBackend {
    return { kind: 'sqlite', db: this.db };
  }

  async getApproval(id: string): Promise<ApprovalRequest | undefined> {
    return this.approvals.get(id);
  }

  async approvalForStep(workflowId: string, step: number): Promise<ApprovalRequest | undefined> {
    return this.approvals.forStep(workflowId, step);
  }

  async listApprovals(query: ApprovalQuery = {}): Promise<ApprovalRequest[]> {
    return this.approvals.list(query);
  }

  async decideApproval(decision: ApprovalDecisionRecord, journal: NewJournalEntry[], audit?: NewAuditEntry[]): Promise<ApprovalRequest> {
    const now = this.clock.now();
    return this.db
      .transaction(() => {
        const request = this.approvals.decide(decision, now);
        // Runnable again on any worker; a workflow not (or no longer) waiting for this request is left as it is.
        this.db
          .prepare(`UPDATE workflows SET status = 'pending', waiting_for = NULL, wake_at = NULL, failure = NULL, updated_at = @now WHERE id = @id AND status = 'waiting' AND waiting_for = 'approval'`)
          .run({ id: request.workflowId, now });
        this.insertJournal(request.workflowId, journal, now);
        this.audit.append(audit, now);
        return request;
      })
      .immediate();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private insertJournal(workflowId: string, entries: NewJournalEntry[], now: number): void {
    for (const entry of entries) {
      this.statements.insertJournal.run({
        workflow_id: workflowId,
        step: entry.step,
        kind: entry.kind,
        name: entry.name ?? null,
        status: entry.status ?? null,
        attempt: entry.attempt ?? null,
        duration_ms: entry.durationMs ?? null,
        tokens_in: entry.tokensIn ?? null,
        tokens_out: entry.tokensOut ?? null,
        data: entry.data === undefined ? null : JSON.stringify(entry.data),
        at: now,
      });
    }
  }

  private applyContext(workflowId: string, changes: ContextChange[]): void {
    for (const change of changes) {
      if (change.op === 'append') {
        this.statements.putContext.run(workflowId, change.key, change.index, JSON.stringify(change.value ?? null));
        continue;
      }
      this.statements.deleteContextKey.run(workflowId, change.key);
      if (change.op === 'set') {
        this.statements.putContext.run(workflowId, change.key, -1, JSON.stringify(change.value ?? null));
      }
    }
  }
}

function openDatabase(path: string, busyTimeoutMs: number): Database.Database {
  if (path !== ':memory:') {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (error) {
      throw storeUnavailable(path, error);
    }
  }
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: busyTimeoutMs });
  } catch (error) {
    throw storeUnavailable(path, error);
  }
  try {
    db.pragma('foreign_keys = ON');
    return db;
  } catch (error) {
    db.close();
    throw classifyOpenError(path, error);
  }
}

function migrate(db: Database.Database, path: string): void {
  let current: number;
  try {
    current = Number(db.pragma('user_version', { simple: true }));
  } catch (error) {
    throw classifyOpenError(path, error);
  }
  if (current > latestSchemaVersion) {
    throw new KeelError(
      'STORE_TOO_NEW',
      `The database ${path} was written by a newer Keel (schema version ${current}; this Keel knows up to ${latestSchemaVersion}). ` +
        `Upgrade Keel to open it, or point --db/KEEL_DB at another file. The file was not changed.`,
    );
  }
  if (current === 0) assertEmptyOrKeel(db, path);
  // Only now that the file is known to be ours: switching to WAL rewrites the file's header.
  try {
    db.pragma('journal_mode = WAL');
  } catch (error) {
    throw classifyOpenError(path, error);
  }
  for (const migration of sqliteMigrations) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
}

function assertEmptyOrKeel(db: Database.Database, path: string): void {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Row[];
  if (tables.length > 0) {
    throw new KeelError(
      'STORE_CORRUPT',
      `The file ${path} is an SQLite database that Keel did not create (it has tables ${tables
        .slice(0, 5)
        .map((table) => table.name)
        .join(', ')}). Point --db/KEEL_DB at a Keel database or a new file. The file was not changed.`,
    );
  }
}

function classifyOpenError(path: string, error: unknown): KeelError {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new KeelError(
      'STORE_CORRUPT',
      `The file ${path} is not a usable SQLite database (${code}). It may be corrupt or another kind of file. ` +
        `Point --db/KEEL_DB at a Keel database or a new file; restore this one from a backup if it held workflows. The file was not changed.`,
      { cause: error },
    );
  }
  return storeUnavailable(path, error);
}

function storeUnavailable(path: string, error: unknown): KeelError {
  const reason = error instanceof Error ? error.message : String(error);
  return new KeelError(
    'STORE_UNAVAILABLE',
    `Cannot open the database ${path}: ${reason}. Check that the folder exists and is writable, or choose another file with --db or KEEL_DB.`,
    { cause: error },
  );
}

function patchSql(patch: WorkflowPatch, now: number, leaseMs: number | undefined) {
  const sets = ['updated_at = @now'];
  const params: Record<string, unknown> = { now };
  const columns: [keyof WorkflowPatch, string, (value: unknown) => unknown][] = [
    ['status', 'status', (value) => value],
    ['agentVersion', 'agent_version', (value) => value],
    ['state', 'state', (value) => value],
    ['step', 'step', (value) => value],
    ['outcome', 'outcome', (value) => value],
    ['failure', 'failure', (value) => (value === null ? null : JSON.stringify(value))],
    ['waitingFor', 'waiting_for', (value) => value],
    ['wakeAt', 'wake_at', (value) => value],
    ['contextBytes', 'context_bytes', (value) => value],
    ['recoveries', 'recoveries', (value) => value],
  ];
  for (const [field, column, encode] of columns) {
    if (patch[field] === undefined) continue;
    sets.push(`${column} = @${column}`);
    params[column] = encode(patch[field]);
  }
  if (patch.releaseLease) {
    sets.push('lease_owner = NULL', 'lease_expires_at = NULL');
  } else if (leaseMs !== undefined) {
    sets.push('lease_expires_at = @lease_expires_at');
    params.lease_expires_at = now + leaseMs;
  }
  return { sql: sets.join(', '), params };
}

function prepareStatements(db: Database.Database) {
  // Runnable: new work, work whose timer is due, and running work whose worker died (lease expired).
  const runnable = `(
      (status = 'pending' AND (wake_at IS NULL OR wake_at <= @now))
      OR (status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= @now)
      OR (status = 'running' AND lease_expires_at < @now)
    ) AND (lease_owner IS NULL OR lease_expires_at < @now)`;
  return {
    insertWorkflow: db.prepare(
      `INSERT INTO workflows (id, agent, agent_version, agent_module, principal, input, status, state, created_at, updated_at)
       VALUES (@id, @agent, @agent_version, @agent_module, @principal, @input, 'pending', @state, @now, @now)`,
    ),
    getWorkflow: db.prepare('SELECT * FROM workflows WHERE id = ?'),
    // rowid breaks ties in submission order: workflows started in the same millisecond run first come, first served.
    claimable: db.prepare(`SELECT * FROM workflows WHERE ${runnable} ORDER BY coalesce(wake_at, created_at), rowid LIMIT 64`),
    claimableById: db.prepare(`SELECT * FROM workflows WHERE id = @id AND ${runnable}`),
    takeLease: db.prepare(
      // A waiting workflow whose timer came due goes on: the reason it waited is no longer its state.
      `UPDATE workflows SET status = 'running', lease_owner = @owner, lease_expires_at = @expires, wake_at = NULL,
         waiting_for = NULL, failure = CASE WHEN status = 'waiting' THEN NULL ELSE failure END, recoveries = @recoveries, updated_at = @now WHERE id = @id`,
    ),
    nextWakeAt: db.prepare(`SELECT min(wake_at) AS wake FROM workflows WHERE status = 'waiting' AND wake_at IS NOT NULL AND waiting_for IN (SELECT value FROM json_each(?))`),
    renewLease: db.prepare(
      'UPDATE workflows SET lease_expires_at = @expires, updated_at = @now WHERE id = @id AND lease_owner = @owner',
    ),
    insertJournal: db.prepare(
      `INSERT INTO journal (workflow_id, step, kind, name, status, attempt, duration_ms, tokens_in, tokens_out, data, at)
       VALUES (@workflow_id, @step, @kind, @name, @status, @attempt, @duration_ms, @tokens_in, @tokens_out, @data, @at)`,
    ),
    readJournal: db.prepare('SELECT * FROM journal WHERE workflow_id = ? ORDER BY seq'),
    loadContext: db.prepare('SELECT key, item, value FROM context WHERE workflow_id = ? ORDER BY key, item'),
    putContext: db.prepare('INSERT OR REPLACE INTO context (workflow_id, key, item, value) VALUES (?, ?, ?, ?)'),
    deleteContextKey: db.prepare('DELETE FROM context WHERE workflow_id = ? AND key = ?'),
  };
}

function parseJson(value: unknown): unknown {
  return value === null || value === undefined ? null : JSON.parse(String(value));
}

function toWorkflow(row: Row): WorkflowRecord {
  return {
    id: String(row.id),
    agent: String(row.agent),
    agentVersion: String(row.agent_version),
    agentModule: (row.agent_module as string | null) ?? null,
    principal: parseJson(row.principal) as WorkflowRecord['principal'],
    input: parseJson(row.input),
    status: row.status as WorkflowStatus,
    state: String(row.state),
    step: Number(row.step),
    waitingFor: (row.waiting_for as string | null) ?? null,
    outcome: (row.outcome as string | null) ?? null,
    failure: parseJson(row.failure) as WorkflowRecord['failure'],
    leaseOwner: (row.lease_owner as string | null) ?? null,
    leaseExpiresAt: row.lease_expires_at === null ? null : Number(row.lease_expires_at),
    wakeAt: row.wake_at === null ? null : Number(row.wake_at),
    recoveries: Number(row.recoveries),
    contextBytes: Number(row.context_bytes),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    prunedAt: row.pruned_at === null ? null : Number(row.pruned_at),
  };
}

function toJournalEntry(row: Row): JournalEntry {
  return {
    seq: Number(row.seq),
    workflowId: String(row.workflow_id),
    step: Number(row.step),
    kind: row.kind as JournalEntry['kind'],
    name: (row.name as string | null) ?? null,
    status: (row.status as string | null) ?? null,
    attempt: row.attempt === null ? null : Number(row.attempt),
    durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    tokensIn: row.tokens_in === null ? null : Number(row.tokens_in),
    tokensOut: row.tokens_out === null ? null : Number(row.tokens_out),
    data: parseJson(row.data),
    at: Number(row.at),
  };
}
