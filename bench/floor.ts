// The floor: the rows Keel writes per step, written with better-sqlite3 directly and nothing else
// (no model call, no validation, no events). It is the least a durable step can cost with Keel's
// schema and durability, so Keel's distance from it is Keel's own overhead.
//
// Per step Keel commits two transactions (see src/agent/workflow-run.ts and
// src/store/sqlite/sqlite-store.ts), and the floor reproduces both with the same statements:
//   1. the decided action, before its tool runs: the workflows row's lease and updated_at, and an
//      'action-decided' journal row carrying the decision record;
//   2. the tool's result: the workflows row (step, state, context size, lease) and a
//      'tool-call-completed' journal row, plus 'state-changed' and 'workflow-completed' rows and
//      the completed status on the last step.
// Each journal row Keel audits also gets its hash-chained audit row (floor-audit.ts), in the same
// IMMEDIATE transaction. S1's tool changes no context, so Keel writes no context rows there and
// neither does the floor. The schema comes from Keel's own migrations; bench.test.ts checks that
// a Keel run and a floor run of the same length leave the same rows in every table.

import Database from 'better-sqlite3';
import { AuditKind } from '../src/audit/audit-entry.js';
import { JournalKind } from '../src/index.js';
import { sqliteMigrations } from '../src/store/sqlite/migrations.js';
import { FloorAuditChain, resultFingerprint } from './floor-audit.js';
import { BenchDurability, databaseBytes, loopAgentName, StepLog, synchronousName, workToolName, type StepSeries } from './workload.js';

export interface FloorLoopOptions {
  path: string;
  steps: number;
  durability: typeof BenchDurability.normal | typeof BenchDurability.full;
  /**
   * Diagnostic: work done before each step's writes and timed as its model time (the bench passes
   * Keel's model decision), so the floor's writes run under the same memory and garbage-collector
   * load as Keel's commits do.
   */
  beforeStep?: (step: number) => Promise<void>;
}

const workflowId = 'wf_floor';
const owner = 'floor-worker';
const principal = 'anonymous';
const leaseMs = 30_000;
/** Shaped like Keel's version ids (definition version # hash of the definition). */
const agentVersion = '1#f100f100f100';

export async function runFloorLoop(options: FloorLoopOptions): Promise<StepSeries> {
  const database = openFloorDatabase(options.path, options.durability);
  try {
    const statements = prepare(database);
    const audit = new FloorAuditChain(database, workflowId, principal);
    const log = new StepLog();
    log.start();
    database.transaction(() => {
      const now = Date.now();
      const started = { agentVersion, principal, state: 'working' };
      statements.insertWorkflow.run({ id: workflowId, agent: loopAgentName, agent_version: agentVersion, principal: JSON.stringify({ id: principal }), input: JSON.stringify({ steps: options.steps }), state: 'working', now });
      statements.insertJournal.run(journalRow(0, JournalKind.workflowStarted, loopAgentName, 'pending', started, now));
      audit.append([{ kind: AuditKind.workflowStarted, step: 0, subject: loopAgentName, outcome: 'pending', data: { agent: loopAgentName, ...started } }], now);
    }).immediate();
    statements.takeLease.run({ id: workflowId, owner, expires: Date.now() + leaseMs, now: Date.now() });

    const decide = database.transaction((step: number) => {
      const now = Date.now();
      const decision = decisionRecord(step);
      expectLeaseHeld(statements.touchLease.run({ id: workflowId, owner, now, lease_expires_at: now + leaseMs }).changes);
      statements.insertJournal.run({ ...journalRow(step, JournalKind.actionDecided, workToolName, 'model', { decision }, now), duration_ms: decision.durationMs, tokens_in: 180, tokens_out: 24 });
      const { tool, ...audited } = decision;
      audit.append([{ kind: AuditKind.decisionMade, step, subject: tool, outcome: 'decided', data: sortedKeys(audited) }], now);
    });
    const record = database.transaction((step: number) => {
      const now = Date.now();
      const args = { step };
      const result = { step, done: step + 1 >= options.steps };
      const durationMs = 0.05;
      const completed = { ...journalRow(step, JournalKind.toolCallCompleted, workToolName, 'ok', { args, result }, now), attempt: 1, duration_ms: durationMs };
      const called = { kind: AuditKind.toolCalled, step, subject: workToolName, outcome: 'ok', data: { args, attempt: 1, durationMs, result: resultFingerprint(JSON.stringify({ done: result.done, step })) } };
      if (!result.done) {
        expectLeaseHeld(statements.recordStep.run({ id: workflowId, owner, now, state: 'working', step: step + 1, context_bytes: 0, lease_expires_at: now + leaseMs }).changes);
        statements.insertJournal.run(completed);
        audit.append([called], now);
        return;
      }
      expectLeaseHeld(statements.recordLastStep.run({ id: workflowId, owner, now, status: 'completed', state: 'done', step: step + 1, outcome: 'done', context_bytes: 0 }).changes);
      statements.insertJournal.run(completed);
      statements.insertJournal.run(journalRow(step, JournalKind.stateChanged, 'done', null, { from: 'working', to: 'done' }, now));
      statements.insertJournal.run(journalRow(step + 1, JournalKind.workflowCompleted, 'done', 'completed', { outcome: 'done' }, now));
      audit.append(
        [
          called,
          { kind: AuditKind.stateChanged, step, subject: 'done', outcome: null, data: { from: 'working', to: 'done' } },
          { kind: AuditKind.workflowCompleted, step: step + 1, subject: 'done', outcome: 'completed', data: { outcome: 'done' } },
        ],
        now,
      );
    });

    for (let step = 0; step < options.steps; step++) {
      if (options.beforeStep) {
        const deciding = performance.now();
        await options.beforeStep(step);
        log.addModel(performance.now() - deciding);
      }
      const started = performance.now();
      decide.immediate(step);
      record.immediate(step);
      log.addWrite(performance.now() - started);
      log.endStep();
    }
    const totalMs = log.elapsedMs();
    return log.series({ totalMs, databaseBytes: databaseBytes(options.path), synchronous: synchronousName(database) });
  } finally {
    database.close();
  }
}

/** Opens the file as Keel's store does: WAL, foreign keys, the chosen synchronous, Keel's migrations. */
function openFloorDatabase(path: string, durability: FloorLoopOptions['durability']): Database.Database {
  const database = new Database(path);
  database.pragma('journal_mode = WAL');
  database.pragma('foreign_keys = ON');
  database.pragma(`synchronous = ${durability === BenchDurability.full ? 'FULL' : 'NORMAL'}`);
  for (const migration of sqliteMigrations) {
    database.transaction(() => {
      database.exec(migration.sql);
      database.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
  return database;
}

// The statements the SQLite store runs for these commits, prepared once as the store prepares
// them (it caches its workflow updates by the columns they set).
function prepare(database: Database.Database) {
  return {
    insertWorkflow: database.prepare(
      `INSERT INTO workflows (id, agent, agent_version, agent_module, principal, input, status, state, created_at, updated_at)
       VALUES (@id, @agent, @agent_version, NULL, @principal, @input, 'pending', @state, @now, @now)`,
    ),
    takeLease: database.prepare(
      `UPDATE workflows SET status = 'running', lease_owner = @owner, lease_expires_at = @expires, wake_at = NULL,
         waiting_for = NULL, recoveries = 0, updated_at = @now WHERE id = @id`,
    ),
    touchLease: database.prepare('UPDATE workflows SET updated_at = @now, lease_expires_at = @lease_expires_at WHERE id = @id AND lease_owner = @owner'),
    recordStep: database.prepare(
      `UPDATE workflows SET updated_at = @now, state = @state, step = @step, context_bytes = @context_bytes, lease_expires_at = @lease_expires_at
       WHERE id = @id AND lease_owner = @owner`,
    ),
    recordLastStep: database.prepare(
      `UPDATE workflows SET updated_at = @now, status = @status, state = @state, step = @step, outcome = @outcome, context_bytes = @context_bytes,
         lease_owner = NULL, lease_expires_at = NULL WHERE id = @id AND lease_owner = @owner`,
    ),
    insertJournal: database.prepare(
      `INSERT INTO journal (workflow_id, step, kind, name, status, attempt, duration_ms, tokens_in, tokens_out, data, at)
       VALUES (@workflow_id, @step, @kind, @name, @status, @attempt, @duration_ms, @tokens_in, @tokens_out, @data, @at)`,
    ),
  };
}

function journalRow(step: number, kind: JournalKind, name: string | null, status: string | null, data: unknown, now: number) {
  return { workflow_id: workflowId, step, kind, name, status, attempt: null, duration_ms: null, tokens_in: null, tokens_out: null, data: JSON.stringify(data), at: now };
}

/** The decision record Keel journals for a scripted-model decision, field for field. */
function decisionRecord(step: number) {
  return {
    source: 'model',
    provider: 'keel.scripted',
    model: 'scripted',
    usage: { inputTokens: 180, outputTokens: 24, cacheReadTokens: 0, cacheWriteTokens: 0 },
    finishReason: 'tool-calls',
    durationMs: 0.2137,
    tool: workToolName,
    args: { step },
    reasoning: `Scripted step ${step}: ${workToolName}.`,
    confidence: 0.95,
  };
}

/** The object with its keys in sorted order, nested objects too, so JSON.stringify writes its canonical JSON. */
function sortedKeys<T extends object>(value: T): T {
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[key];
    sorted[key] = item !== null && typeof item === 'object' && !Array.isArray(item) ? sortedKeys(item) : item;
  }
  return sorted as T;
}

function expectLeaseHeld(changes: number): void {
  if (changes !== 1) throw new Error(`The floor's workflows row update changed ${changes} rows instead of 1; the floor would not match Keel's writes.`);
}
