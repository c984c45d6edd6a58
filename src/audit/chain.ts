// The hash chain of the audit log (format keel-audit-v1). Each entry's hash is
//   sha256hex(canonicalJson({ v: 1, seq, at, kind, actor, workflowId, step, subject, outcome, data, prevHash }))
// and each entry's prevHash is the hash of the entry before it (64 zeros for the first), so
// changing, removing, inserting or reordering an entry breaks the chain from that entry on.
// Stores seal entries with sealAuditEntry inside the transaction that writes them.

import * as crypto from 'node:crypto';
import type { AuditEntry, NewAuditEntry, StoredAuditEntry } from './audit-entry.js';
import { canonicalJson } from './canonical-json.js';

export const auditFormat = 'keel-audit-v1';
/** The `v` member of every hashed body: a new hashing rule gets a new number, old entries keep theirs. */
export const auditHashVersion = 1;

type Unsealed = Omit<StoredAuditEntry, 'hash'>;

/** The next entry of the chain, given the sequence number, time and hash of the one before it. */
export function sealAuditEntry(entry: NewAuditEntry, seq: number, at: number, prevHash: string): StoredAuditEntry {
  const unsealed: Unsealed = {
    seq,
    at,
    kind: entry.kind,
    actor: entry.actor,
    workflowId: entry.workflowId ?? null,
    step: entry.step ?? null,
    subject: entry.subject ?? null,
    outcome: entry.outcome ?? null,
    dataJson: encodeAuditData(entry.data),
    prevHash,
  };
  return { ...unsealed, hash: sha256Hex(auditHashBody(unsealed)) };
}

/** The canonical JSON text an entry's data is stored and hashed as. */
export function encodeAuditData(data: unknown): string {
  return data === undefined ? 'null' : canonicalJson(data, { nonFinite: 'null' });
}

/** The hash an entry should have: from its stored data text, or its parsed data (an export line). */
export function hashAuditEntry(entry: Unsealed | Omit<AuditEntry, 'hash'>): string {
  if ('dataJson' in entry) return sha256Hex(auditHashBody(entry));
  return sha256Hex(auditHashBody({ ...entry, dataJson: canonicalJson(entry.data === undefined ? null : entry.data) }));
}

/**
 * canonicalJson of the hashed fields, written out by hand because it runs for every entry
 * written and verified: the keys in their canonical (sorted) order, data spliced in as stored.
 * chain.test.ts checks it against canonicalJson.
 */
export function auditHashBody(entry: Unsealed): string {
  return (
    `{"actor":${scalar(entry.actor)},"at":${scalar(entry.at)},"data":${String(entry.dataJson)},"kind":${scalar(entry.kind)},` +
    `"outcome":${scalar(entry.outcome)},"prevHash":${scalar(entry.prevHash)},"seq":${scalar(entry.seq)},"step":${scalar(entry.step)},` +
    `"subject":${scalar(entry.subject)},"v":${auditHashVersion},"workflowId":${scalar(entry.workflowId)}}`
  );
}

// A field read back from a store may hold anything someone wrote there. A value no sealed entry
// can hold (Infinity, a blob) gets a text no canonical value has, so it can never match a hash.
function scalar(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' && Number.isFinite(value)) return JSON.stringify(value);
  return JSON.stringify(`<not a JSON scalar: ${typeof value} ${String(value)}>`);
}

// crypto.hash (Node 20.12+) hashes in one call, twice as fast as a Hash object: it matters when
// verifying millions of entries. Older Node 20 releases get the Hash object.
const oneShotHash = (crypto as { hash?: typeof crypto.hash }).hash;

export const sha256Hex: (text: string) => string =
  typeof oneShotHash === 'function'
    ? (text) => oneShotHash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');
