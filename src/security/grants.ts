// Giving and taking back permissions: the checks a grant must pass before it is stored, and what
// state a stored grant is in at a given time. Grants change only here (through the Store, which
// audits every change); nothing an agent, a tool or a model does reaches this code.

import { randomUUID } from 'node:crypto';
import { KeelError } from '../errors.js';
import type { Grant, Store } from '../store/types.js';

export interface GrantRequest {
  principalId: string;
  permission: string;
  /** Agents (task types) the grant applies to; empty or absent: any. */
  taskTypes?: readonly string[];
  /** Resource patterns ('payee:DE89*', 'claim:*'); empty or absent: any resource. */
  resources?: readonly string[];
  expiresAt?: number;
  /** Who gives it: recorded on the grant and as the actor of its audit entry. */
  by: string;
  /** A fixed id (tests, imports); default `gr_` and 12 random hex digits. */
  id?: string;
}

export type GrantState = 'live' | 'expired' | 'revoked';

/** 'payments:write', 'claims:read', 'reports.monthly:write': names, not patterns. */
const permissionName = /^[A-Za-z][\w.-]*(?::[\w.-]+)*$/;
const maxNameLength = 200;

export async function addGrant(store: Store, request: GrantRequest, now: number): Promise<Grant> {
  const problems = grantProblems(request, now);
  if (problems.length > 0) {
    throw new KeelError('BAD_INPUT', `The grant of '${request.permission}' to '${request.principalId}' is not valid: ${problems.join('; ')}. Nothing was stored.`);
  }
  return store.addGrant({
    id: request.id ?? `gr_${randomUUID().replaceAll('-', '').slice(0, 12)}`,
    principalId: request.principalId,
    permission: request.permission,
    taskTypes: request.taskTypes?.length ? [...new Set(request.taskTypes)] : null,
    resources: request.resources?.length ? [...new Set(request.resources)] : null,
    expiresAt: request.expiresAt ?? null,
    createdBy: request.by,
  });
}

export async function revokeGrant(store: Store, id: string, revocation: { by: string; reason?: string }): Promise<Grant> {
  if (!revocation.by.trim()) throw new KeelError('BAD_INPUT', `Revoking grant ${id} needs the name of who revokes it (--by <operator>); nothing was changed.`);
  return store.revokeGrant(id, revocation);
}

export function grantState(grant: Grant, now: number): GrantState {
  if (grant.revokedAt !== null) return 'revoked';
  if (grant.expiresAt !== null && grant.expiresAt <= now) return 'expired';
  return 'live';
}

export function isPermissionName(permission: string): boolean {
  return permissionName.test(permission) && permission.length <= maxNameLength;
}

function grantProblems(request: GrantRequest, now: number): string[] {
  const problems: string[] = [];
  if (!request.principalId.trim()) problems.push('the user id is empty');
  if (!isPermissionName(request.permission)) {
    problems.push(`'${request.permission}' is not a permission name (letters, digits, '_', '.', '-', parts separated by ':', e.g. payments:write; no wildcards)`);
  }
  if (!request.by.trim()) problems.push('who gives the grant is not said (--by <operator>)');
  for (const taskType of request.taskTypes ?? []) if (!taskType.trim()) problems.push('a task type is empty');
  for (const pattern of request.resources ?? []) {
    if (!pattern.trim() || pattern.length > maxNameLength || /[\u0000-\u001f]/.test(pattern)) {
      problems.push(`resource pattern ${JSON.stringify(pattern)} is empty, too long or has control characters`);
    }
  }
  if (request.expiresAt !== undefined && (!Number.isFinite(request.expiresAt) || request.expiresAt <= now)) {
    problems.push(`it would expire at ${describeTime(request.expiresAt)}, which is not in the future`);
  }
  return problems;
}

function describeTime(time: number): string {
  return Number.isFinite(time) ? new Date(time).toISOString() : String(time);
}
