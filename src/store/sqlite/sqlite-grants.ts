// Grants and principals in the SQLite store (migration 0003_grants). Every change appends its
// audit entry to the one chain inside the same IMMEDIATE transaction, as workflow changes do.

import type Database from 'better-sqlite3';
import { KeelError } from '../../errors.js';
import { grantAddedAudit, grantRevokedAudit, principalSavedAudit } from '../security-audit.js';
import type { Grant, GrantQuery, NewGrant, Principal } from '../types.js';
import type { SqliteAuditLog } from './sqlite-audit.js';

type Row = Record<string, unknown>;

export class SqliteGrants {
  private readonly statements;

  constructor(
    private readonly db: Database.Database,
    private readonly audit: SqliteAuditLog,
  ) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO grants (id, principal_id, permission, task_types, resources, expires_at, created_by, created_at)
         VALUES (@id, @principalId, @permission, @taskTypes, @resources, @expiresAt, @createdBy, @createdAt)`,
      ),
      get: db.prepare('SELECT * FROM grants WHERE id = ?'),
      revoke: db.prepare('UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL'),
      // Usage is noted at most once a minute per grant: the review counts days, and a busy grant
      // should not turn every call into a write.
      markUsed: db.prepare(
        `UPDATE grants SET last_used_at = @at WHERE id IN (SELECT value FROM json_each(@ids)) AND (last_used_at IS NULL OR last_used_at < @at - 60000)`,
      ),
      getPrincipal: db.prepare('SELECT * FROM principals WHERE id = ?'),
      putPrincipal: db.prepare(
        `INSERT INTO principals (id, roles, department, updated_by, updated_at) VALUES (@id, @roles, @department, @by, @now)
         ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, department = excluded.department, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
      ),
      listPrincipals: db.prepare('SELECT * FROM principals ORDER BY id'),
    };
  }

  add(grant: NewGrant, now: number): Grant {
    const stored: Grant = {
      id: grant.id,
      principalId: grant.principalId,
      permission: grant.permission,
      taskTypes: grant.taskTypes ?? null,
      resources: grant.resources ?? null,
      expiresAt: grant.expiresAt ?? null,
      createdBy: grant.createdBy,
      createdAt: now,
      revokedAt: null,
      revokedBy: null,
      lastUsedAt: null,
    };
    this.db
      .transaction(() => {
        if (this.statements.get.get(grant.id)) {
          throw new KeelError('BAD_INPUT', `A grant with id '${grant.id}' already exists; grant ids are never reused. Leave the id out to get a new one.`);
        }
        this.statements.insert.run({
          ...stored,
          taskTypes: stored.taskTypes === null ? null : JSON.stringify(stored.taskTypes),
          resources: stored.resources === null ? null : JSON.stringify(stored.resources),
        });
        this.audit.append([grantAddedAudit(stored)], now);
      })
      .immediate();
    return stored;
  }

  revoke(id: string, revocation: { by: string; reason?: string }, now: number): Grant {
    return this.db
      .transaction((): Grant => {
        const existing = this.get(id);
        if (!existing) throw unknownGrant(id);
        if (existing.revokedAt !== null) {
          throw new KeelError(
            'BAD_INPUT',
            `Grant ${id} was already revoked by ${existing.revokedBy} at ${new Date(existing.revokedAt).toISOString()}; nothing was changed. See \`keel grants list --all\`.`,
          );
        }
        this.statements.revoke.run(now, revocation.by, id);
        const revoked = { ...existing, revokedAt: now, revokedBy: revocation.by };
        this.audit.append([grantRevokedAudit(revoked, revocation.reason)], now);
        return revoked;
      })
      .immediate();
  }

  get(id: string): Grant | undefined {
    const row = this.statements.get.get(id) as Row | undefined;
    return row ? toGrant(row) : undefined;
  }

  list(query: GrantQuery): Grant[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.principalId !== undefined) {
      where.push('principal_id = ?');
      params.push(query.principalId);
    }
    if (query.permission !== undefined) {
      where.push('permission = ?');
      params.push(query.permission);
    }
    if (!query.includeRevoked) where.push('revoked_at IS NULL');
    const sql = `SELECT * FROM grants ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, rowid LIMIT ?`;
    params.push(query.limit ?? -1);
    return (this.db.prepare(sql).all(...params) as Row[]).map(toGrant);
  }

  markUsed(ids: readonly string[], at: number): void {
    if (ids.length > 0) this.statements.markUsed.run({ ids: JSON.stringify(ids), at });
  }

  savePrincipal(principal: Principal, by: string, now: number): Principal {
    const saved: Principal = { id: principal.id, roles: [...(principal.roles ?? [])], ...(principal.department ? { department: principal.department } : {}) };
    this.db
      .transaction(() => {
        const previous = this.getPrincipal(principal.id);
        this.statements.putPrincipal.run({ id: saved.id, roles: JSON.stringify(saved.roles), department: saved.department ?? null, by, now });
        this.audit.append([principalSavedAudit(saved, by, previous)], now);
      })
      .immediate();
    return saved;
  }

  getPrincipal(id: string): Principal | undefined {
    const row = this.statements.getPrincipal.get(id) as Row | undefined;
    return row ? toPrincipal(row) : undefined;
  }

  listPrincipals(): Principal[] {
    return (this.statements.listPrincipals.all() as Row[]).map(toPrincipal);
  }
}

export function unknownGrant(id: string): KeelError {
  return new KeelError('UNKNOWN_GRANT', `No grant with id '${id}' in this database. Run \`keel grants list --all\` to see the grants it holds (and check --db/KEEL_DB).`);
}

function toGrant(row: Row): Grant {
  return {
    id: String(row.id),
    principalId: String(row.principal_id),
    permission: String(row.permission),
    taskTypes: row.task_types === null ? null : (JSON.parse(String(row.task_types)) as string[]),
    resources: row.resources === null ? null : (JSON.parse(String(row.resources)) as string[]),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    createdBy: String(row.created_by),
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    revokedBy: (row.revoked_by as string | null) ?? null,
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
  };
}

function toPrincipal(row: Row): Principal {
  const principal: Principal = { id: String(row.id), roles: JSON.parse(String(row.roles)) as string[] };
  if (row.department !== null) principal.department = String(row.department);
  return principal;
}
