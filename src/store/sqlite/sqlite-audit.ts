// The audit table of the SQLite store: appends sealed entries to the one hash chain, and reads
// them back. `append` must run inside the caller's IMMEDIATE transaction: the chain's head is
// read there, so two writers (threads or processes) can never both extend the same entry.

import type Database from 'better-sqlite3';
import type { AuditEntry, AuditHead, AuditQuery, NewAuditEntry, StoredAuditEntry } from '../../audit/audit-entry.js';
import { genesisHash } from '../../audit/audit-entry.js';
import { sealAuditEntry } from '../../audit/chain.js';
import type { AuditRange } from '../types.js';

type Row = Record<string, unknown>;

const entryColumns = 'seq, at, kind, actor, workflow_id, step, subject, outcome, data, prev_hash, hash';

/** Rows read per query by iterate(): large enough to amortise the query, small enough to stream. */
const pageSize = 512;
const defaultQueryLimit = 1000;

export class SqliteAuditLog {
  private readonly statements;

  constructor(private readonly db: Database.Database) {
    this.statements = {
      head: db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1'),
      insert: db.prepare(
        `INSERT INTO audit (seq, at, kind, actor, workflow_id, step, subject, outcome, data, prev_hash, hash)
         VALUES (@seq, @at, @kind, @actor, @workflowId, @step, @subject, @outcome, @dataJson, @prevHash, @hash)`,
      ),
      // Raw rows (arrays): better-sqlite3 builds them far faster than objects, which counts over millions of rows.
      page: db.prepare(`SELECT ${entryColumns} FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`).raw(true),
    };
  }

  /** Seals and inserts `entries` after the chain's current head. Call inside a write transaction. */
  append(entries: readonly NewAuditEntry[] | undefined, now: number): StoredAuditEntry[] {
    if (!entries || entries.length === 0) return [];
    const head = this.statements.head.get() as { seq: number; hash: string } | undefined;
    let seq = head ? Number(head.seq) : 0;
    let prevHash = head ? String(head.hash) : genesisHash;
    const sealed: StoredAuditEntry[] = [];
    for (const entry of entries) {
      const stored = sealAuditEntry(entry, ++seq, now, prevHash);
      this.statements.insert.run(stored);
      sealed.push(stored);
      prevHash = stored.hash;
    }
    return sealed;
  }

  head(): AuditHead | undefined {
    const row = this.statements.head.get() as Row | undefined;
    return row ? { seq: Number(row.seq), hash: String(row.hash) } : undefined;
  }

  read(query: AuditQuery): AuditEntry[] {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (condition: string, value: unknown) => {
      where.push(condition);
      params.push(value);
    };
    if (query.since !== undefined) add('at >= ?', query.since);
    if (query.until !== undefined) add('at < ?', query.until);
    if (query.workflowId !== undefined) add('workflow_id = ?', query.workflowId);
    if (query.actor !== undefined) add('actor = ?', query.actor);
    if (query.afterSeq !== undefined) add('seq > ?', query.afterSeq);
    const sql = `SELECT ${entryColumns} FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
    params.push(query.limit ?? defaultQueryLimit);
    return (this.db.prepare(sql).raw(true).all(...params) as unknown[][]).map((row) => parsedEntry(storedEntry(row)));
  }

  /** Pages through the range; each page is its own read, so a long verification blocks no writer. */
  async *iterate(range: AuditRange = {}): AsyncGenerator<StoredAuditEntry> {
    // Starts below any seq, so a row renumbered to 0 or below is still read (and reported).
    let after = range.fromSeq === undefined ? Number.MIN_SAFE_INTEGER : range.fromSeq - 1;
    const last = range.toSeq ?? Number.MAX_SAFE_INTEGER;
    for (;;) {
      const rows = this.statements.page.all(after, last, pageSize) as unknown[][];
      for (const row of rows) yield storedEntry(row);
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1]![0]);
    }
  }
}

// Values are passed on as SQLite holds them, unconverted: a verifier must see a tampered value as it is.
function storedEntry(row: unknown[]): StoredAuditEntry {
  return {
    seq: row[0] as number,
    at: row[1] as number,
    kind: row[2] as string,
    actor: row[3] as string,
    workflowId: row[4] as string | null,
    step: row[5] as number | null,
    subject: row[6] as string | null,
    outcome: row[7] as string | null,
    dataJson: row[8] as string,
    prevHash: row[9] as string,
    hash: row[10] as string,
  };
}

export function parsedEntry(stored: StoredAuditEntry): AuditEntry {
  const { dataJson, ...fields } = stored;
  return { ...fields, data: parseData(dataJson) };
}

// A query shows what is there even when a row was damaged; `keel audit verify` says what is wrong.
function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
