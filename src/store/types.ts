// The Store interface: everything Keel keeps durably goes through it. It is async so that a
// networked database (PostgreSQL) fits behind the same interface as embedded SQLite.
// store/ never imports from agent/, tools/ or model/.

import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEntry, AuditHead, AuditQuery, NewAuditEntry, StoredAuditEntry } from '../audit/audit-entry.js';

export const WorkflowStatus = {
  pending: 'pending',
  running: 'running',
  waiting: 'waiting',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
} as const;
export type WorkflowStatus = (typeof WorkflowStatus)[keyof typeof WorkflowStatus];

export const finishedStatuses: readonly WorkflowStatus[] = ['completed', 'failed', 'cancelled'];

export interface Principal {
  id: string;
  roles?: string[];
  department?: string;
}

/**
 * A permission given to a principal (docs/security.md), optionally narrowed to task types
 * (agent names) and resources (patterns with '*', e.g. 'payee:DE89*'), until an expiry. Grants
 * are never deleted: a revoked grant stays, with who revoked it and when, for the review.
 */
export interface Grant {
  id: string;
  principalId: string;
  /** e.g. 'payments:write' */
  permission: string;
  /** The agents it applies to; null: any. */
  taskTypes: string[] | null;
  /** Resource patterns the calls may touch; null: any. */
  resources: string[] | null;
  expiresAt: number | null;
  createdBy: string;
  createdAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
  /** When the grant last permitted a call (for the permission review). */
  lastUsedAt: number | null;
}

export type NewGrant = Pick<Grant, 'id' | 'principalId' | 'permission' | 'createdBy'> & Partial<Pick<Grant, 'taskTypes' | 'resources' | 'expiresAt'>>;

export interface GrantQuery {
  principalId?: string;
  permission?: string;
  /** Revoked grants too (default: only grants not revoked; expired ones are included either way). */
  includeRevoked?: boolean;
  limit?: number;
}

/** Saved when a workflow fails or is parked for review, so a person can see what went wrong. */
export interface FailureRecord {
  code: string;
  message: string;
  state: string;
  step: number;
  tool?: string;
  args?: unknown;
  attempts?: number;
  errorClass?: string;
  context?: Record<string, unknown>;
  at: number;
}

export interface WorkflowRecord {
  id: string;
  agent: string;
  agentVersion: string;
  /** Where a worker finds the agent's code: 'builtin:<name>' or a file path. */
  agentModule: string | null;
  principal: Principal;
  input: unknown;
  status: WorkflowStatus;
  state: string;
  step: number;
  /** Why a waiting workflow waits ('review', 'version-mismatch', ...). */
  waitingFor: string | null;
  outcome: string | null;
  failure: FailureRecord | null;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  wakeAt: number | null;
  recoveries: number;
  contextBytes: number;
  createdAt: number;
  updatedAt: number;
  prunedAt: number | null;
}

export interface NewWorkflow {
  id: string;
  agent: string;
  agentVersion: string;
  agentModule: string | null;
  principal: Principal;
  input: unknown;
  state: string;
}

/** Journal kinds are noun-verb, past tense: what happened. */
export const JournalKind = {
  workflowStarted: 'workflow-started',
  actionDecided: 'action-decided',
  checkpointSaved: 'checkpoint-saved',
  toolCallStarted: 'tool-call-started',
  toolCallCompleted: 'tool-call-completed',
  toolCallFailed: 'tool-call-failed',
  toolCallInvalid: 'tool-call-invalid',
  actionRefused: 'action-refused',
  rolledBack: 'rolled-back',
  stateChanged: 'state-changed',
  workflowResumed: 'workflow-resumed',
  workflowRecovered: 'workflow-recovered',
  workflowParked: 'workflow-parked',
  workflowCompleted: 'workflow-completed',
  workflowFailed: 'workflow-failed',
  workflowCancelled: 'workflow-cancelled',
  workflowMigrated: 'workflow-migrated',
  modelCallFailed: 'model-call-failed',
  /** A call could not go yet (open breaker, spent rate budget): waited for, or parked until due. */
  toolCallDeferred: 'tool-call-deferred',
  /** A tool's retries were exhausted and its fallback gave the result instead. */
  fallbackUsed: 'fallback-used',
  /** The permission check of a call (docs/security.md): status 'permit' or 'deny'. */
  permissionDecided: 'permission-decided',
  /** A side-effecting call waits for a person: its arguments carry values only untrusted tool output held. */
  approvalRequested: 'approval-requested',
  /** A person approved or rejected an approval request, or it expired (src/approval). */
  approvalDecided: 'approval-decided',
  /** An approval request not decided in time went to the next group of its escalation chain. */
  approvalEscalated: 'approval-escalated',
} as const;
export type JournalKind = (typeof JournalKind)[keyof typeof JournalKind];

export interface NewJournalEntry {
  step: number;
  kind: JournalKind;
  name?: string | null;
  status?: string | null;
  attempt?: number | null;
  durationMs?: number | null;
  tokensIn?: number | null;
  tokensOut?: number | null;
  data?: unknown;
}

export interface JournalEntry extends Required<Omit<NewJournalEntry, 'data'>> {
  seq: number;
  workflowId: string;
  data: unknown;
  at: number;
}

/**
 * A change to a workflow's context. Context is stored per key, and lists per item, so a step
 * writes only what it changed: a long workflow's step cost stays flat.
 */
export type ContextChange =
  | { op: 'set'; key: string; value: unknown }
  | { op: 'append'; key: string; index: number; value: unknown }
  | { op: 'delete'; key: string };

export interface WorkflowPatch {
  status?: WorkflowStatus;
  agentVersion?: string;
  state?: string;
  step?: number;
  outcome?: string | null;
  failure?: FailureRecord | null;
  waitingFor?: string | null;
  wakeAt?: number | null;
  contextBytes?: number;
  recoveries?: number;
  /** Give the lease up (the workflow stops running here). */
  releaseLease?: boolean;
}

/** One atomic commit: journal entries together with the context and workflow changes they record. */
export interface Commit {
  workflowId: string;
  /** The lease holder; the commit fails with LEASE_LOST if another worker took the workflow over. */
  leaseOwner: string;
  /** Extends the lease by this many ms from now (omit to keep it). */
  leaseMs?: number;
  journal: NewJournalEntry[];
  context?: ContextChange[];
  workflow?: WorkflowPatch;
  /** Audit entries recording this change: appended to the one audit chain in the same transaction. */
  audit?: NewAuditEntry[];
  /** An approval request created with this commit (the step parks for it), or a pending one that expired. */
  approval?: { create: NewApprovalRequest } | { expire: string } | { escalate: { id: string; approvers: string; expiresAt: number | null } };
  /**
   * Enough that this commit survives a process crash, even when the store promises power-loss
   * durability: losing it to a power cut costs a repeated read-only step, never a repeated side effect.
   */
  crashSafeOnly?: boolean;
}

export const ApprovalStatus = {
  pending: 'pending',
  approved: 'approved',
  rejected: 'rejected',
  expired: 'expired',
} as const;
export type ApprovalStatus = (typeof ApprovalStatus)[keyof typeof ApprovalStatus];

/** A proposed action held for a person (src/approval): what the agent wanted, why, and what was decided. */
export interface ApprovalRequest {
  id: string;
  workflowId: string;
  step: number;
  tool: string;
  args: unknown;
  reasoning: string | null;
  confidence: number | null;
  /** Why it needs approval: one line per rule that fired. */
  reasons: string[];
  /** The group or role that may decide. */
  approvers: string | null;
  /** The principal the agent acts for. */
  requester: string;
  allowSelfApproval: boolean;
  createdAt: number;
  expiresAt: number | null;
  status: ApprovalStatus;
  decidedBy: string | null;
  decidedAt: number | null;
  comment: string | null;
  /** Arguments the approver changed; the action runs with these instead of `args`. */
  modifiedArgs: unknown;
}

export type NewApprovalRequest = Omit<ApprovalRequest, 'status' | 'decidedBy' | 'decidedAt' | 'comment' | 'modifiedArgs' | 'createdAt'>;

export interface ApprovalDecisionRecord {
  id: string;
  status: 'approved' | 'rejected';
  by: string;
  comment?: string | null;
  modifiedArgs?: unknown;
}

export interface ApprovalQuery {
  status?: 'pending' | 'decided' | 'all';
  workflowId?: string;
  limit?: number;
}

export interface AuditRange {
  /** The first sequence number to read (default: the start of the log). */
  fromSeq?: number;
  /** The last sequence number to read (default: the end of the log). */
  toSeq?: number;
}

export interface ClaimOptions {
  owner: string;
  leaseMs: number;
  /** Claim this workflow only (it must be claimable). */
  workflowId?: string;
  agents?: readonly string[];
}

export interface Claim {
  workflow: WorkflowRecord;
  /** The previous worker died holding it (its lease expired while running). */
  recovered: boolean;
}

export interface ListOptions {
  status?: WorkflowStatus;
  agent?: string;
  /** Only workflows waiting for this ('approval', 'handoff', 'cost-breaker', ...). */
  waitingFor?: string;
  limit?: number;
}

export interface PruneResult {
  workflows: number;
  journalEntries: number;
  contextRows: number;
}

/**
 * Where rate-limit budgets (rate-limiter-flexible) keep their counters, so that every worker on
 * this store shares them. Their tables are named keel_rate_* and are not part of the migrations.
 */
export type RateLimiterBackend = { kind: 'sqlite'; db: BetterSqlite3.Database } | { kind: 'memory' };

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  createWorkflow(workflow: NewWorkflow, journal: NewJournalEntry[], audit?: NewAuditEntry[]): Promise<WorkflowRecord>;
  getWorkflow(id: string): Promise<WorkflowRecord | undefined>;
  listWorkflows(options?: ListOptions): Promise<WorkflowRecord[]>;
  countByStatus(): Promise<Record<WorkflowStatus, number>>;
  /** How many workflows wait, by what they wait for ('approval', 'handoff', 'retry', ...). */
  countWaiting(): Promise<Record<string, number>>;
  /** Claims the next runnable workflow (pending, due, or running with an expired lease). */
  claim(options: ClaimOptions): Promise<Claim | undefined>;
  renewLease(workflowId: string, owner: string, leaseMs: number): Promise<boolean>;
  /** The earliest wake-up time of workflows waiting for one of these reasons; undefined when none. */
  nextWakeAt(waitingFor: readonly string[]): Promise<number | undefined>;
  commit(commit: Commit): Promise<void>;
  /** Operator changes that need no lease (resume, cancel); refused while another worker holds a live lease. */
  updateWorkflow(workflowId: string, patch: WorkflowPatch, journal: NewJournalEntry[], audit?: NewAuditEntry[]): Promise<WorkflowRecord>;
  loadContext(workflowId: string): Promise<Record<string, unknown>>;
  readJournal(workflowId: string): Promise<JournalEntry[]>;
  /** Deletes journals and context of workflows that finished before the given time; keeps their records and the audit. */
  pruneFinished(before: number): Promise<PruneResult>;
  /**
   * Appends audit entries that record no workflow change (a grant added, a breaker opened). The
   * chain's head is read and extended in one write transaction, so every writer, in every
   * process, extends the same chain. Returns the sealed entries.
   */
  appendAudit(entries: NewAuditEntry[]): Promise<AuditEntry[]>;
  /** Audit entries matching the query, oldest first. */
  readAudit(query?: AuditQuery): Promise<AuditEntry[]>;
  /** Every audit entry in the range, in sequence order, read page by page: for verifying and exporting large logs. */
  iterateAudit(range?: AuditRange): AsyncIterable<StoredAuditEntry>;
  /** The newest audit entry's seq and hash; undefined while the log is empty. */
  auditHead(): Promise<AuditHead | undefined>;
  /** Stores a new grant and its `grant.added` audit entry in one transaction. */
  addGrant(grant: NewGrant): Promise<Grant>;
  /** Marks a grant revoked (it stays stored) and appends its `grant.revoked` audit entry, in one transaction. */
  revokeGrant(id: string, revocation: { by: string; reason?: string }): Promise<Grant>;
  getGrant(id: string): Promise<Grant | undefined>;
  /** Grants matching the query, oldest first. */
  listGrants(query?: GrantQuery): Promise<Grant[]>;
  /** Notes that these grants permitted a call at `at`. Not audited: the permission decision that used them is. */
  markGrantsUsed(ids: readonly string[], at: number): Promise<void>;
  /** Creates or replaces a principal's record (roles, department) and audits `principal.saved`, in one transaction. */
  savePrincipal(principal: Principal, by: string): Promise<Principal>;
  getPrincipal(id: string): Promise<Principal | undefined>;
  listPrincipals(): Promise<Principal[]>;
  getApproval(id: string): Promise<ApprovalRequest | undefined>;
  /** The newest approval request of a workflow's step, if any. */
  approvalForStep(workflowId: string, step: number): Promise<ApprovalRequest | undefined>;
  /** Approval requests matching the query, oldest first. */
  listApprovals(query?: ApprovalQuery): Promise<ApprovalRequest[]>;
  /**
   * Records a person's decision on a pending request and makes its workflow runnable again, with
   * the decision's journal and audit entries, in one transaction. Refused (APPROVAL_DECIDED) if
   * the request is no longer pending: a decision applies exactly once.
   */
  decideApproval(decision: ApprovalDecisionRecord, journal: NewJournalEntry[], audit?: NewAuditEntry[]): Promise<ApprovalRequest>;
  /** Optional: a store without it gives rate budgets per process (in memory) only. */
  rateLimiterBackend?(): RateLimiterBackend;
  close(): Promise<void>;
}
