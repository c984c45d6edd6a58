// The permission gate of one claimed workflow, asked before every tool call (after the arguments
// passed their schema, before the call runs): is the workflow's session still valid, do the
// principal's live grants, the agent's declared permissions and the tool's required permission
// allow this call on the resources it names, and do its arguments carry values only untrusted tool
// output suggested? Its answer comes with the journal entries that record it; the step loop
// commits them (and their audit entries) with the decision, or with the park or failure.
//
// A permitted call whose arguments carry such values is permitted only subject to a person's
// approval: the verdict names the values, and the step loop's approval gate (src/approval) turns
// them into a reason of an approval request, so the call runs only if a person approves it.
//
// It reads what it trusts from the store, never from what tools can touch: grants and the
// principal's record fresh for every call (a revocation stops the next call), the task input as
// stored, and the journal the claim started from for when the session began (only a person's
// resume, written before a claim, starts one).

import type { Agent } from '../agent/define-agent.js';
import type { Observation } from '../model/decision.js';
import { JournalKind, type JournalEntry, type NewJournalEntry, type Principal, type WorkflowRecord } from '../store/types.js';
import type { AnyTool } from '../tools/tool.js';
import { errorMessage } from '../errors.js';
import { timeOfDay } from '../util/clock.js';
import { DenialCode, type PermissionDecision } from './authorizer.js';
import { untrustedValues, type OutputSource, type UntrustedValue } from './provenance.js';
import type { Security } from './security.js';

export interface GuardedCall {
  tool: AnyTool;
  args: unknown;
  step: number;
  /** What the decider has seen so far: the tool outputs provenance looks in. */
  history: readonly Observation[];
  /** The arguments are a person's (an approver changed them): they are checked against the grants, not for provenance. */
  fromPerson?: boolean;
}

/** Why a permitted call still needs a person: values in its arguments only untrusted tool output named. */
export interface UntrustedArguments {
  /** The reason an approval request lists. */
  reason: string;
  values: UntrustedValue[];
}

export type CallVerdict =
  | { outcome: 'permit'; journal: NewJournalEntry[]; needsApproval?: UntrustedArguments }
  | { outcome: 'deny'; next: 'feedback' | 'fail'; message: string; journal: NewJournalEntry[] }
  | { outcome: 'park'; waitingFor: 'reauthorization'; code: 'REAUTHORIZATION_REQUIRED'; message: string; journal: NewJournalEntry[] };

/**
 * A resume from this wait is a person re-authorising the workflow: it starts a new session. An
 * approval decides one action and does not extend the session.
 */
const reauthorizationWait = 'reauthorization';

export class WorkflowGuard {
  /** Copied before any tool of this claim runs: tools receive the input and could change their copy. */
  private readonly input: unknown;
  private readonly snapshotPrincipal: Principal;
  /** When the current session began: the start, or the last time a person re-authorised the workflow. */
  private readonly sessionStartedAt: number;

  constructor(
    private readonly security: Security,
    private readonly workflow: WorkflowRecord,
    private readonly agent: Agent,
    journal: readonly JournalEntry[],
  ) {
    this.input = structuredClone(workflow.input);
    this.snapshotPrincipal = structuredClone(workflow.principal);
    this.sessionStartedAt = sessionStart(workflow, journal);
  }

  async check(call: GuardedCall): Promise<CallVerdict> {
    if (!(await this.security.enforced())) return { outcome: 'permit', journal: [] };
    const now = this.security.clock.now();
    const { tool, step } = call;
    const ttl = this.agent.sessionTtlMs ?? this.security.sessionTtlMs;
    if (now >= this.sessionStartedAt + ttl) {
      const message =
        `Workflow ${this.workflow.id} (agent '${this.agent.name}', principal '${this.workflow.principal.id}') acts on a session of ${describeMs(ttl)} that began at ${timeOfDay(this.sessionStartedAt)} and has ended, ` +
        `so tool '${tool.name}' at step ${step} did not run. A person must re-authorise it: \`keel resume ${this.workflow.id} --by <your name>\` starts a new session and runs the call, re-checked against the grants as they are then.`;
      const decision = { outcome: 'deny' as const, code: DenialCode.sessionExpired, policyIds: [], reason: `the session that began at ${new Date(this.sessionStartedAt).toISOString()} ended after ${describeMs(ttl)}` };
      return { outcome: 'park', waitingFor: reauthorizationWait, code: 'REAUTHORIZATION_REQUIRED', message, journal: [this.entry(call, decision, [], 'park', message)] };
    }
    const { decision, resources, permission } = await this.decide(call, now);
    if (decision.outcome === 'deny') {
      const next = this.agent.onPermissionDenied ?? 'feedback';
      const message = this.denialMessage(call, permission, resources, decision, next);
      return { outcome: 'deny', next, message, journal: [this.entry(call, decision, resources, next, message)] };
    }
    // Only grants permit: the ids that decided a permit are grant ids.
    await this.security.noteUse(decision.policyIds, now);
    const suspicious = tool.sideEffect && !call.fromPerson ? untrustedValues(call.args, await this.provenanceSources(call.history)) : [];
    if (suspicious.length === 0) return { outcome: 'permit', journal: [this.entry(call, decision, resources, call.fromPerson ? 'run-as-approved' : 'run')] };
    const reason =
      `its arguments carry ${describeFindings(suspicious)}, found in untrusted tool output but in no trusted source ` +
      `(the task input, the principal's record, trusted tools' results), so they may have been injected`;
    return { outcome: 'permit', journal: [this.entry(call, decision, resources, 'approval')], needsApproval: { reason, values: suspicious } };
  }

  private async decide(call: GuardedCall, now: number): Promise<{ decision: PermissionDecision; resources: string[]; permission: string | null }> {
    const { tool } = call;
    const permission = tool.permission ?? null;
    if (!permission) {
      return { permission, resources: [], decision: { outcome: 'deny', code: DenialCode.noPermissionDeclared, policyIds: [], reason: `tool '${tool.name}' declares no permission, and with permissions enforced such a tool never runs` } };
    }
    if (!(this.agent.permissions ?? []).includes(permission)) {
      return {
        permission,
        resources: [],
        decision: { outcome: 'deny', code: DenialCode.notDeclaredByAgent, policyIds: [], reason: `agent '${this.agent.name}' does not declare '${permission}' among the permissions of its task (${(this.agent.permissions ?? []).join(', ') || 'none'})` },
      };
    }
    let resources: string[];
    try {
      const named = tool.resource?.(call.args, { input: this.input }) ?? [];
      resources = (typeof named === 'string' ? [named] : [...named]).map((resource) => {
        if (typeof resource !== 'string' || !resource.trim()) throw new Error(`it named ${JSON.stringify(resource)}, not a resource name`);
        return resource;
      });
    } catch (error) {
      return { permission, resources: [], decision: { outcome: 'deny', code: DenialCode.badRequest, policyIds: [], reason: `the resources of the call could not be named (tool '${tool.name}' resource(): ${errorMessage(error)})` } };
    }
    if (resources.length === 0) resources = [`tool:${tool.name}`];
    const principalId = this.workflow.principal.id;
    const [stored, grants] = await Promise.all([this.security.store.getPrincipal(principalId), this.security.store.listGrants({ principalId, permission, includeRevoked: true })]);
    const decision = this.security.authorizer.decide({
      principal: stored ?? this.snapshotPrincipal,
      permission,
      taskType: this.agent.name,
      tool: tool.name,
      resources,
      args: call.args,
      workflowId: this.workflow.id,
      step: call.step,
      now,
      grants,
    });
    return { decision, resources, permission };
  }

  private entry(call: GuardedCall, decision: PermissionDecision, resources: string[], next: string, message?: string): NewJournalEntry {
    const denied = decision.outcome === 'deny';
    return {
      step: call.step,
      kind: JournalKind.permissionDecided,
      name: call.tool.name,
      status: decision.outcome,
      data: {
        permission: call.tool.permission ?? null,
        taskType: this.agent.name,
        resources,
        policyIds: decision.policyIds,
        ...(denied ? { code: decision.code, errorClass: 'permission-denied' } : {}),
        reason: decision.reason,
        next,
        // A denial handed to the decider is rebuilt from the journal as an observation, with its arguments.
        ...(denied ? { args: call.args } : {}),
        ...(message ? { message } : {}),
      },
    };
  }

  private denialMessage(call: GuardedCall, permission: string | null, resources: string[], decision: Extract<PermissionDecision, { outcome: 'deny' }>, next: string): string {
    const where = `tool '${call.tool.name}' (workflow ${this.workflow.id}, step ${call.step})`;
    const needs = permission ? ` needs '${permission}'${resources.length ? ` on ${resources.join(', ')}` : ''}, and` : '';
    const fix = this.fixFor(permission, decision);
    const after = next === 'fail' ? 'The call was not made and the workflow fails.' : 'The call was not made; calling it again is denied the same way.';
    return `Permission denied: ${where}${needs} ${decision.reason}. ${after} ${fix}`;
  }

  private fixFor(permission: string | null, decision: Extract<PermissionDecision, { outcome: 'deny' }>): string {
    switch (decision.code) {
      case DenialCode.noPermissionDeclared:
        return `Give the tool a permission (permission: '<name>') and list it in the agent's permissions.`;
      case DenialCode.notDeclaredByAgent:
        return `If the task needs it, add '${permission}' to agent '${this.agent.name}''s permissions.`;
      case DenialCode.forbidden:
      case DenialCode.policyError:
        return `Only an operator can change the policies (${decision.policyIds.join(', ') || 'the policy set'}).`;
      case DenialCode.badRequest:
        return `Fix the call's arguments or the tool's resource() function.`;
      default:
        return `A person can grant it: keel grants add --user ${this.workflow.principal.id} --permission ${permission} --task ${this.agent.name} --by <operator>.`;
    }
  }

  /** The trusted sources and the untrusted tool outputs of this workflow so far. */
  private async provenanceSources(history: readonly Observation[]): Promise<{ trusted: unknown[]; untrusted: OutputSource[] }> {
    const principal = (await this.security.store.getPrincipal(this.workflow.principal.id)) ?? this.snapshotPrincipal;
    const trusted: unknown[] = [this.input, principal];
    const untrusted: OutputSource[] = [];
    for (const observation of history) {
      const value = observation.type === 'tool-result' ? observation.result : observation.message;
      if (observation.type === 'tool-result' && this.agent.toolsByName.get(observation.tool)?.trusted === true) trusted.push(value);
      else untrusted.push({ tool: observation.tool, step: observation.step, value });
    }
    return { trusted, untrusted };
  }

}

/** The start of the workflow's current session: its creation, or the last resume from a park for re-authorisation. */
function sessionStart(workflow: WorkflowRecord, journal: readonly JournalEntry[]): number {
  let startedAt = workflow.createdAt;
  for (const entry of journal) {
    if (entry.kind !== JournalKind.workflowResumed) continue;
    const waitingFor = (entry.data as { waitingFor?: unknown } | null)?.waitingFor;
    if (waitingFor === reauthorizationWait) startedAt = Math.max(startedAt, entry.at);
  }
  return startedAt;
}

function describeFindings(findings: readonly UntrustedValue[]): string {
  const shown = findings.slice(0, 3).map((finding) => `${finding.kind === 'text' ? 'the value' : `the ${finding.kind === 'digits' ? 'number' : finding.kind}`} ${JSON.stringify(shorten(finding.value))} (${finding.path}, from tool '${finding.foundIn.tool}' at step ${finding.foundIn.step})`);
  if (findings.length > 3) shown.push(`${findings.length - 3} more`);
  return shown.join(', ');
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describeMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}
