// Verification of an audit chain, streamed: entries are checked one by one as they arrive, so a
// log of millions of entries is never held in memory. It stops at the first bad entry and says
// what is wrong with it. To tell a deleted, inserted or swapped entry from a changed one it
// looks at one entry more: the entry after a broken link shows whether the chain goes on past
// the bad entry (it was inserted) or through it in the wrong order (two were swapped).

import { genesisHash, type AuditEntry, type AuditHead, type StoredAuditEntry } from './audit-entry.js';
import { hashAuditEntry } from './chain.js';

export const AuditFault = {
  /** The entry's fields do not give its hash: a field (or the hash) was changed. */
  hashMismatch: 'hash mismatch',
  /** The entry's prevHash is not the hash of the entry before it. */
  brokenLink: 'broken link',
  /** Sequence numbers skip: entries were deleted (or renumbered). */
  seqGap: 'seq gap',
  /** The entry is out of its place: swapped with the next one, or a duplicate. */
  reordered: 'reordered',
  /** The entry does not belong to the chain: the chain goes on around it. */
  inserted: 'inserted',
  /** The log ends before an entry the caller recorded (the anchor): its end was cut off. */
  truncated: 'truncated',
  /** The entry at the anchor's position has another hash: the log was rewritten from there back. */
  anchorMismatch: 'anchor mismatch',
  /** An entry could not be read at all (an export line that is not an entry). */
  unreadable: 'unreadable',
} as const;
export type AuditFault = (typeof AuditFault)[keyof typeof AuditFault];

export interface BadAuditEntry {
  seq: number;
  kind: string | null;
  workflowId: string | null;
  step: number | null;
  reason: AuditFault;
  /** What was found, in a sentence. */
  detail: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Entries verified good (all of them when ok; those before the bad one otherwise). */
  count: number;
  /** The last good entry: the head of the log when ok. */
  last?: AuditHead;
  firstBad?: BadAuditEntry;
}

export interface VerifyOptions {
  /** Where the entries start: a log starts at seq 1 after 64 zeros; an export may start mid-chain. */
  start?: { seq: number; prevHash: string };
  /** Entries recorded earlier (seq and hash, e.g. a past head): the log must still hold them, unchanged. */
  anchors?: readonly AuditHead[];
}

type CheckedEntry = (StoredAuditEntry | AuditEntry) & { seq: number; prevHash: string; hash: string };

export async function verifyAuditChain(
  entries: Iterable<StoredAuditEntry | AuditEntry> | AsyncIterable<StoredAuditEntry | AuditEntry>,
  options: VerifyOptions = {},
): Promise<AuditVerification> {
  const checker = new AuditChainChecker(options);
  for await (const entry of entries) {
    const verdict = checker.push(entry);
    if (verdict) return verdict;
  }
  return checker.end();
}

/** The verifier's state machine, for callers that feed entries themselves (sync or async). */
export class AuditChainChecker {
  private expectedSeq: number;
  private expectedPrevHash: string;
  private count = 0;
  private previous?: CheckedEntry;
  private beforePrevious?: CheckedEntry;
  /** The first entry that failed its checks, held until the entry after it is seen. */
  private suspect?: CheckedEntry;
  private readonly anchors: Map<number, string>;

  constructor(private readonly options: VerifyOptions = {}) {
    this.expectedSeq = options.start?.seq ?? 1;
    this.expectedPrevHash = options.start?.prevHash ?? genesisHash;
    this.anchors = new Map((options.anchors ?? []).map((anchor) => [anchor.seq, anchor.hash]));
  }

  /** Checks the next entry; returns the verdict once it is known (a bad entry), else undefined. */
  push(entry: StoredAuditEntry | AuditEntry): AuditVerification | undefined {
    const current = entry as CheckedEntry;
    if (this.suspect) return this.verdict(this.classify(this.suspect, current));
    if (current.seq !== this.expectedSeq || current.prevHash !== this.expectedPrevHash || hashAuditEntry(current) !== current.hash) {
      this.suspect = current;
      return undefined;
    }
    const recorded = this.anchors.get(current.seq);
    if (recorded !== undefined && current.hash !== recorded) {
      return this.verdict(
        bad(current, AuditFault.anchorMismatch, `entry ${current.seq} has hash ${current.hash}, but ${recorded} was recorded for it: the log was rewritten up to this entry`),
      );
    }
    this.count++;
    this.beforePrevious = this.previous;
    this.previous = current;
    this.expectedSeq = current.seq + 1;
    this.expectedPrevHash = current.hash;
    return undefined;
  }

  /** The verdict on the entry held back for a closer look, if any, as if no entry followed it. */
  settle(): AuditVerification | undefined {
    return this.suspect ? this.verdict(this.classify(this.suspect, undefined)) : undefined;
  }

  /** What has been verified so far. */
  progress(): Omit<AuditVerification, 'ok'> {
    return { count: this.count, ...(this.previous && { last: { seq: this.previous.seq, hash: this.previous.hash } }) };
  }

  /** The verdict once every entry has been pushed. */
  end(): AuditVerification {
    const pending = this.settle();
    if (pending) return pending;
    const lastSeq = this.previous?.seq ?? this.expectedSeq - 1;
    const beyond = [...this.anchors.keys()].filter((seq) => seq > lastSeq).sort((a, b) => a - b)[0];
    if (beyond !== undefined) {
      return this.verdict({
        seq: beyond,
        kind: null,
        workflowId: null,
        step: null,
        reason: AuditFault.truncated,
        detail: `the log ends at entry ${lastSeq}, but entry ${beyond} was recorded earlier: entries at its end were deleted`,
      });
    }
    return { ...this.progress(), ok: true };
  }

  private verdict(firstBad: BadAuditEntry): AuditVerification {
    return { ...this.progress(), ok: false, firstBad };
  }

  /** Why `entry` failed, knowing the entry after it (`next`, if any). */
  private classify(entry: CheckedEntry, next: CheckedEntry | undefined): BadAuditEntry {
    const expected = this.expectedPrevHash;
    if (next && entry.prevHash === next.hash && next.prevHash === expected) {
      return bad(entry, AuditFault.reordered, `entries ${entry.seq} and ${next.seq} are in each other's place: the chain runs through ${next.seq} first`);
    }
    if (next && next.prevHash === expected) {
      return bad(entry, AuditFault.inserted, `the entry after it (${next.seq}) links to the entry before it: entry ${entry.seq} was added to the chain`);
    }
    const previous = this.previous;
    if (previous && entry.prevHash !== expected && entry.prevHash === (this.beforePrevious?.hash ?? this.options.start?.prevHash ?? genesisHash)) {
      // The chain goes around `previous`; `previous` is the bad one (it checked out on its own).
      this.count--;
      this.previous = this.beforePrevious;
      return bad(previous, AuditFault.inserted, `the entry after it (${entry.seq}) links to the entry before it: entry ${previous.seq} was added to the chain`);
    }
    if (entry.seq > this.expectedSeq) {
      const missing = entry.seq - 1 === this.expectedSeq ? `entry ${this.expectedSeq} is` : `entries ${this.expectedSeq}-${entry.seq - 1} are`;
      return bad(entry, AuditFault.seqGap, `${missing} missing before it: deleted, or renumbered`);
    }
    if (entry.seq < this.expectedSeq) {
      return bad(entry, AuditFault.reordered, `entry ${entry.seq} comes where entry ${this.expectedSeq} belongs: it is out of order or repeated`);
    }
    if (entry.prevHash !== expected) {
      return bad(
        entry,
        AuditFault.brokenLink,
        `its prevHash (${entry.prevHash}) is not the hash of the entry before it (${expected}), so its prevHash was changed, or the entry before it was replaced`,
      );
    }
    return bad(entry, AuditFault.hashMismatch, `its fields no longer give its hash (${entry.hash}), so a field of this entry, or its hash, was changed after it was written`);
  }
}

function bad(entry: CheckedEntry, reason: AuditFault, detail: string): BadAuditEntry {
  return {
    seq: entry.seq,
    kind: typeof entry.kind === 'string' ? entry.kind : null,
    workflowId: entry.workflowId ?? null,
    step: entry.step ?? null,
    reason,
    detail,
  };
}
