// The entries of the audit log: what happened, who did it, to which workflow, with what result.
// An entry is sealed by the store that writes it: it gets the next sequence number, the hash of
// the entry before it (prevHash) and its own hash, in the same transaction as the change it
// records. Kinds are noun.verb and never renamed: a verifier elsewhere reads them as text.

export const AuditKind = {
  workflowStarted: 'workflow.started',
  workflowCompleted: 'workflow.completed',
  workflowFailed: 'workflow.failed',
  workflowParked: 'workflow.parked',
  workflowResumed: 'workflow.resumed',
  workflowRecovered: 'workflow.recovered',
  workflowCancelled: 'workflow.cancelled',
  workflowMigrated: 'workflow.migrated',
  decisionMade: 'decision.made',
  decisionFailed: 'decision.failed',
  toolCalled: 'tool.called',
  toolFailed: 'tool.failed',
  toolRefused: 'tool.refused',
  toolDeferred: 'tool.deferred',
  fallbackUsed: 'fallback.used',
  stateChanged: 'state.changed',
  /** Least privilege (docs/security.md): every permission decision, permitted or denied. */
  permissionDecided: 'permission.decided',
  /** A call held for a person: its arguments carry values only untrusted tool output suggested. */
  approvalRequested: 'approval.requested',
  /** A person approved or rejected an approval request, or it expired (src/approval). */
  approvalDecided: 'approval.decided',
  approvalEscalated: 'approval.escalated',
  grantAdded: 'grant.added',
  grantRevoked: 'grant.revoked',
  principalSaved: 'principal.saved',
  /** A downstream service's circuit breaker changed state in one worker (docs/reliability.md). */
  breakerChanged: 'breaker.changed',
  /** The cost circuit breaker opened (a threshold passed) or closed (cool-down, or an operator's reset). */
  costBreakerChanged: 'cost-breaker.changed',
} as const;
export type AuditKind = (typeof AuditKind)[keyof typeof AuditKind];

/** What a writer hands the store; the store adds seq, at, prevHash and hash. */
export interface NewAuditEntry {
  /** A known AuditKind; features that come later (permissions, grants, approvals, budgets) add theirs. */
  kind: AuditKind | (string & {});
  /** Who acted: a principal id, 'keel:<worker id>' for Keel itself, or 'operator'. */
  actor: string;
  workflowId?: string | null;
  step?: number | null;
  /** What it acted on: a tool, a state, a grant. */
  subject?: string | null;
  /** How it ended, in a word: 'ok', an error class, 'completed', 'denied'. */
  outcome?: string | null;
  /** Details, already redacted. Non-finite numbers are written as null, as in the journal. */
  data?: unknown;
}

/** The fields every entry has, in the form they are hashed and exported in. */
export interface AuditEntryFields {
  seq: number;
  /** Epoch milliseconds, from the writing store's clock. */
  at: number;
  kind: string;
  actor: string;
  workflowId: string | null;
  step: number | null;
  subject: string | null;
  outcome: string | null;
  /** The hash of the entry before this one; 64 zeros for the first entry. */
  prevHash: string;
  /** sha256 (hex) of the canonical JSON of this entry's hashed fields: see hashAuditEntry. */
  hash: string;
}

export interface AuditEntry extends AuditEntryFields {
  data: unknown;
}

/**
 * An entry as the store keeps it: `data` is still its canonical JSON text. Verification hashes
 * these stored bytes as they are, so a changed byte is found even where it would not change the
 * parsed value, and nothing is parsed on the way.
 */
export interface StoredAuditEntry extends AuditEntryFields {
  dataJson: string;
}

export interface AuditQuery {
  /** Entries at or after this time (epoch ms). */
  since?: number;
  /** Entries before this time (epoch ms). */
  until?: number;
  workflowId?: string;
  actor?: string;
  /** Entries with a greater sequence number: the cursor of a paged read. */
  afterSeq?: number;
  /** At most this many, oldest first (default 1000). */
  limit?: number;
}

/** The newest entry of a log: record it elsewhere to detect a log later cut short or rewritten. */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** The prevHash of the first entry of a log. */
export const genesisHash = '0'.repeat(64);
