// Approval requests in the SQLite store (migration 0004_approvals). Rows are written inside the
// transactions of SqliteStore (a step's park commit, a person's decision), never on their own, so
// a request exists exactly when its workflow waits for it.

import type Database from 'better-sqlite3';
import { KeelError } from '../../errors.js';
import type { ApprovalDecisionRecord, ApprovalQuery, ApprovalRequest, NewApprovalRequest } from '../types.js';

type Row = Record<string, unknown>;

export class SqliteApprovals {
  private readonly statements;

  constructor(private readonly db: Database.Database) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO approvals (id, workflow_id, step, tool, args, reasoning, confidence, reasons, approvers, requester, allow_self_approval, created_at, expires_at, status)
         VALUES (@id, @workflowId, @step, @tool, @args, @reasoning, @confidence, @reasons, @approvers, @requester, @allowSelfApproval, @createdAt, @expiresAt, 'pending')`,
      ),
      get: db.prepare('SELECT * FROM approvals WHERE id = ?'),
      forStep: db.prepare('SELECT * FROM approvals WHERE workflow_id = ? AND step = ? ORDER BY created_at DESC, rowid DESC LIMIT 1'),
      escalate: db.prepare(`UPDATE approvals SET approvers = @approvers, expires_at = @expiresAt WHERE id = @id AND status = 'pending'`),
      decide: db.prepare(
        `UPDATE approvals SET status = @status, decided_by = @by, decided_at = @now, comment = @comment, modified_args = @modifiedArgs
         WHERE id = @id AND status = 'pending'`,
      ),
    };
  }

  insert(request: NewApprovalRequest, now: number): void {
    this.statements.insert.run({
      ...request,
      args: JSON.stringify(request.args ?? null),
      reasons: JSON.stringify(request.reasons),
      allowSelfApproval: request.allowSelfApproval ? 1 : 0,
      createdAt: now,
    });
  }

  get(id: string): ApprovalRequest | undefined {
    const row = this.statements.get.get(id) as Row | undefined;
    return row ? toApproval(row) : undefined;
  }

  forStep(workflowId: string, step: number): ApprovalRequest | undefined {
    const row = this.statements.forStep.get(workflowId, step) as Row | undefined;
    return row ? toApproval(row) : undefined;
  }

  list(query: ApprovalQuery): ApprovalRequest[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.status === 'pending' || query.status === undefined) where.push(`status = 'pending'`);
    if (query.status === 'decided') where.push(`status <> 'pending'`);
    if (query.workflowId) {
      where.push('workflow_id = ?');
      params.push(query.workflowId);
    }
    params.push(query.limit ?? 1000);
    const sql = `SELECT * FROM approvals ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, rowid LIMIT ?`;
    return (this.db.prepare(sql).all(...params) as Row[]).map(toApproval);
  }

  /** Hands a pending request to the next group of its chain, with a new deadline; throws when it was decided meanwhile. */
  escalate(escalation: { id: string; approvers: string; expiresAt: number | null }): void {
    const changed = this.statements.escalate.run(escalation).changes;
    if (changed !== 1) {
      const request = this.get(escalation.id);
      if (!request) throw new KeelError('UNKNOWN_APPROVAL', `There is no approval request '${escalation.id}' to escalate.`);
      throw alreadyDecided(request);
    }
  }

  /** Marks a pending request decided; throws when it is unknown or no longer pending. */
  decide(decision: ApprovalDecisionRecord | { id: string; status: 'expired'; by: string }, now: number): ApprovalRequest {
    const modifiedArgs = 'modifiedArgs' in decision && decision.modifiedArgs !== undefined ? JSON.stringify(decision.modifiedArgs) : null;
    const comment = 'comment' in decision ? (decision.comment ?? null) : null;
    const changed = this.statements.decide.run({ id: decision.id, status: decision.status, by: decision.by, now, comment, modifiedArgs }).changes;
    const request = this.get(decision.id);
    if (!request) {
      throw new KeelError('UNKNOWN_APPROVAL', `There is no approval request '${decision.id}'. List pending requests with \`keel approvals\`.`);
    }
    if (changed !== 1) throw alreadyDecided(request);
    return request;
  }
}

export function alreadyDecided(request: ApprovalRequest): KeelError {
  const when = request.decidedAt === null ? '' : ` at ${new Date(request.decidedAt).toISOString()}`;
  return new KeelError(
    'APPROVAL_DECIDED',
    `Approval request '${request.id}' (workflow ${request.workflowId}, step ${request.step}, tool '${request.tool}') is already ${request.status}` +
      `${request.decidedBy ? ` by ${request.decidedBy}` : ''}${when}; a decision applies once. See it with \`keel approvals --status decided\`.`,
    { workflowId: request.workflowId, step: request.step, tool: request.tool },
  );
}

function toApproval(row: Row): ApprovalRequest {
  return {
    id: String(row.id),
    workflowId: String(row.workflow_id),
    step: Number(row.step),
    tool: String(row.tool),
    args: JSON.parse(String(row.args)),
    reasoning: row.reasoning === null ? null : String(row.reasoning),
    confidence: row.confidence === null ? null : Number(row.confidence),
    reasons: JSON.parse(String(row.reasons)) as string[],
    approvers: row.approvers === null ? null : String(row.approvers),
    requester: String(row.requester),
    allowSelfApproval: Number(row.allow_self_approval) === 1,
    createdAt: Number(row.created_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    status: String(row.status) as ApprovalRequest['status'],
    decidedBy: row.decided_by === null ? null : String(row.decided_by),
    decidedAt: row.decided_at === null ? null : Number(row.decided_at),
    comment: row.comment === null ? null : String(row.comment),
    modifiedArgs: row.modified_args === null ? undefined : JSON.parse(String(row.modified_args)),
  };
}
