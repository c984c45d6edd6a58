// A person's decision on an approval request: checked here (who may decide, modified arguments),
// then recorded by the store in one transaction that also makes the workflow runnable again on
// any worker. The store refuses a second decision, so a decision applies exactly once even when
// two people decide at the same moment.

import { auditFromJournal } from '../audit/from-journal.js';
import type { Agent } from '../agent/define-agent.js';
import { KeelError } from '../errors.js';
import { alreadyDecided } from '../store/sqlite/sqlite-approvals.js';
import { JournalKind, type ApprovalDecisionRecord, type ApprovalRequest, type NewJournalEntry, type Store, type WorkflowRecord } from '../store/types.js';
import type { Redactor } from '../util/redact.js';
import { DecisionTokenError, verifyDecisionToken, type DecisionTokenPayload } from './decision-token.js';
import { evaluateApproval } from './policy.js';

export interface ApproveOptions {
  /** Who approves (recorded, and the audit's actor). */
  by: string;
  /** Changed arguments to run the action with instead: re-validated and re-checked against the policies. */
  args?: unknown;
  comment?: string;
}

export interface RejectOptions {
  by: string;
  /** Why: the decider sees it as an observation, so the agent can adapt. */
  reason: string;
}

export interface DecisionDependencies {
  store: Store;
  now(): number;
  redactor: Redactor;
  /** The workflow's agent, for its tool schemas and policies (needed only to approve with changed arguments). */
  agentFor(workflow: WorkflowRecord): Promise<Agent | undefined>;
}

export async function approveRequest(deps: DecisionDependencies, requestId: string, options: ApproveOptions): Promise<ApprovalRequest> {
  const request = await pendingRequest(deps, requestId, options.by);
  if (request.requester === options.by && !request.allowSelfApproval) {
    throw new KeelError(
      'SELF_APPROVAL',
      `${options.by} cannot approve request ${request.id} (workflow ${request.workflowId}, tool '${request.tool}'): the agent acts for ${options.by}, and the policy does not allow self-approval. ` +
        `Someone in ${request.approvers ?? 'the approvers'} must decide it.`,
      { workflowId: request.workflowId, step: request.step, tool: request.tool },
    );
  }
  await assertMayDecide(deps, request, options.by);
  const modifiedArgs = options.args === undefined ? undefined : await checkedArgs(deps, request, options.args);
  return decide(deps, request, { id: request.id, status: 'approved', by: options.by, comment: options.comment ?? null, modifiedArgs });
}

export async function rejectRequest(deps: DecisionDependencies, requestId: string, options: RejectOptions): Promise<ApprovalRequest> {
  if (!options.reason?.trim()) {
    throw new KeelError('BAD_INPUT', `Rejecting request ${requestId} needs a reason: the agent sees it and adapts. Give one with --reason <text>.`);
  }
  const request = await pendingRequest(deps, requestId, options.by);
  await assertMayDecide(deps, request, options.by);
  return decide(deps, request, { id: request.id, status: 'rejected', by: options.by, comment: options.reason });
}

async function pendingRequest(deps: DecisionDependencies, requestId: string, by: string): Promise<ApprovalRequest> {
  if (!by?.trim()) throw new KeelError('BAD_INPUT', `A decision on request ${requestId} must say who decides (--by <user>).`);
  const request = await deps.store.getApproval(requestId);
  if (!request) throw new KeelError('UNKNOWN_APPROVAL', `There is no approval request '${requestId}'. List pending requests with \`keel approvals\`.`);
  if (request.status !== 'pending') throw alreadyDecided(request);
  if (request.expiresAt !== null && request.expiresAt <= deps.now()) {
    throw new KeelError(
      'APPROVAL_DECIDED',
      `Approval request ${request.id} (workflow ${request.workflowId}, tool '${request.tool}') expired at ${new Date(request.expiresAt).toISOString()}; it can no longer be decided. ` +
        `A worker records the expiry and the agent chooses another action.`,
      { workflowId: request.workflowId, step: request.step, tool: request.tool },
    );
  }
  return request;
}

/** A request that names a group or role may be decided only by a principal holding it (`keel principals add`). */
async function assertMayDecide(deps: DecisionDependencies, request: ApprovalRequest, by: string): Promise<void> {
  if (request.approvers === null) return;
  const principal = await deps.store.getPrincipal(by);
  if (principal?.roles?.includes(request.approvers)) return;
  const why = principal ? `${by} holds ${describeRoles(principal.roles)}` : `there is no principal '${by}'`;
  throw new KeelError(
    'NOT_APPROVER',
    `${by} cannot decide request ${request.id} (workflow ${request.workflowId}, tool '${request.tool}'): only ${request.approvers} may, and ${why}. ` +
      `Decide it as someone who holds ${request.approvers}, or record the role with \`keel principals add ${by} --role ${request.approvers} --by <operator>\` (it replaces the record: repeat --role for roles ${by} keeps).`,
    { workflowId: request.workflowId, step: request.step, tool: request.tool },
  );
}

function describeRoles(roles: readonly string[] | undefined): string {
  return roles && roles.length > 0 ? `the roles ${roles.map((role) => `'${role}'`).join(', ')}` : 'no roles';
}

/** Modified arguments must fit the tool's schema and raise no reason the approver was not shown. */
async function checkedArgs(deps: DecisionDependencies, request: ApprovalRequest, args: unknown): Promise<unknown> {
  const where = `request ${request.id} (workflow ${request.workflowId}, tool '${request.tool}')`;
  const workflow = await deps.store.getWorkflow(request.workflowId);
  const agent = workflow && (await deps.agentFor(workflow));
  const tool = agent?.toolsByName.get(request.tool);
  if (!workflow || !agent || !tool) {
    throw new KeelError('UNKNOWN_AGENT', `Cannot check the changed arguments of ${where}: this process does not have its agent '${workflow?.agent ?? '?'}'. Approve it where the agent is loaded.`);
  }
  const parsed = tool.input.safeParse(args);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue: { path: PropertyKey[]; message: string }) => `${issue.path.map(String).join('.') || '(arguments)'}: ${issue.message}`).join('; ');
    throw new KeelError('BAD_INPUT', `The changed arguments for ${where} do not match the tool's schema: ${issues}. The request is still pending; approve again with valid arguments.`, {
      workflowId: request.workflowId,
      tool: request.tool,
    });
  }
  const reasons = evaluateApproval(agent.approval, {
    tool,
    args: parsed.data,
    decision: { reasoning: request.reasoning ?? undefined, confidence: request.confidence ?? undefined },
    principal: workflow.principal,
    agent: agent.name,
    state: workflow.state,
  });
  const added = reasons.filter((reason) => !request.reasons.includes(reason));
  if (added.length > 0) {
    throw new KeelError(
      'BAD_INPUT',
      `The changed arguments for ${where} raise reasons for approval the request did not show: ${added.join('; ')}. The request is still pending; reject it so the agent proposes again, or approve it with other arguments.`,
      { workflowId: request.workflowId, tool: request.tool },
    );
  }
  return parsed.data;
}

async function decide(deps: DecisionDependencies, request: ApprovalRequest, decision: ApprovalDecisionRecord): Promise<ApprovalRequest> {
  const journal: NewJournalEntry[] = [
    {
      step: request.step,
      kind: JournalKind.approvalDecided,
      name: request.tool,
      status: decision.status,
      data: {
        requestId: request.id,
        by: decision.by,
        ...(decision.status === 'rejected' ? { reason: decision.comment } : { comment: decision.comment }),
        ...(decision.modifiedArgs !== undefined ? { modifiedArgs: deps.redactor.redact(decision.modifiedArgs) } : {}),
      },
    },
  ];
  return deps.store.decideApproval(decision, journal, auditFromJournal(journal, { workflowId: request.workflowId, actor: decision.by, redactor: deps.redactor }));
}

/**
 * A decision carried by a signed token (a link in a notification, a webhook callback). A forged,
 * altered, expired or replayed token is refused, and the refusal is audited (approval.token-refused).
 */
export async function decideWithToken(deps: DecisionDependencies, secret: string, token: string, details: { reason?: string; comment?: string } = {}): Promise<ApprovalRequest> {
  let payload: DecisionTokenPayload;
  try {
    payload = verifyDecisionToken(token, secret, deps.now());
  } catch (error) {
    // The payload of a token that failed its signature is not evidence of anything: no actor is taken from it.
    if (error instanceof DecisionTokenError) await auditRefusal(deps, error.refusal, error.message);
    throw error;
  }
  try {
    if (payload.decision === 'approve') return await approveRequest(deps, payload.requestId, { by: payload.approver, comment: details.comment });
    return await rejectRequest(deps, payload.requestId, { by: payload.approver, reason: details.reason ?? 'rejected through a signed decision link' });
  } catch (error) {
    if (KeelError.isInstance(error) && error.code === 'APPROVAL_DECIDED') await auditRefusal(deps, 'replayed', error.message, payload);
    throw error;
  }
}

async function auditRefusal(deps: DecisionDependencies, refusal: string, message: string, payload?: DecisionTokenPayload): Promise<void> {
  const request = payload ? await deps.store.getApproval(payload.requestId) : undefined;
  await deps.store.appendAudit([
    {
      kind: 'approval.token-refused',
      actor: payload?.approver ?? 'unknown',
      workflowId: request?.workflowId ?? null,
      step: request?.step ?? null,
      subject: payload?.requestId ?? null,
      outcome: refusal,
      data: { message, ...(payload ? { decision: payload.decision } : {}) },
    },
  ]);
}
