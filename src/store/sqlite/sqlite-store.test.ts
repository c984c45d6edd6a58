// The embedded SQLite store: schema migrations, refusing files it must not touch (and leaving
// them byte for byte as they were), claims and leases, atomic commits, per-key context, pruning.

import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeelError } from '../../errors.js';
import { ManualClock } from '../../util/clock.js';
import type { NewWorkflow } from '../types.js';
import { latestSchemaVersion, sqliteMigrations } from './migrations.js';
import { openSqliteStore, type SqliteStore } from './sqlite-store.js';

let directory: string;
let stores: SqliteStore[];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-store-'));
  stores = [];
});

afterEach(async () => {
  await Promise.all(stores.map((store) => store.close()));
  rmSync(directory, { recursive: true, force: true });
});

function open(path: string, clock = new ManualClock()): SqliteStore {
  const store = openSqliteStore({ path, clock });
  stores.push(store);
  return store;
}

function newWorkflow(id: string, fields: Partial<NewWorkflow> = {}): NewWorkflow {
  return { id, agent: 'expenses', agentVersion: '1#abc', agentModule: null, principal: { id: 'alice' }, input: { amount: 10 }, state: 'start', ...fields };
}

/** Opening must fail with `code` and leave the file, and the folder around it, exactly as they were. */
function expectRefusedUnchanged(path: string, code: string): KeelError {
  const bytes = readFileSync(path);
  const files = readdirSync(directory).sort();
  let thrown: unknown;
  try {
    open(path);
  } catch (error) {
    thrown = error;
  }
  expect(KeelError.isInstance(thrown)).toBe(true);
  const error = thrown as KeelError;
  expect(error.code).toBe(code);
  expect(error.message).toContain(path);
  expect(readFileSync(path).equals(bytes)).toBe(true);
  expect(readdirSync(directory).sort()).toEqual(files);
  return error;
}

describe('opening and migrations', () => {
  it('migrates a new file to the latest schema version and does not migrate it twice', async () => {
    const path = join(directory, 'nested', 'keel.db');
    const store = open(path);
    expect(store.db.pragma('user_version', { simple: true })).toBe(latestSchemaVersion);
    expect(latestSchemaVersion).toBe(sqliteMigrations.length);
    expect(sqliteMigrations.map((migration) => migration.name)).toEqual(['0001_workflows', '0002_audit', '0003_grants', '0004_approvals']);
    await store.createWorkflow(newWorkflow('wf_1'), []);
    await store.close();

    const reopened = open(path);
    expect(reopened.db.pragma('user_version', { simple: true })).toBe(latestSchemaVersion);
    expect(reopened.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect((await reopened.getWorkflow('wf_1'))?.input).toEqual({ amount: 10 });
  });

  it('refuses a database written by a newer Keel with STORE_TOO_NEW and leaves it unchanged', () => {
    const path = join(directory, 'newer.db');
    const newer = new Database(path);
    newer.exec('CREATE TABLE workflows (id TEXT PRIMARY KEY, shape_of_the_future TEXT)');
    newer.pragma(`user_version = ${latestSchemaVersion + 1}`);
    newer.close();
    const error = expectRefusedUnchanged(path, 'STORE_TOO_NEW');
    expect(error.message).toContain(`schema version ${latestSchemaVersion + 1}`);
    expect(error.message).toContain('Upgrade Keel');
  });

  it('refuses a file that is not SQLite with STORE_CORRUPT and leaves it unchanged', () => {
    const path = join(directory, 'notes.db');
    writeFileSync(path, 'These are my notes, not a database. '.repeat(200));
    const error = expectRefusedUnchanged(path, 'STORE_CORRUPT');
    expect(error.message).toContain('not a usable SQLite database');
  });

  it('refuses an SQLite database with foreign tables and leaves it unchanged', () => {
    const path = join(directory, 'crm.db');
    const crm = new Database(path);
    crm.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('Ada')");
    crm.close();
    const error = expectRefusedUnchanged(path, 'STORE_CORRUPT');
    expect(error.message).toContain('customers');
  });

  it('reports an unusable path as STORE_UNAVAILABLE with the path and what to do', () => {
    const file = join(directory, 'plain-file');
    writeFileSync(file, 'x');
    const path = join(file, 'keel.db');
    expect(() => open(path)).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining(path) }));
    expect(() => open(path)).toThrow(/--db or KEEL_DB/);
  });
});

describe('workflows, claims and leases', () => {
  let clock: ManualClock;
  let store: SqliteStore;

  beforeEach(() => {
    clock = new ManualClock();
    store = open(':memory:', clock);
  });

  it('creates a workflow with its first journal entries and lists and counts it', async () => {
    const created = await store.createWorkflow(newWorkflow('wf_1'), [{ step: 0, kind: 'workflow-started', name: 'expenses', data: { note: 'hi' } }]);
    expect(created).toMatchObject({ id: 'wf_1', status: 'pending', state: 'start', step: 0, principal: { id: 'alice' }, leaseOwner: null, recoveries: 0, prunedAt: null });
    expect(created.createdAt).toBe(clock.now());
    const journal = await store.readJournal('wf_1');
    expect(journal).toMatchObject([{ workflowId: 'wf_1', step: 0, kind: 'workflow-started', name: 'expenses', data: { note: 'hi' }, attempt: null }]);
    expect((await store.listWorkflows({ status: 'pending' })).map((workflow) => workflow.id)).toEqual(['wf_1']);
    expect(await store.listWorkflows({ agent: 'someone-else' })).toEqual([]);
    expect(await store.countByStatus()).toEqual({ pending: 1, running: 0, waiting: 0, completed: 0, failed: 0, cancelled: 0 });
    await store.createWorkflow(newWorkflow('wf_2'), []);
    await store.createWorkflow(newWorkflow('wf_3'), []);
    await store.updateWorkflow('wf_2', { status: 'waiting', waitingFor: 'handoff' }, []);
    await store.updateWorkflow('wf_3', { status: 'waiting', waitingFor: 'approval' }, []);
    expect((await store.listWorkflows({ status: 'waiting', waitingFor: 'handoff' })).map((workflow) => workflow.id)).toEqual(['wf_2']);
    expect(await store.countWaiting()).toEqual({ handoff: 1, approval: 1 });
    expect(await store.getWorkflow('wf_missing')).toBeUndefined();
  });

  it('claims the oldest runnable workflow first, skipping leased, future and finished ones', async () => {
    await store.createWorkflow(newWorkflow('wf_b'), []);
    clock.advance(10);
    await store.createWorkflow(newWorkflow('wf_a'), []);
    clock.advance(10);
    await store.createWorkflow(newWorkflow('wf_c', { agent: 'other' }), []);

    const first = await store.claim({ owner: 'w1', leaseMs: 1000 });
    expect(first).toMatchObject({ recovered: false, workflow: { id: 'wf_b', status: 'running', leaseOwner: 'w1', leaseExpiresAt: clock.now() + 1000 } });
    expect((await store.claim({ owner: 'w1', leaseMs: 1000, agents: ['other'] }))?.workflow.id).toBe('wf_c');
    expect((await store.claim({ owner: 'w2', leaseMs: 1000 }))?.workflow.id).toBe('wf_a');
    expect(await store.claim({ owner: 'w3', leaseMs: 1000 })).toBeUndefined();
    expect(await store.claim({ owner: 'w3', leaseMs: 1000, workflowId: 'wf_b' })).toBeUndefined();
  });

  it('claims workflows started in the same millisecond in the order they were started', async () => {
    for (const id of ['wf_z', 'wf_m', 'wf_a']) await store.createWorkflow(newWorkflow(id), []);
    const claimed = [];
    for (let index = 0; index < 3; index++) claimed.push((await store.claim({ owner: 'w1', leaseMs: 1000 }))?.workflow.id);
    expect(claimed).toEqual(['wf_z', 'wf_m', 'wf_a']);
  });

  it('wakes a waiting workflow when its timer is due', async () => {
    await store.createWorkflow(newWorkflow('wf_timer'), []);
    await store.claim({ owner: 'w1', leaseMs: 1000 });
    await store.commit({ workflowId: 'wf_timer', leaseOwner: 'w1', journal: [], workflow: { status: 'waiting', waitingFor: 'timer', wakeAt: clock.now() + 500, releaseLease: true } });
    expect(await store.claim({ owner: 'w2', leaseMs: 1000 })).toBeUndefined();
    clock.advance(500);
    const woken = await store.claim({ owner: 'w2', leaseMs: 1000 });
    expect(woken).toMatchObject({ recovered: false, workflow: { id: 'wf_timer', status: 'running', waitingFor: null, wakeAt: null } });
  });

  it('hands a running workflow whose lease expired to another worker as a recovery', async () => {
    await store.createWorkflow(newWorkflow('wf_1'), []);
    await store.claim({ owner: 'dead', leaseMs: 1000 });
    clock.advance(1000);
    expect(await store.claim({ owner: 'alive', leaseMs: 1000 })).toBeUndefined();
    clock.advance(1);
    const claim = await store.claim({ owner: 'alive', leaseMs: 1000 });
    expect(claim).toMatchObject({ recovered: true, workflow: { id: 'wf_1', leaseOwner: 'alive', recoveries: 1 } });
    expect(await store.renewLease('wf_1', 'dead', 1000)).toBe(false);
    expect(await store.renewLease('wf_1', 'alive', 5000)).toBe(true);
    expect((await store.getWorkflow('wf_1'))?.leaseExpiresAt).toBe(clock.now() + 5000);
  });

  it('refuses a commit from a worker that lost its lease and writes nothing', async () => {
    await store.createWorkflow(newWorkflow('wf_1'), []);
    await store.claim({ owner: 'slow', leaseMs: 1000 });
    clock.advance(1001);
    await store.claim({ owner: 'fast', leaseMs: 1000 });
    const before = await store.getWorkflow('wf_1');

    const late = store.commit({
      workflowId: 'wf_1',
      leaseOwner: 'slow',
      journal: [{ step: 0, kind: 'tool-call-completed', name: 'pay' }],
      context: [{ op: 'set', key: 'paid', value: true }],
      workflow: { step: 1, state: 'paid' },
    });
    await expect(late).rejects.toMatchObject({ code: 'LEASE_LOST', workflowId: 'wf_1', message: expect.stringContaining('nothing was written') });
    expect(await store.getWorkflow('wf_1')).toEqual(before);
    expect(await store.readJournal('wf_1')).toEqual([]);
    expect(await store.loadContext('wf_1')).toEqual({});
  });

  it('commits journal, context and workflow changes together and can release the lease', async () => {
    await store.createWorkflow(newWorkflow('wf_1'), []);
    await store.claim({ owner: 'w1', leaseMs: 1000 });
    clock.advance(100);
    await store.commit({
      workflowId: 'wf_1',
      leaseOwner: 'w1',
      leaseMs: 1000,
      journal: [{ step: 0, kind: 'tool-call-completed', name: 'lookup', status: 'ok', attempt: 1, durationMs: 2.5, data: { result: 1 } }],
      context: [{ op: 'set', key: 'found', value: 1 }],
      workflow: { step: 1, state: 'next', contextBytes: 1 },
    });
    expect(await store.getWorkflow('wf_1')).toMatchObject({ step: 1, state: 'next', contextBytes: 1, leaseOwner: 'w1', leaseExpiresAt: clock.now() + 1000 });
    expect(await store.readJournal('wf_1')).toMatchObject([{ kind: 'tool-call-completed', attempt: 1, durationMs: 2.5, at: clock.now() }]);
    await store.commit({ workflowId: 'wf_1', leaseOwner: 'w1', journal: [], workflow: { status: 'completed', outcome: 'done', releaseLease: true } });
    expect(await store.getWorkflow('wf_1')).toMatchObject({ status: 'completed', outcome: 'done', leaseOwner: null, leaseExpiresAt: null });
  });

  it('refuses operator updates while a worker holds a live lease, and names unknown workflows', async () => {
    await store.createWorkflow(newWorkflow('wf_1'), []);
    await store.claim({ owner: 'w1', leaseMs: 1000 });
    await expect(store.updateWorkflow('wf_1', { status: 'cancelled' }, [])).rejects.toMatchObject({ code: 'WORKFLOW_NOT_RESUMABLE' });
    await expect(store.updateWorkflow('wf_nope', { status: 'cancelled' }, [])).rejects.toMatchObject({ code: 'UNKNOWN_WORKFLOW', message: expect.stringContaining('wf_nope') });
    clock.advance(1001);
    const cancelled = await store.updateWorkflow('wf_1', { status: 'cancelled' }, [{ step: 0, kind: 'workflow-cancelled' }]);
    expect(cancelled.status).toBe('cancelled');
    expect((await store.readJournal('wf_1')).map((entry) => entry.kind)).toEqual(['workflow-cancelled']);
  });
});

describe('durability', () => {
  it('writes a crash-safe-only commit without the fsync under full durability, then goes back to FULL', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'keel-durability-'));
    const store = openSqliteStore({ path: join(folder, 'keel.db'), durability: 'full' });
    try {
      await store.createWorkflow(newWorkflow('wf_d'), []);
      const claim = await store.claim({ owner: 'w1', leaseMs: 1000 });
      const commit = { workflowId: 'wf_d', leaseOwner: claim!.workflow.leaseOwner!, journal: [{ step: 0, kind: 'action-decided' as const, name: 'look' }] };
      const pragmas: string[] = [];
      const pragma = store.db.pragma.bind(store.db);
      store.db.pragma = ((source: string, options?: Database.PragmaOptions) => {
        pragmas.push(source);
        return pragma(source, options);
      }) as typeof store.db.pragma;

      await store.commit({ ...commit, crashSafeOnly: true });
      expect(pragmas).toEqual(['synchronous = NORMAL', 'synchronous = FULL']);
      await store.commit(commit);
      expect(pragmas).toHaveLength(2);
      expect(pragma('synchronous', { simple: true })).toBe(2);
      expect((await store.readJournal('wf_d')).filter((entry) => entry.kind === 'action-decided')).toHaveLength(2);
    } finally {
      await store.close();
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('context', () => {
  it('round-trips values per key and lists per item, and replaces or deletes them', async () => {
    const store = open(':memory:');
    await store.createWorkflow(newWorkflow('wf_1'), []);
    await store.claim({ owner: 'w1', leaseMs: 1000 });
    const commitContext = (context: Parameters<SqliteStore['commit']>[0]['context']) => store.commit({ workflowId: 'wf_1', leaseOwner: 'w1', journal: [], context });

    await commitContext([
      { op: 'set', key: 'claim', value: { amount: 12.5, tags: ['travel'], approved: null } },
      { op: 'set', key: 'count', value: 0 },
      { op: 'set', key: 'unset', value: undefined },
      { op: 'append', key: 'notes', index: 0, value: 'first' },
      { op: 'append', key: 'notes', index: 1, value: { by: 'bob' } },
    ]);
    expect(await store.loadContext('wf_1')).toEqual({ claim: { amount: 12.5, tags: ['travel'], approved: null }, count: 0, unset: null, notes: ['first', { by: 'bob' }] });
    const rows = store.db.prepare("SELECT key, item FROM context WHERE key = 'notes' ORDER BY item").all();
    expect(rows).toEqual([{ key: 'notes', item: 0 }, { key: 'notes', item: 1 }]);

    await commitContext([{ op: 'append', key: 'notes', index: 2, value: 'third' }, { op: 'delete', key: 'count' }]);
    expect(await store.loadContext('wf_1')).toMatchObject({ notes: ['first', { by: 'bob' }, 'third'] });
    expect(await store.loadContext('wf_1')).not.toHaveProperty('count');

    await commitContext([{ op: 'set', key: 'notes', value: ['fresh'] }, { op: 'append', key: 'notes', index: 1, value: 'more' }]);
    expect((await store.loadContext('wf_1')).notes).toEqual(['fresh', 'more']);
  });
});

describe('pruneFinished', () => {
  it('deletes journal and context of old finished workflows only and keeps their records', async () => {
    const clock = new ManualClock();
    const store = open(':memory:', clock);
    const finishAs = async (id: string, status: 'completed' | 'failed' | 'cancelled' | 'running') => {
      await store.createWorkflow(newWorkflow(id), [{ step: 0, kind: 'workflow-started' }]);
      await store.claim({ owner: 'w1', leaseMs: 60_000, workflowId: id });
      await store.commit({
        workflowId: id,
        leaseOwner: 'w1',
        journal: [{ step: 0, kind: 'tool-call-completed', name: 'lookup' }],
        context: [{ op: 'set', key: 'a', value: 1 }, { op: 'append', key: 'list', index: 0, value: 'x' }],
        workflow: status === 'running' ? {} : { status, releaseLease: true },
      });
    };
    await finishAs('wf_done', 'completed');
    await finishAs('wf_failed', 'failed');
    await finishAs('wf_cancelled', 'cancelled');
    await finishAs('wf_running', 'running');
    clock.advance(1000);
    const cutoff = clock.now();
    await finishAs('wf_recent', 'completed');

    const result = await store.pruneFinished(cutoff);
    expect(result).toEqual({ workflows: 3, journalEntries: 6, contextRows: 6 });
    for (const id of ['wf_done', 'wf_failed', 'wf_cancelled']) {
      expect(await store.readJournal(id)).toEqual([]);
      expect(await store.loadContext(id)).toEqual({});
      expect((await store.getWorkflow(id))?.prunedAt).toBe(clock.now());
    }
    expect((await store.getWorkflow('wf_done'))?.status).toBe('completed');
    for (const id of ['wf_running', 'wf_recent']) {
      expect(await store.readJournal(id)).toHaveLength(2);
      expect(await store.loadContext(id)).toEqual({ a: 1, list: ['x'] });
      expect((await store.getWorkflow(id))?.prunedAt).toBeNull();
    }
    expect(await store.pruneFinished(cutoff)).toEqual({ workflows: 0, journalEntries: 0, contextRows: 0 });
  });
});
