// The audit log in the SQLite store: entries are written in the same transaction as the change
// they record (and not at all when it fails), every write path and every connection to the file
// extends one chain, queries filter, iteration pages through large logs, pruning keeps the log,
// and a database of schema version 1 gains an empty log and keeps its workflows.

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewAuditEntry } from '../../audit/audit-entry.js';
import { verifyAuditChain } from '../../audit/verify.js';
import { ManualClock } from '../../util/clock.js';
import type { NewWorkflow } from '../types.js';
import { latestSchemaVersion, sqliteMigrations } from './migrations.js';
import { openSqliteStore, type SqliteStore } from './sqlite-store.js';

let directory: string;
let stores: SqliteStore[];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-audit-store-'));
  stores = [];
});

afterEach(async () => {
  await Promise.all(stores.map((store) => store.close()));
  rmSync(directory, { recursive: true, force: true });
});

function open(path = join(directory, 'keel.db'), clock = new ManualClock(1_767_225_600_000)): SqliteStore {
  const store = openSqliteStore({ path, clock });
  stores.push(store);
  return store;
}

function newWorkflow(id: string): NewWorkflow {
  return { id, agent: 'expenses', agentVersion: '1#abc', agentModule: null, principal: { id: 'alice' }, input: { amount: 10 }, state: 'start' };
}

const entry = (kind: string, fields: Partial<NewAuditEntry> = {}): NewAuditEntry => ({ kind, actor: 'alice', ...fields });

async function all(store: SqliteStore) {
  const entries = [];
  for await (const stored of store.iterateAudit()) entries.push(stored);
  return entries;
}

describe('the SQLite audit log', () => {
  it('chains entries from every write path: create, commit, operator update and appendAudit', async () => {
    const store = open();
    await store.createWorkflow(newWorkflow('wf_1'), [], [entry('workflow.started', { workflowId: 'wf_1', step: 0 })]);
    await store.claim({ owner: 'w1', leaseMs: 1000 });
    await store.commit({ workflowId: 'wf_1', leaseOwner: 'w1', journal: [], audit: [entry('decision.made', { workflowId: 'wf_1', step: 0 }), entry('tool.called', { workflowId: 'wf_1', step: 0 })] });
    await store.commit({ workflowId: 'wf_1', leaseOwner: 'w1', journal: [], workflow: { status: 'waiting', waitingFor: 'review', releaseLease: true } });
    await store.updateWorkflow('wf_1', { status: 'cancelled' }, [], [entry('workflow.cancelled', { actor: 'operator', workflowId: 'wf_1' })]);
    const [grant] = await store.appendAudit([entry('grant.added', { actor: 'operator', subject: 'payments:write', data: { to: 'alice' } })]);

    expect(grant).toMatchObject({ seq: 5, kind: 'grant.added', data: { to: 'alice' }, at: 1_767_225_600_000 });
    const stored = await all(store);
    expect(stored.map((row) => [row.seq, row.kind])).toEqual([
      [1, 'workflow.started'],
      [2, 'decision.made'],
      [3, 'tool.called'],
      [4, 'workflow.cancelled'],
      [5, 'grant.added'],
    ]);
    expect(await verifyAuditChain(stored)).toEqual({ ok: true, count: 5, last: { seq: 5, hash: grant!.hash } });
    expect(await store.auditHead()).toEqual({ seq: 5, hash: grant!.hash });
  });

  it('writes nothing to the log when the commit it belongs to fails', async () => {
    const store = open();
    await store.createWorkflow(newWorkflow('wf_1'), []);
    await store.claim({ owner: 'w1', leaseMs: 1000 });
    await expect(store.commit({ workflowId: 'wf_1', leaseOwner: 'someone-else', journal: [], audit: [entry('tool.called')] })).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await expect(store.updateWorkflow('wf_1', { status: 'cancelled' }, [], [entry('workflow.cancelled')])).rejects.toMatchObject({ code: 'WORKFLOW_NOT_RESUMABLE' });
    expect(await all(store)).toEqual([]);
    expect(await store.auditHead()).toBeUndefined();
  });

  it('keeps one chain when two connections to the file write in turn', async () => {
    const path = join(directory, 'shared.db');
    const [first, second] = [open(path), open(path)];
    for (let round = 0; round < 5; round++) {
      await first.appendAudit([entry('grant.added', { data: { round, by: 'first' } })]);
      await second.appendAudit([entry('grant.revoked', { data: { round, by: 'second' } }), entry('grant.added', { data: { round } })]);
    }
    const stored = await all(first);
    expect(stored).toHaveLength(15);
    expect(await verifyAuditChain(stored)).toMatchObject({ ok: true, count: 15 });
  });

  it('filters queries by workflow, actor and time, oldest first, from a cursor, up to a limit', async () => {
    const clock = new ManualClock(1_000);
    const store = open(join(directory, 'query.db'), clock);
    await store.appendAudit([entry('tool.called', { workflowId: 'wf_1' }), entry('tool.called', { workflowId: 'wf_2', actor: 'bob' })]);
    clock.advance(1_000);
    await store.appendAudit([entry('tool.failed', { workflowId: 'wf_1' }), entry('grant.added', { actor: 'operator' })]);

    const seqs = async (query: Parameters<SqliteStore['readAudit']>[0]) => (await store.readAudit(query)).map((row) => row.seq);
    expect(await seqs({ workflowId: 'wf_1' })).toEqual([1, 3]);
    expect(await seqs({ actor: 'bob' })).toEqual([2]);
    expect(await seqs({ since: 2_000 })).toEqual([3, 4]);
    expect(await seqs({ until: 2_000 })).toEqual([1, 2]);
    expect(await seqs({ afterSeq: 1, limit: 2 })).toEqual([2, 3]);
    expect(await seqs({ actor: 'alice', since: 2_000 })).toEqual([3]);
  });

  it('iterates a log larger than a page, in order, and a range of it', async () => {
    const store = open();
    const batch = Array.from({ length: 3000 }, (_, index) => entry('tool.called', { step: index }));
    for (let round = 0; round < 4; round++) await store.appendAudit(batch);
    const stored = await all(store);
    expect(stored).toHaveLength(12_000);
    expect(stored.every((row, index) => row.seq === index + 1)).toBe(true);
    expect(await verifyAuditChain(stored)).toMatchObject({ ok: true, count: 12_000 });
    const range = [];
    for await (const row of store.iterateAudit({ fromSeq: 4_999, toSeq: 5_002 })) range.push(row.seq);
    expect(range).toEqual([4_999, 5_000, 5_001, 5_002]);
  });

  it('keeps the audit log when pruning finished workflows', async () => {
    const clock = new ManualClock(1_000);
    const store = open(join(directory, 'prune.db'), clock);
    await store.createWorkflow(newWorkflow('wf_1'), [{ step: 0, kind: 'workflow-started' }], [entry('workflow.started', { workflowId: 'wf_1' })]);
    await store.claim({ owner: 'w1', leaseMs: 1000 });
    await store.commit({ workflowId: 'wf_1', leaseOwner: 'w1', journal: [{ step: 0, kind: 'workflow-completed' }], workflow: { status: 'completed', releaseLease: true }, audit: [entry('workflow.completed', { workflowId: 'wf_1' })] });
    clock.advance(10_000);
    expect(await store.pruneFinished(clock.now())).toMatchObject({ workflows: 1, journalEntries: 2 });
    expect(await store.readJournal('wf_1')).toEqual([]);
    expect((await store.readAudit({ workflowId: 'wf_1' })).map((row) => row.kind)).toEqual(['workflow.started', 'workflow.completed']);
    expect(await verifyAuditChain(store.iterateAudit())).toMatchObject({ ok: true, count: 2 });
  });

  it('migrates a schema version 1 database: its workflows stay, its audit log starts empty', async () => {
    const path = join(directory, 'version-1.db');
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(sqliteMigrations[0]!.sql);
    old.pragma('user_version = 1');
    old.prepare(
      `INSERT INTO workflows (id, agent, agent_version, principal, input, status, state, created_at, updated_at)
       VALUES ('wf_old', 'expenses', '1#abc', '{"id":"alice"}', '{"amount":5}', 'completed', 'done', 1, 1)`,
    ).run();
    old.close();

    const store = open(path);
    expect(store.db.pragma('user_version', { simple: true })).toBe(latestSchemaVersion);
    expect(await store.getWorkflow('wf_old')).toMatchObject({ status: 'completed', input: { amount: 5 } });
    expect(await verifyAuditChain(store.iterateAudit())).toEqual({ ok: true, count: 0 });
    await store.appendAudit([entry('grant.added')]);
    expect(await store.auditHead()).toMatchObject({ seq: 1 });
  });
});
