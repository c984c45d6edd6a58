// Export of the audit log as JSON Lines (format keel-audit-v1), and verification of an export.
// Line 1 is a header saying which contiguous part of the chain follows; every other line is one
// entry with all its fields, prevHash and hash included, so the file verifies on its own,
// anywhere: an export that starts mid-chain names the prevHash of its first entry. The header
// also names the last entry's hash, so a file cut short is caught too.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { genesisHash, type AuditEntry, type AuditHead, type AuditQuery, type StoredAuditEntry } from './audit-entry.js';
import { auditFormat } from './chain.js';
import { AuditChainChecker, AuditFault, type AuditVerification, type BadAuditEntry } from './verify.js';

export interface AuditExportHeader {
  format: typeof auditFormat;
  /** How each entry's hash is computed, for a reader who has only this file. */
  hash: string;
  exportedAt: string;
  /** The --since time asked for (ISO), or null for the whole log. */
  since: string | null;
  /** The first and last entry in the file; fromSeq > toSeq when it holds none. */
  fromSeq: number;
  toSeq: number;
  count: number;
  /** The prevHash of the first entry: 64 zeros when the file starts at the log's first entry. */
  prevHash: string;
  /** The hash of the last entry (the log's head when the export began). */
  lastHash: string;
}

/** What export needs of a store (Store has it): audit/ imports nothing from store/. */
export interface AuditReader {
  readAudit(query?: AuditQuery): Promise<AuditEntry[]>;
  iterateAudit(range?: { fromSeq?: number; toSeq?: number }): AsyncIterable<StoredAuditEntry>;
  auditHead(): Promise<AuditHead | undefined>;
}

export const hashDescription = 'sha256 hex of the RFC 8785 canonical JSON of {v:1,seq,at,kind,actor,workflowId,step,subject,outcome,data,prevHash}';

export interface AuditExport {
  header: AuditExportHeader;
  /** The exported part of the chain, checked while it was written: not ok means the file holds a broken chain. */
  verification: AuditVerification;
}

/** Bytes written per call of `write`: few calls, bounded memory. */
const chunkChars = 1 << 20;

/**
 * Writes entries from the one at or after `since` (the whole log without it) to the head as it
 * is now; entries appended meanwhile are left for the next export. Checks the chain as it writes.
 */
export async function exportAudit(reader: AuditReader, options: { since?: number; now?: number; write(text: string): void }): Promise<AuditExport> {
  const head = await reader.auditHead();
  const first = (await reader.readAudit({ ...(options.since !== undefined && { since: options.since }), limit: 1 }))[0];
  // A whole-log export must start at entry 1 after 64 zeros, whatever the table says.
  const fromSeq = options.since === undefined ? 1 : (first?.seq ?? (head?.seq ?? 0) + 1);
  const prevHash = options.since === undefined ? genesisHash : (first?.prevHash ?? head?.hash ?? genesisHash);
  const toSeq = first && head ? head.seq : fromSeq - 1;
  const header: AuditExportHeader = {
    format: auditFormat,
    hash: hashDescription,
    exportedAt: new Date(options.now ?? Date.now()).toISOString(),
    since: options.since === undefined ? null : new Date(options.since).toISOString(),
    fromSeq,
    toSeq,
    count: Math.max(0, toSeq - fromSeq + 1),
    prevHash,
    lastHash: first && head ? head.hash : prevHash,
  };
  const checker = new AuditChainChecker({ start: { seq: fromSeq, prevHash }, anchors: header.count > 0 ? [{ seq: toSeq, hash: header.lastHash }] : [] });
  let buffer = `${JSON.stringify(header)}\n`;
  let verdict: AuditVerification | undefined;
  if (header.count > 0) {
    for await (const entry of reader.iterateAudit(options.since === undefined ? { toSeq } : { fromSeq, toSeq })) {
      buffer += `${exportLine(entry)}\n`;
      if (buffer.length >= chunkChars) {
        options.write(buffer);
        buffer = '';
      }
      verdict = checker.push(entry);
      if (verdict) break;
    }
  }
  options.write(buffer);
  return { header, verification: verdict ?? checker.end() };
}

/** One entry as an export line: the stored data text goes in as it is, the exact bytes that were hashed. */
export function exportLine(entry: StoredAuditEntry): string {
  const text = (value: unknown) => JSON.stringify(value) ?? 'null';
  return (
    `{"seq":${text(entry.seq)},"at":${text(entry.at)},"kind":${text(entry.kind)},"actor":${text(entry.actor)},` +
    `"workflowId":${text(entry.workflowId)},"step":${text(entry.step)},"subject":${text(entry.subject)},"outcome":${text(entry.outcome)},` +
    `"data":${entry.dataJson},"prevHash":${text(entry.prevHash)},"hash":${text(entry.hash)}}`
  );
}

export interface ExportVerification extends AuditVerification {
  header?: AuditExportHeader;
}

/** Checks an export file on its own: its header, every entry's hash and link, and that nothing is missing at its end. */
export async function verifyExport(path: string, options: { anchors?: readonly AuditHead[] } = {}): Promise<ExportVerification> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let header: AuditExportHeader | undefined;
  let checker: AuditChainChecker | undefined;
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      if (line.trim() === '') continue;
      if (!header || !checker) {
        header = readHeader(line);
        if (!header) return unreadable(1, 0, `line 1 is not a ${auditFormat} header (a JSON object with format '${auditFormat}', fromSeq, toSeq, count, prevHash, lastHash)`);
        const anchors = [...(options.anchors ?? []), ...(header.count > 0 ? [{ seq: header.toSeq, hash: header.lastHash }] : [])];
        checker = new AuditChainChecker({ start: { seq: header.fromSeq, prevHash: header.prevHash }, anchors });
        continue;
      }
      const entry = readEntry(line);
      if (!entry || entry.seq > header.toSeq) {
        // The entry held back for a closer look is the first bad one, if there is one.
        const pending = checker.settle();
        if (pending) return { ...pending, header };
        const progress = checker.progress();
        if (entry) {
          const detail = `line ${lineNumber} holds entry ${entry.seq}, after the last entry (${header.toSeq}) the header names`;
          return { ...progress, ok: false, header, firstBad: { ...describe(entry), reason: AuditFault.inserted, detail } };
        }
        const detail = `line ${lineNumber} is not an audit entry (JSON with seq, at, kind, actor, workflowId, step, subject, outcome, data, prevHash, hash)`;
        return { ...unreadable((progress.last?.seq ?? header.fromSeq - 1) + 1, progress.count, detail), header };
      }
      const verdict = checker.push(entry);
      if (verdict) return { ...verdict, header };
    }
  } finally {
    lines.close();
  }
  if (!header || !checker) return unreadable(1, 0, `the file is empty: a ${auditFormat} export starts with a header line`);
  return { ...checker.end(), header };
}

function readHeader(line: string): AuditExportHeader | undefined {
  const header = parseObject(line);
  if (!header || header.format !== auditFormat) return undefined;
  const valid =
    Number.isSafeInteger(header.fromSeq) &&
    Number.isSafeInteger(header.toSeq) &&
    Number.isSafeInteger(header.count) &&
    typeof header.prevHash === 'string' &&
    typeof header.lastHash === 'string';
  return valid ? (header as unknown as AuditExportHeader) : undefined;
}

function readEntry(line: string): AuditEntry | undefined {
  const entry = parseObject(line);
  if (!entry || !('data' in entry)) return undefined;
  const nullableString = (value: unknown) => value === null || typeof value === 'string';
  const valid =
    Number.isSafeInteger(entry.seq) &&
    typeof entry.at === 'number' &&
    typeof entry.kind === 'string' &&
    typeof entry.actor === 'string' &&
    nullableString(entry.workflowId) &&
    (entry.step === null || typeof entry.step === 'number') &&
    nullableString(entry.subject) &&
    nullableString(entry.outcome) &&
    typeof entry.prevHash === 'string' &&
    typeof entry.hash === 'string';
  return valid ? (entry as unknown as AuditEntry) : undefined;
}

function parseObject(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function describe(entry: AuditEntry): Omit<BadAuditEntry, 'reason' | 'detail'> {
  return { seq: entry.seq, kind: entry.kind, workflowId: entry.workflowId, step: entry.step };
}

function unreadable(seq: number, count: number, detail: string): ExportVerification {
  return { ok: false, count, firstBad: { seq, kind: null, workflowId: null, step: null, reason: AuditFault.unreadable, detail } };
}
