// The approval gate of one step: what the step loop does with a decided, validated and permitted
// action under the agent's approval policy. The approvals table is the source of truth, read on
// every run of a step whose decision was already committed, so a rejected action never runs on any
// path (resume, retry, a crash between the decision and the next step): it is looked up again each
// time, never remembered. A decision made in this run cannot have a request yet.

import { randomUUID } from 'node:crypto';
import type { Agent } from '../agent/define-agent.js';
import type { DecisionRecord } from '../model/decision.js';
import { JournalKind, type ApprovalRequest, type NewApprovalRequest, type NewJournalEntry, type Store, type WorkflowRecord } from '../store/types.js';
import type { AnyTool } from '../tools/tool.js';
import { evaluateApproval } from './policy.js';

export const approvalWait = 'approval';
export const approvalRejectedClass = 'approval-rejected';

export type ApprovalVerdict =
  /** No rule fired, or a person approved: run with these arguments (the approver's, if changed). */
  | { kind: 'run'; args: unknown; request?: ApprovalRequest }
  /** Park the workflow: a new request to create with the park, or one still pending. */
  | {
      kind: 'wait';
      create?: NewApprovalRequest;
      escalate?: { id: string; approvers: string; expiresAt: number | null };
      request?: ApprovalRequest;
      expiresAt: number | null;
      journal: NewJournalEntry[];
      message: string;
    }
  /** Rejected or expired: the action does not run; `observation` is what the decider sees instead. */
  | { kind: 'refused'; expire?: string; journal: NewJournalEntry[]; observation: string };

export interface ApprovalGateInput {
  store: Store;
  now: number;
  workflow: WorkflowRecord;
  agent: Agent;
  state: string;
  step: number;
  decision: DecisionRecord;
  tool: AnyTool;
  args: unknown;
  /** The action was decided in this run of the step (not replayed from the journal). */
  fresh: boolean;
  /**
   * A reason from outside the agent's policy that the action needs a person, with what it found:
   * the permission gate's finding that the arguments carry values only untrusted tool output named.
   */
  required?: { reason: string; values: unknown[] };
}

export async function approvalVerdict(input: ApprovalGateInput): Promise<ApprovalVerdict> {
  const { store, workflow, step, tool } = input;
  // A freshly decided action needs no read: a request for this step would have been committed with
  // the step's decision, and a fresh decision means there was none. A resumed step is always looked
  // up, even if this worker's agent has no policy: a rejected action must not run because a worker
  // with another definition picked it up.
  if (!input.fresh) {
    const existing = await store.approvalForStep(workflow.id, step);
    if (existing) return verdictFor(existing, input);
  } else if (!input.agent.approval && !tool.requiresApproval && !input.required) {
    return { kind: 'run', args: input.args };
  }
  const reasons = evaluateApproval(input.agent.approval, {
    tool,
    args: input.args,
    decision: input.decision,
    principal: workflow.principal,
    agent: input.agent.name,
    state: input.state,
  });
  if (input.required) reasons.push(input.required.reason);
  if (reasons.length === 0) return { kind: 'run', args: input.args };
  const policy = input.agent.approval;
  const expiresAt = policy?.expiresAfterMs === undefined ? null : input.now + policy.expiresAfterMs;
  const create: NewApprovalRequest = {
    id: `apr_${randomUUID().replaceAll('-', '').slice(0, 16)}`,
    workflowId: workflow.id,
    step,
    tool: tool.name,
    args: input.args,
    reasoning: input.decision.reasoning ?? null,
    confidence: input.decision.confidence ?? null,
    reasons,
    approvers: policy?.approvers ?? null,
    requester: workflow.principal.id,
    allowSelfApproval: policy?.allowSelfApproval ?? false,
    expiresAt,
  };
  const message =
    `Tool '${tool.name}' in workflow ${workflow.id} step ${step} waits for approval by ${create.approvers ?? 'any approver'} (request ${create.id}): ${reasons.join('; ')}. ` +
    `Decide it with \`keel approve ${create.id} --by <user>\` or \`keel reject ${create.id} --by <user> --reason <text>\`.`;
  const journal: NewJournalEntry[] = [
    {
      step,
      kind: JournalKind.approvalRequested,
      name: tool.name,
      status: 'pending',
      data: {
        requestId: create.id,
        args: create.args,
        reasoning: create.reasoning,
        confidence: create.confidence,
        reasons,
        approvers: create.approvers,
        expiresAt,
        message,
        ...(input.required ? { untrustedValues: input.required.values } : {}),
      },
    },
  ];
  return { kind: 'wait', create, expiresAt, journal, message };
}

function verdictFor(request: ApprovalRequest, input: ApprovalGateInput): ApprovalVerdict {
  if (request.status === 'approved') return { kind: 'run', args: request.modifiedArgs !== undefined ? request.modifiedArgs : input.args, request };
  if (request.status === 'rejected' || request.status === 'expired') {
    return { kind: 'refused', journal: [refusal(request, input.step)], observation: rejectionMessage(request) };
  }
  if (request.expiresAt !== null && request.expiresAt <= input.now) {
    const policy = input.agent.approval;
    const chain = [policy?.approvers ?? null, ...(policy?.escalation ?? [])];
    const next = chain[chain.indexOf(request.approvers) + 1];
    if (next !== undefined && next !== null && chain.includes(request.approvers)) {
      const expiresAt = policy?.expiresAfterMs === undefined ? null : input.now + policy.expiresAfterMs;
      const message =
        `Approval request ${request.id} (tool '${request.tool}', workflow ${request.workflowId} step ${request.step}) was not decided by ${request.approvers ?? 'any approver'} in time; ` +
        `it now waits for ${next}. Decide it with \`keel approve ${request.id} --by <user>\` or \`keel reject ${request.id} --by <user> --reason <text>\`.`;
      const escalated: NewJournalEntry = {
        step: input.step,
        kind: JournalKind.approvalEscalated,
        name: request.tool,
        status: 'escalated',
        data: { requestId: request.id, from: request.approvers, to: next, expiredAt: request.expiresAt, expiresAt, message },
      };
      return { kind: 'wait', escalate: { id: request.id, approvers: next, expiresAt }, request, expiresAt, journal: [escalated], message };
    }
    const expired: ApprovalRequest = { ...request, status: 'expired', decidedBy: 'keel', decidedAt: input.now };
    const decided: NewJournalEntry = {
      step: input.step,
      kind: JournalKind.approvalDecided,
      name: request.tool,
      status: 'expired',
      data: { requestId: request.id, by: 'keel', expiresAt: request.expiresAt },
    };
    return { kind: 'refused', expire: request.id, journal: [decided, refusal(expired, input.step)], observation: rejectionMessage(expired) };
  }
  // Still pending (the workflow was resumed or woken before a decision): it waits again, for the same request.
  const message = `Tool '${request.tool}' in workflow ${request.workflowId} step ${request.step} still waits for approval request ${request.id} (${request.approvers ?? 'any approver'}).`;
  return { kind: 'wait', request, expiresAt: request.expiresAt, journal: [], message };
}

/** The step's record that the action did not run: the decider sees it as a tool error (replayed like any refusal). */
function refusal(request: ApprovalRequest, step: number): NewJournalEntry {
  return {
    step,
    kind: JournalKind.actionRefused,
    name: request.tool,
    status: approvalRejectedClass,
    data: { args: request.args, errorClass: approvalRejectedClass, message: rejectionMessage(request), requestId: request.id },
  };
}

export function rejectionMessage(request: ApprovalRequest): string {
  if (request.status === 'expired') {
    return `Approval request ${request.id} for tool '${request.tool}' expired undecided; the action did not run. Choose another action (e.g. hand the case to a person).`;
  }
  return (
    `Approval request ${request.id} for tool '${request.tool}' was rejected by ${request.decidedBy ?? 'a person'}: ${request.comment ?? 'no reason given'}. ` +
    `The action did not run and must not be proposed unchanged; choose another action.`
  );
}
