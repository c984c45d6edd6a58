// The permission review (keel permissions review): what the grants and the audit log say about who
// may do what and who used it. Read from the audit chain, which no agent can change: grants not
// used for a while (candidates to revoke), grants about to expire, denials by principal and
// permission, and the principals whose workflows started with the most rights.

import type { AuditKind } from '../audit/audit-entry.js';
import type { Grant, Store } from '../store/types.js';
import { grantState } from './grants.js';

export interface ReviewOptions {
  now: number;
  /** A live grant not used for this many days is reported (and denials and starts are counted over them). */
  unusedDays: number;
  /** A live grant expiring within this many days is reported. */
  expiringDays: number;
  /** Most principals listed under broadest rights (default 10). */
  top?: number;
}

export interface GrantSummary {
  id: string;
  principal: string;
  permission: string;
  taskTypes: string[] | null;
  resources: string[] | null;
  createdAt: number;
  expiresAt: number | null;
}

export interface PermissionReview {
  generatedAt: number;
  since: number;
  unusedDays: number;
  expiringDays: number;
  liveGrants: number;
  /** Permission decisions in the window. */
  decisions: { permit: number; deny: number };
  unusedGrants: (GrantSummary & { lastUsedAt: number | null })[];
  expiringGrants: (GrantSummary & { expiresAt: number })[];
  denials: { principal: string; permission: string; count: number; codes: Record<string, number>; lastAt: number }[];
  broadestRights: { principal: string; workflows: number; mostPermissions: number; permissions: string[]; agents: string[] }[];
}

const day = 86_400_000;
const permissionDecided: AuditKind = 'permission.decided';
const workflowStarted: AuditKind = 'workflow.started';

export async function reviewPermissions(store: Store, options: ReviewOptions): Promise<PermissionReview> {
  const since = options.now - options.unusedDays * day;
  const live = (await store.listGrants()).filter((grant) => grantState(grant, options.now) === 'live');
  const lastUse = new Map<string, number>();
  const decisions = { permit: 0, deny: 0 };
  const denials = new Map<string, PermissionReview['denials'][number]>();
  const starts = new Map<string, { workflows: number; mostPermissions: number; permissions: Set<string>; agents: Set<string> }>();
  for await (const entry of store.iterateAudit()) {
    if (entry.kind !== permissionDecided && entry.kind !== workflowStarted) continue;
    const data = parse(entry.dataJson);
    if (entry.kind === workflowStarted) {
      const permissions = data.permissions as { effective?: unknown } | undefined;
      if (entry.at < since || !Array.isArray(permissions?.effective)) continue;
      const effective = permissions.effective.map(String);
      const principal = starts.get(entry.actor) ?? { workflows: 0, mostPermissions: 0, permissions: new Set<string>(), agents: new Set<string>() };
      principal.workflows++;
      principal.mostPermissions = Math.max(principal.mostPermissions, effective.length);
      for (const permission of effective) principal.permissions.add(permission);
      if (entry.subject) principal.agents.add(entry.subject);
      starts.set(entry.actor, principal);
      continue;
    }
    if (entry.outcome === 'permit') {
      for (const id of Array.isArray(data.policyIds) ? data.policyIds.map(String) : []) lastUse.set(id, Math.max(lastUse.get(id) ?? 0, entry.at));
    }
    if (entry.at < since) continue;
    if (entry.outcome === 'permit') decisions.permit++;
    if (entry.outcome !== 'deny') continue;
    decisions.deny++;
    const permission = typeof data.permission === 'string' ? data.permission : '(none declared)';
    const key = `${entry.actor}\u0000${permission}`;
    const denial = denials.get(key) ?? { principal: entry.actor, permission, count: 0, codes: {}, lastAt: 0 };
    denial.count++;
    const code = typeof data.code === 'string' ? data.code : 'unknown';
    denial.codes[code] = (denial.codes[code] ?? 0) + 1;
    denial.lastAt = Math.max(denial.lastAt, entry.at);
    denials.set(key, denial);
  }
  const usedAt = (grant: Grant) => Math.max(lastUse.get(grant.id) ?? 0, grant.lastUsedAt ?? 0) || null;
  return {
    generatedAt: options.now,
    since,
    unusedDays: options.unusedDays,
    expiringDays: options.expiringDays,
    liveGrants: live.length,
    decisions,
    unusedGrants: live.filter((grant) => (usedAt(grant) ?? 0) < since).map((grant) => ({ ...summary(grant), lastUsedAt: usedAt(grant) })),
    expiringGrants: live
      .filter((grant) => grant.expiresAt !== null && grant.expiresAt <= options.now + options.expiringDays * day)
      .sort((a, b) => a.expiresAt! - b.expiresAt!)
      .map((grant) => ({ ...summary(grant), expiresAt: grant.expiresAt! })),
    denials: [...denials.values()].sort((a, b) => b.count - a.count || a.principal.localeCompare(b.principal)),
    broadestRights: [...starts.entries()]
      .map(([principal, start]) => ({ principal, workflows: start.workflows, mostPermissions: start.mostPermissions, permissions: [...start.permissions].sort(), agents: [...start.agents].sort() }))
      .sort((a, b) => b.mostPermissions - a.mostPermissions || b.permissions.length - a.permissions.length || b.workflows - a.workflows)
      .slice(0, options.top ?? 10),
  };
}

function summary(grant: Grant): GrantSummary {
  return { id: grant.id, principal: grant.principalId, permission: grant.permission, taskTypes: grant.taskTypes, resources: grant.resources, createdAt: grant.createdAt, expiresAt: grant.expiresAt };
}

// A damaged entry is read as empty: `keel audit verify` is what reports damage.
function parse(json: string): Record<string, unknown> {
  try {
    const value = JSON.parse(json) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
