// Grants and principals in the SQLite store: every change lands with its audit entry in one
// transaction (a refused change leaves neither), revoked grants stay for the review, and a
// database of schema version 2 gains the tables with its audit chain intact.

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../audit/verify.js';
import { ManualClock } from '../../util/clock.js';
import { addGrant, revokeGrant } from '../../security/grants.js';
import { latestSchemaVersion, sqliteMigrations } from './migrations.js';
import { openSqliteStore, type SqliteStore } from './sqlite-store.js';

let directory: string;
let clock: ManualClock;
let store: SqliteStore;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-grants-'));
  clock = new ManualClock(Date.UTC(2026, 5, 1));
  store = openSqliteStore({ path: join(directory, 'keel.db'), clock });
});

afterEach(async () => {
  await store.close();
  rmSync(directory, { recursive: true, force: true });
});

describe('grants', () => {
  it('stores a grant with its grant.added entry, and a revocation with its grant.revoked entry', async () => {
    const grant = await addGrant(store, { principalId: 'alice', permission: 'payments:write', taskTypes: ['expense-approval'], resources: ['payee:DE89*'], expiresAt: clock.now() + 3_600_000, by: 'ops' }, clock.now());
    clock.advance(1000);
    const revoked = await revokeGrant(store, grant.id, { by: 'security', reason: 'left the team' });

    expect(grant).toMatchObject({ principalId: 'alice', taskTypes: ['expense-approval'], resources: ['payee:DE89*'], createdBy: 'ops', createdAt: clock.now() - 1000, revokedAt: null });
    expect(revoked).toMatchObject({ id: grant.id, revokedAt: clock.now(), revokedBy: 'security' });
    expect(await store.getGrant(grant.id)).toEqual(revoked);
    const audit = await store.readAudit();
    expect(audit.map((entry) => [entry.kind, entry.actor, entry.subject, entry.outcome])).toEqual([
      ['grant.added', 'ops', grant.id, 'added'],
      ['grant.revoked', 'security', grant.id, 'revoked'],
    ]);
    expect(audit[0]!.data).toEqual({ principal: 'alice', permission: 'payments:write', taskTypes: ['expense-approval'], resources: ['payee:DE89*'], expiresAt: clock.now() + 3_599_000 });
    expect(audit[1]!.data).toEqual({ principal: 'alice', permission: 'payments:write', reason: 'left the team' });
    expect(await verifyAuditChain(store.iterateAudit())).toMatchObject({ ok: true, count: 2 });
  });

  it('refuses a second revocation, an unknown grant and an invalid grant, and audits none of them', async () => {
    const grant = await addGrant(store, { principalId: 'alice', permission: 'claims:read', by: 'ops' }, clock.now());
    await revokeGrant(store, grant.id, { by: 'ops' });

    await expect(revokeGrant(store, grant.id, { by: 'ops' })).rejects.toThrow(`Grant ${grant.id} was already revoked by ops`);
    await expect(revokeGrant(store, 'gr_nope', { by: 'ops' })).rejects.toMatchObject({ code: 'UNKNOWN_GRANT' });
    await expect(addGrant(store, { principalId: 'alice', permission: 'payments:*', expiresAt: clock.now() - 1, by: '' }, clock.now())).rejects.toThrow(
      /'payments:\*' is not a permission name .*; who gives the grant is not said .*; it would expire at 2026-05-31T23:59:59.999Z, which is not in the future/,
    );
    await expect(store.addGrant({ id: grant.id, principalId: 'bob', permission: 'claims:read', createdBy: 'ops' })).rejects.toThrow(`A grant with id '${grant.id}' already exists`);
    expect((await store.readAudit()).map((entry) => entry.kind)).toEqual(['grant.added', 'grant.revoked']);
  });

  it('lists grants by principal and permission, without revoked ones unless asked, and notes their use', async () => {
    const read = await addGrant(store, { principalId: 'alice', permission: 'claims:read', by: 'ops' }, clock.now());
    const write = await addGrant(store, { principalId: 'alice', permission: 'payments:write', by: 'ops' }, clock.now());
    await addGrant(store, { principalId: 'bob', permission: 'claims:read', by: 'ops' }, clock.now());
    await revokeGrant(store, write.id, { by: 'ops' });

    expect((await store.listGrants({ principalId: 'alice' })).map((grant) => grant.id)).toEqual([read.id]);
    expect((await store.listGrants({ principalId: 'alice', includeRevoked: true })).map((grant) => grant.id)).toEqual([read.id, write.id]);
    expect(await store.listGrants({ permission: 'claims:read' })).toHaveLength(2);

    await store.markGrantsUsed([read.id], clock.now());
    clock.advance(30_000);
    await store.markGrantsUsed([read.id], clock.now());
    expect((await store.getGrant(read.id))!.lastUsedAt).toBe(clock.now() - 30_000);
    clock.advance(60_000);
    await store.markGrantsUsed([read.id], clock.now());
    expect((await store.getGrant(read.id))!.lastUsedAt).toBe(clock.now());
  });
});

describe('principals', () => {
  it('creates and replaces a principal record, auditing each change with what it was before', async () => {
    await store.savePrincipal({ id: 'alice', roles: ['clerk'], department: 'finance' }, 'hr');
    await store.savePrincipal({ id: 'alice', roles: ['clerk', 'approver'] }, 'hr');

    expect(await store.getPrincipal('alice')).toEqual({ id: 'alice', roles: ['clerk', 'approver'] });
    expect(await store.listPrincipals()).toHaveLength(1);
    const audit = await store.readAudit();
    expect(audit.map((entry) => [entry.kind, entry.outcome])).toEqual([
      ['principal.saved', 'added'],
      ['principal.saved', 'updated'],
    ]);
    expect(audit[1]!.data).toEqual({ roles: ['clerk', 'approver'], department: null, before: { roles: ['clerk'], department: 'finance' } });
  });
});

it('migrates a schema version 2 database: it gains the grant tables, audited on the same chain', async () => {
  const path = join(directory, 'version-2.db');
  const old = new Database(path);
  old.pragma('journal_mode = WAL');
  for (const migration of sqliteMigrations.slice(0, 2)) old.exec(migration.sql);
  old.pragma('user_version = 2');
  old.close();

  const migrated = openSqliteStore({ path, clock });
  try {
    expect(migrated.db.pragma('user_version', { simple: true })).toBe(latestSchemaVersion);
    await addGrant(migrated, { principalId: 'alice', permission: 'claims:read', by: 'ops' }, clock.now());
    expect(await verifyAuditChain(migrated.iterateAudit())).toMatchObject({ ok: true, count: 1 });
  } finally {
    await migrated.close();
  }
});
