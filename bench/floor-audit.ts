// The floor's share of Keel's audit log: the hash-chained rows Keel adds to the `audit` table for
// every journal entry it audits (see src/audit/from-journal.ts and src/store/sqlite/sqlite-audit.ts),
// written with better-sqlite3 directly. Per transaction: read the chain's head, then per entry
// its canonical JSON data, its sha256 and the insert. The data objects are written with their
// keys already in canonical (sorted) order, so plain JSON.stringify is their canonical JSON;
// Keel's generic canonicaliser and its redaction pass are Keel's own work, not the floor's.

import type Database from 'better-sqlite3';
import { genesisHash } from '../src/audit/audit-entry.js';
import { auditHashBody, sha256Hex } from '../src/audit/chain.js';

export interface FloorAuditEntry {
  kind: string;
  step: number;
  subject: string | null;
  outcome: string | null;
  /** Keys in sorted order: JSON.stringify of it is its canonical JSON. */
  data: unknown;
}

export class FloorAuditChain {
  private readonly head: Database.Statement;
  private readonly insert: Database.Statement;

  constructor(
    database: Database.Database,
    private readonly workflowId: string,
    private readonly actor: string,
  ) {
    this.head = database.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1');
    this.insert = database.prepare(
      `INSERT INTO audit (seq, at, kind, actor, workflow_id, step, subject, outcome, data, prev_hash, hash)
       VALUES (@seq, @at, @kind, @actor, @workflowId, @step, @subject, @outcome, @dataJson, @prevHash, @hash)`,
    );
  }

  /** Appends after the chain's head; call inside the write transaction, as Keel does. */
  append(entries: readonly FloorAuditEntry[], now: number): void {
    const head = this.head.get() as { seq: number; hash: string } | undefined;
    let seq = head?.seq ?? 0;
    let prevHash = head?.hash ?? genesisHash;
    for (const entry of entries) {
      const unsealed = {
        seq: ++seq,
        at: now,
        kind: entry.kind,
        actor: this.actor,
        workflowId: this.workflowId,
        step: entry.step,
        subject: entry.subject,
        outcome: entry.outcome,
        dataJson: JSON.stringify(entry.data),
        prevHash,
      };
      const hash = sha256Hex(auditHashBody(unsealed));
      this.insert.run({ ...unsealed, hash });
      prevHash = hash;
    }
  }
}

/** A tool result as the audit log keeps it: the sha256 and size of its canonical JSON. */
export function resultFingerprint(canonicalResult: string): { bytes: number; sha256: string } {
  return { bytes: Buffer.byteLength(canonicalResult), sha256: sha256Hex(canonicalResult) };
}
