// Permission decisions with Cedar. A request is one tool call: the principal, the permission the
// tool needs, the task type (agent), the resources the call names, and its arguments. Cedar
// decides it against one permit policy per grant and the operator's forbid policies; nothing is
// allowed unless a grant permits it and no forbid policy applies. A call that names several
// resources needs every one of them permitted.
//
// Cedar skips a policy whose evaluation errors. For a forbid policy that would let through the
// very call it was written to stop (a policy testing `context.args.amount` on a call without
// one), so here an evaluation error denies the call, naming the policy: fail closed.

import type { Grant, Principal } from '../store/types.js';
import { CedarType, cedar, type CedarValueJson, type EntityJson } from './cedar.js';
import { CedarValueError, toCedarValue } from './cedar-values.js';
import { grantPolicy, matchesPattern } from './grant-policies.js';
import { grantState } from './grants.js';
import type { OperatorPolicies } from './operator-policies.js';

export const DenialCode = {
  /** The tool declares no permission: with permissions enforced it cannot run. */
  noPermissionDeclared: 'no-permission-declared',
  /** The agent does not declare the permission the tool needs for its task type. */
  notDeclaredByAgent: 'not-declared-by-agent',
  /** The principal holds no grant of the permission at all. */
  noGrant: 'no-grant',
  grantExpired: 'grant-expired',
  grantRevoked: 'grant-revoked',
  otherTaskType: 'other-task-type',
  resourceOutOfScope: 'resource-out-of-scope',
  /** An operator forbid policy applies. */
  forbidden: 'forbidden',
  /** A policy could not be evaluated for this call (fail closed). */
  policyError: 'policy-error',
  /** The tool's resource() failed, or the arguments hold a value no policy can test. */
  badRequest: 'bad-request',
  /** The workflow's session ran out: a person must re-authorise it. */
  sessionExpired: 'session-expired',
} as const;
export type DenialCode = (typeof DenialCode)[keyof typeof DenialCode];

export interface PermissionRequest {
  principal: Principal;
  permission: string;
  taskType: string;
  tool: string;
  /** The resources the call names; a call that names none is checked as `tool:<name>`. */
  resources: readonly string[];
  args: unknown;
  workflowId: string;
  step: number;
  now: number;
  /** The principal's grants of this permission, revoked ones included (they explain a denial). */
  grants: readonly Grant[];
}

export type PermissionDecision =
  | { outcome: 'permit'; policyIds: string[]; reason: string }
  | { outcome: 'deny'; code: DenialCode; policyIds: string[]; reason: string };

/** Policy sets kept parsed inside Cedar, per Authorizer: the sets of a few hundred principals' grants. */
const parsedSetsKept = 256;
let authorizers = 0;

export class Authorizer {
  /** The live grants (what their policies say) -> the id of the policy set Cedar holds parsed. */
  private readonly parsedSets = new Map<string, string>();
  private readonly prefix = `keel-${++authorizers}-`;
  private nextSet = 0;

  constructor(private readonly operatorPolicies: OperatorPolicies) {}

  get policyIds(): string[] {
    return Object.keys(this.operatorPolicies);
  }

  decide(request: PermissionRequest): PermissionDecision {
    let args: CedarValueJson;
    try {
      args = toCedarValue(request.args) ?? {};
    } catch (error) {
      if (!(error instanceof CedarValueError)) throw error;
      return { outcome: 'deny', code: DenialCode.badRequest, policyIds: [], reason: `its arguments cannot be checked against the policies: ${error.message}` };
    }
    // Revocation takes effect at once, whatever the clocks of the processes say.
    const live = request.grants.filter((grant) => grant.revokedAt === null);
    const policySet = this.parsedSet(live);
    if (typeof policySet !== 'string') return policySet;
    const principal: EntityJson = {
      uid: { type: CedarType.user, id: request.principal.id },
      attrs: { roles: [...(request.principal.roles ?? [])], ...(request.principal.department ? { department: request.principal.department } : {}) },
      parents: [],
    };
    const permittedBy = new Set<string>();
    for (const resource of request.resources) {
      const answer = cedar().statefulIsAuthorized({
        principal: principal.uid,
        action: { type: CedarType.action, id: request.permission },
        resource: { type: CedarType.resource, id: resource },
        context: { taskType: request.taskType, tool: request.tool, now: request.now, workflowId: request.workflowId, step: request.step, args },
        preparsedPolicySetId: policySet,
        entities: [principal, { uid: { type: CedarType.resource, id: resource }, attrs: { id: resource, kind: resource.split(':')[0] ?? '' }, parents: [] }],
      });
      if (answer.type === 'failure') {
        return { outcome: 'deny', code: DenialCode.policyError, policyIds: [], reason: `the policies could not be evaluated (${answer.errors.map((error) => error.message).join('; ')})` };
      }
      const { decision, diagnostics } = answer.response;
      if (diagnostics.errors.length > 0) {
        const failing = diagnostics.errors.map((error) => `policy '${error.policyId}': ${error.error.message}`);
        return {
          outcome: 'deny',
          code: DenialCode.policyError,
          policyIds: [...new Set(diagnostics.errors.map((error) => error.policyId))],
          reason: `${failing.join('; ')} for ${resource}, so the call is denied (a policy that cannot be evaluated never lets a call through; guard optional attributes with \`has\`)`,
        };
      }
      if (decision === 'deny') {
        if (diagnostics.reason.length > 0) {
          return {
            outcome: 'deny',
            code: DenialCode.forbidden,
            policyIds: diagnostics.reason,
            reason: `operator polic${diagnostics.reason.length === 1 ? 'y' : 'ies'} ${diagnostics.reason.map((id) => `'${id}'`).join(', ')} forbid${diagnostics.reason.length === 1 ? 's' : ''} it for ${resource}`,
          };
        }
        return { outcome: 'deny', policyIds: [], ...explainNoGrant(request, resource) };
      }
      for (const id of diagnostics.reason) permittedBy.add(id);
    }
    const ids = [...permittedBy];
    return { outcome: 'permit', policyIds: ids, reason: `permitted by grant${ids.length === 1 ? '' : 's'} ${ids.join(', ')}` };
  }

  /**
   * The policy set of these grants and the operator's policies, parsed by Cedar once and reused
   * while the grants stay the same (a fresh parse costs more than the evaluation itself).
   */
  private parsedSet(grants: readonly Grant[]): string | Extract<PermissionDecision, { outcome: 'deny' }> {
    const key = JSON.stringify(grants.map((grant) => [grant.id, grant.principalId, grant.permission, grant.taskTypes, grant.resources, grant.expiresAt]).sort());
    const known = this.parsedSets.get(key);
    if (known) {
      // Most recently used last: the first entry is the one to evict.
      this.parsedSets.delete(key);
      this.parsedSets.set(key, known);
      return known;
    }
    let id = `${this.prefix}${this.nextSet++}`;
    if (this.parsedSets.size >= parsedSetsKept) {
      const [oldestKey, oldestId] = this.parsedSets.entries().next().value as [string, string];
      this.parsedSets.delete(oldestKey);
      id = oldestId;
    }
    const staticPolicies = { ...Object.fromEntries(grants.map((grant) => [grant.id, grantPolicy(grant)])), ...this.operatorPolicies };
    const parsed = cedar().preparsePolicySet(id, { staticPolicies });
    if (parsed.type === 'failure') {
      return { outcome: 'deny', code: DenialCode.policyError, policyIds: [], reason: `the policies could not be parsed (${parsed.errors.map((error) => error.message).join('; ')})` };
    }
    this.parsedSets.set(key, id);
    return id;
  }
}

/** Why no grant permits the call: Cedar denies by default and says no more, so Keel reads the grants. */
function explainNoGrant(request: PermissionRequest, resource: string): { code: DenialCode; reason: string } {
  const who = `'${request.principal.id}'`;
  if (request.grants.length === 0) return { code: DenialCode.noGrant, reason: `${who} holds no grant of '${request.permission}'` };
  // The newest grant first: the one an operator most likely meant to cover this call.
  const reasons = [...request.grants].reverse().map((grant) => whyNot(grant, request, resource));
  const shown = reasons.slice(0, 3).map((reason) => reason.text);
  if (reasons.length > 3) shown.push(`${reasons.length - 3} more`);
  return { code: reasons[0]!.code, reason: `no grant of '${request.permission}' held by ${who} covers it: ${shown.join('; ')}` };
}

function whyNot(grant: Grant, request: PermissionRequest, resource: string): { code: DenialCode; text: string } {
  const state = grantState(grant, request.now);
  if (state === 'revoked') return { code: DenialCode.grantRevoked, text: `${grant.id} was revoked by ${grant.revokedBy} at ${iso(grant.revokedAt!)}` };
  if (state === 'expired') return { code: DenialCode.grantExpired, text: `${grant.id} expired at ${iso(grant.expiresAt!)}` };
  if (grant.taskTypes && !grant.taskTypes.includes(request.taskType)) {
    return { code: DenialCode.otherTaskType, text: `${grant.id} is for task type${grant.taskTypes.length === 1 ? '' : 's'} ${grant.taskTypes.join(', ')}, not '${request.taskType}'` };
  }
  if (grant.resources && !grant.resources.some((pattern) => matchesPattern(resource, pattern))) {
    return { code: DenialCode.resourceOutOfScope, text: `${grant.id} covers ${grant.resources.join(', ')}, not ${resource}` };
  }
  return { code: DenialCode.noGrant, text: `${grant.id} does not apply` };
}

function iso(time: number): string {
  return new Date(time).toISOString();
}
