// Which journal entries the audit log records, and how. The journal is the workflow's working
// memory (it can be pruned); the audit log is the permanent, hash-chained record of what was
// decided and done, by whom (it is never pruned). So the audit keeps:
// - lifecycle: started, completed, failed, parked, resumed, recovered, cancelled, migrated;
// - every decision with its model, reasoning, confidence and proposed arguments;
// - every tool call with its arguments and the class of its result ('ok' or the error class);
//   a result itself is kept as its sha256 and size only: results can be large and personal, and
//   a record that can never be erased should not copy them (the journal has them while kept);
// - state changes, refusals, deferrals and fallbacks.
// It skips what is bookkeeping (checkpoints, rollbacks). Everything goes through the redactor
// before it is sealed: secrets and sensitive keys never reach the chain.

import type { Redactor } from '../util/redact.js';
import { JournalKind, type NewJournalEntry } from '../store/types.js';
import { AuditKind, type NewAuditEntry } from './audit-entry.js';
import { canonicalJson } from './canonical-json.js';
import { sha256Hex } from './chain.js';

export interface AuditSource {
  workflowId: string;
  /** Who acted: the workflow's principal id, 'operator', or 'keel:<worker id>' for Keel itself. */
  actor: string;
  /** The worker writing: the actor of Keel's own interventions (crash recovery, migration). */
  workerId?: string;
  redactor: Redactor;
}

type Fields = Record<string, unknown>;
type Mapped = Omit<NewAuditEntry, 'data'> & { data: Fields };

export function auditFromJournal(journal: readonly NewJournalEntry[], source: AuditSource): NewAuditEntry[] {
  // One redaction pass for the whole commit: the redactor builds its secret pattern per call.
  return mapJournal(journal, source, (data) => source.redactor.redact(data) as Fields[]);
}

/**
 * The same for a journal already passed through the redactor, as the step loop stores it: its
 * entries' data is not redacted a second time (the mapping only picks and renames fields).
 */
export function auditFromRedactedJournal(journal: readonly NewJournalEntry[], source: Omit<AuditSource, 'redactor'>): NewAuditEntry[] {
  return mapJournal(journal, source, (data) => data);
}

function mapJournal(journal: readonly NewJournalEntry[], source: Omit<AuditSource, 'redactor'>, redact: (data: Fields[]) => Fields[]): NewAuditEntry[] {
  const mapped: Mapped[] = [];
  for (const entry of journal) {
    const audit = fromEntry(entry, source);
    if (audit) mapped.push(audit);
  }
  if (mapped.length === 0) return mapped;
  const redacted = redact(mapped.map((entry) => entry.data));
  return mapped.map((entry, index) => ({ ...entry, data: summariseResult(redacted[index]!) }));
}

function fromEntry(entry: NewJournalEntry, source: Omit<AuditSource, 'redactor'>): Mapped | undefined {
  const data = (typeof entry.data === 'object' && entry.data !== null ? entry.data : {}) as Fields;
  const base = { actor: source.actor, workflowId: source.workflowId, step: entry.step };
  const keel = source.workerId ? `keel:${source.workerId}` : source.actor;
  switch (entry.kind) {
    case JournalKind.workflowStarted:
      return { ...base, kind: AuditKind.workflowStarted, subject: entry.name, outcome: 'pending', data: { agent: entry.name, ...pick(data, 'agentVersion', 'principal', 'state', 'permissions') } };
    case JournalKind.actionDecided: {
      const decision = (data.decision ?? {}) as Fields;
      return {
        ...base,
        kind: AuditKind.decisionMade,
        subject: entry.name,
        outcome: decision.invalid ? 'invalid' : 'decided',
        data: pick(decision, 'source', 'provider', 'model', 'reasoning', 'confidence', 'args', 'usage', 'cost', 'durationMs', 'finishReason', 'invalid'),
      };
    }
    case JournalKind.modelCallFailed:
      return { ...base, kind: AuditKind.decisionFailed, outcome: entry.status, data: { attempt: entry.attempt, ...pick(data, 'errorClass', 'message', 'delayMs') } };
    case JournalKind.toolCallCompleted:
      return {
        ...base,
        kind: AuditKind.toolCalled,
        subject: entry.name,
        outcome: 'ok',
        data: { attempt: entry.attempt, durationMs: entry.durationMs, ...pick(data, 'args', 'result', 'fallback') },
      };
    case JournalKind.toolCallFailed:
      return {
        ...base,
        kind: AuditKind.toolFailed,
        subject: entry.name,
        outcome: entry.status,
        data: { attempt: entry.attempt, durationMs: entry.durationMs, ...pick(data, 'args', 'errorClass', 'message', 'classifiedBy', 'final', 'parked', 'delayMs') },
      };
    case JournalKind.toolCallInvalid:
    case JournalKind.actionRefused:
      return { ...base, kind: AuditKind.toolRefused, subject: entry.name, outcome: entry.status, data: { gate: entry.kind, ...pick(data, 'args', 'errorClass', 'message') } };
    case JournalKind.toolCallDeferred:
      return { ...base, kind: AuditKind.toolDeferred, subject: entry.name, outcome: entry.status, data: { attempt: entry.attempt, ...pick(data, 'service', 'waitMs', 'parked', 'message') } };
    case JournalKind.fallbackUsed:
      return { ...base, kind: AuditKind.fallbackUsed, subject: entry.name, outcome: entry.status, data };
    case JournalKind.permissionDecided:
      // Permitted and denied alike, with the ids of the policies that decided (docs/security.md).
      return {
        ...base,
        kind: AuditKind.permissionDecided,
        subject: entry.name,
        outcome: entry.status,
        data: pick(data, 'permission', 'taskType', 'resources', 'policyIds', 'code', 'reason', 'next'),
      };
    case JournalKind.approvalRequested:
      return {
        ...base,
        kind: AuditKind.approvalRequested,
        subject: entry.name,
        outcome: entry.status,
        data: pick(data, 'message', 'requestId', 'args', 'reasoning', 'confidence', 'reasons', 'approvers', 'expiresAt', 'untrustedValues'),
      };
    case JournalKind.approvalEscalated:
      return { ...base, actor: keel, kind: AuditKind.approvalEscalated, subject: entry.name, outcome: 'escalated', data: pick(data, 'requestId', 'from', 'to', 'expiredAt', 'expiresAt') };
    case JournalKind.approvalDecided:
      // Who decided, and how: the approver (or 'keel' for an expiry) is the entry's actor.
      return { ...base, actor: data.by === 'keel' ? keel : base.actor, kind: AuditKind.approvalDecided, subject: entry.name, outcome: entry.status, data: pick(data, 'requestId', 'by', 'reason', 'comment', 'modifiedArgs', 'expiresAt') };
    case JournalKind.stateChanged:
      return { ...base, kind: AuditKind.stateChanged, subject: entry.name, outcome: null, data: pick(data, 'from', 'to') };
    case JournalKind.workflowParked:
      return { ...base, kind: AuditKind.workflowParked, subject: entry.name, outcome: 'waiting', data: pick(data, 'code', 'message', 'wakeAt', 'state') };
    case JournalKind.workflowResumed:
      return { ...base, kind: AuditKind.workflowResumed, outcome: entry.status, data };
    case JournalKind.workflowRecovered:
      return { ...base, actor: keel, kind: AuditKind.workflowRecovered, outcome: entry.status, data };
    case JournalKind.workflowMigrated:
      return { ...base, actor: keel, kind: AuditKind.workflowMigrated, data };
    case JournalKind.workflowCompleted:
      return { ...base, kind: AuditKind.workflowCompleted, subject: entry.name, outcome: 'completed', data: pick(data, 'outcome') };
    case JournalKind.workflowFailed:
      // The failure record without its context snapshot: the context is working data, not a record of an act.
      return {
        ...base,
        kind: AuditKind.workflowFailed,
        subject: entry.name,
        outcome: 'failed',
        data: pick(data, 'code', 'message', 'state', 'tool', 'args', 'attempts', 'errorClass'),
      };
    case JournalKind.workflowCancelled:
      return { ...base, kind: AuditKind.workflowCancelled, outcome: 'cancelled', data: pick(data, 'reason', 'by') };
    default:
      // checkpoint-saved, rolled-back, tool-call-started: bookkeeping of the step loop, not acts.
      return undefined;
  }
}

function pick(data: Fields, ...keys: string[]): Fields {
  const picked: Fields = {};
  for (const key of keys) if (data[key] !== undefined) picked[key] = data[key];
  return picked;
}

/** A tool result becomes its fingerprint: sha256 and size of its canonical JSON (after redaction). */
function summariseResult(data: Fields): Fields {
  if (!('result' in data)) return data;
  const text = canonicalJson(data.result ?? null, { nonFinite: 'null' });
  return { ...data, result: { sha256: sha256Hex(text), bytes: Buffer.byteLength(text) } };
}
