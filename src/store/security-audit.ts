// The audit entries of changes to grants and principals. The store writes them itself, in the
// transaction of the change, so no code path can change who may do what without a record of it.
// Shared by every Store implementation.

import { AuditKind, type NewAuditEntry } from '../audit/audit-entry.js';
import type { Grant, Principal } from './types.js';

export function grantAddedAudit(grant: Grant): NewAuditEntry {
  return {
    kind: AuditKind.grantAdded,
    actor: grant.createdBy,
    subject: grant.id,
    outcome: 'added',
    data: {
      principal: grant.principalId,
      permission: grant.permission,
      taskTypes: grant.taskTypes,
      resources: grant.resources,
      expiresAt: grant.expiresAt,
    },
  };
}

export function grantRevokedAudit(grant: Grant, reason: string | undefined): NewAuditEntry {
  return {
    kind: AuditKind.grantRevoked,
    actor: grant.revokedBy ?? 'operator',
    subject: grant.id,
    outcome: 'revoked',
    data: { principal: grant.principalId, permission: grant.permission, reason: reason ?? null },
  };
}

export function principalSavedAudit(principal: Principal, by: string, previous: Principal | undefined): NewAuditEntry {
  return {
    kind: AuditKind.principalSaved,
    actor: by,
    subject: principal.id,
    outcome: previous ? 'updated' : 'added',
    data: {
      roles: principal.roles ?? [],
      department: principal.department ?? null,
      before: previous ? { roles: previous.roles ?? [], department: previous.department ?? null } : null,
    },
  };
}
