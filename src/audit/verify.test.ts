// Verification of a chain: every kind of tampering is found at the right entry and named for
// what it is (a changed field, a deleted, inserted or swapped entry, a cut-off end), and an
// intact chain, whole or a part of it, verifies.

import { describe, expect, it } from 'vitest';
import { genesisHash, type StoredAuditEntry } from './audit-entry.js';
import { hashAuditEntry, sealAuditEntry } from './chain.js';
import { verifyAuditChain } from './verify.js';

function chain(length: number, change: (index: number) => string = () => 'ok'): StoredAuditEntry[] {
  const entries: StoredAuditEntry[] = [];
  let prevHash = genesisHash;
  for (let index = 0; index < length; index++) {
    const entry = sealAuditEntry(
      { kind: 'tool.called', actor: 'alice', workflowId: `wf_${index % 3}`, step: index, subject: 'pay_claim', outcome: change(index), data: { args: { amount: index } } },
      index + 1,
      1_000 + index,
      prevHash,
    );
    entries.push(entry);
    prevHash = entry.hash;
  }
  return entries;
}

/** A copy of the entries with their seq rewritten to 1..n, as a database renumbering rows would. */
function renumbered(entries: StoredAuditEntry[]): StoredAuditEntry[] {
  return entries.map((entry, index) => ({ ...entry, seq: index + 1 }));
}

async function* slowly(entries: StoredAuditEntry[]): AsyncGenerator<StoredAuditEntry> {
  for (const entry of entries) yield entry;
}

describe('verifyAuditChain', () => {
  it('accepts an intact chain, sync or async, and reports its head', async () => {
    const entries = chain(10);
    const expected = { ok: true, count: 10, last: { seq: 10, hash: entries[9]!.hash } };
    expect(await verifyAuditChain(entries)).toEqual(expected);
    expect(await verifyAuditChain(slowly(entries))).toEqual(expected);
  });

  it('accepts an empty log', async () => {
    expect(await verifyAuditChain([])).toEqual({ ok: true, count: 0 });
  });

  it('finds a change to any field of an entry, at that entry', async () => {
    const changes: Record<string, (entry: StoredAuditEntry) => StoredAuditEntry> = {
      at: (entry) => ({ ...entry, at: entry.at + 1 }),
      kind: (entry) => ({ ...entry, kind: 'tool.calleD' }),
      actor: (entry) => ({ ...entry, actor: 'alicf' }),
      workflowId: (entry) => ({ ...entry, workflowId: 'wf_9' }),
      step: (entry) => ({ ...entry, step: 99 }),
      subject: (entry) => ({ ...entry, subject: 'pay_clain' }),
      outcome: (entry) => ({ ...entry, outcome: 'oK' }),
      data: (entry) => ({ ...entry, dataJson: entry.dataJson.replace('"amount":4', '"amount":5') }),
      dataWhitespace: (entry) => ({ ...entry, dataJson: entry.dataJson.replace(':', ': ') }),
      hash: (entry) => ({ ...entry, hash: `${entry.hash.slice(0, 10)}${entry.hash[10] === 'a' ? 'b' : 'a'}${entry.hash.slice(11)}` }),
    };
    for (const [field, change] of Object.entries(changes)) {
      const entries = chain(8);
      entries[4] = change(entries[4]!);
      const result = await verifyAuditChain(entries);
      expect(result, field).toMatchObject({ ok: false, count: 4, last: { seq: 4 }, firstBad: { seq: 5, reason: 'hash mismatch' } });
    }
  });

  it("calls a changed prevHash a broken link", async () => {
    const entries = chain(8);
    entries[4] = { ...entries[4]!, prevHash: `f${entries[4]!.prevHash.slice(1)}` };
    expect((await verifyAuditChain(entries)).firstBad).toMatchObject({ seq: 5, reason: 'broken link', kind: 'tool.called', workflowId: 'wf_1', step: 4 });
  });

  it('finds a deleted entry as a gap, naming the missing seq', async () => {
    const entries = chain(8);
    entries.splice(3, 1);
    const result = await verifyAuditChain(entries);
    expect(result.firstBad).toMatchObject({ seq: 5, reason: 'seq gap' });
    expect(result.firstBad!.detail).toContain('entry 4 is missing');
    const first = chain(3).slice(1);
    expect((await verifyAuditChain(first)).firstBad).toMatchObject({ seq: 2, reason: 'seq gap' });
  });

  it('finds a deleted entry whose successors were renumbered to close the gap as a broken link', async () => {
    const entries = chain(8);
    entries.splice(3, 1);
    expect((await verifyAuditChain(renumbered(entries))).firstBad).toMatchObject({ seq: 4, reason: 'broken link' });
  });

  it('finds two swapped entries, whether their seq moved with them or not', async () => {
    const rows = chain(8);
    [rows[2], rows[3]] = [rows[3]!, rows[2]!];
    expect((await verifyAuditChain(renumbered(rows))).firstBad).toMatchObject({ seq: 3, reason: 'reordered' });
    const lines = chain(8);
    [lines[2], lines[3]] = [lines[3]!, lines[2]!];
    expect((await verifyAuditChain(lines)).firstBad).toMatchObject({ seq: 4, reason: 'reordered' });
  });

  it('finds an inserted entry, even one forged with a correct hash and the rest renumbered', async () => {
    const entries = chain(8);
    const forged = sealAuditEntry({ kind: 'tool.called', actor: 'mallory', subject: 'pay_claim', outcome: 'ok' }, 4, 1_003, entries[2]!.hash);
    const withForgery = renumbered([...entries.slice(0, 3), forged, ...entries.slice(3)]);
    const result = await verifyAuditChain(withForgery);
    expect(result).toMatchObject({ ok: false, count: 3, firstBad: { seq: 4, reason: 'inserted' } });

    const crude = { ...forged, hash: 'e'.repeat(64) };
    const crudeResult = await verifyAuditChain(renumbered([...entries.slice(0, 3), crude, ...entries.slice(3)]));
    expect(crudeResult.firstBad).toMatchObject({ seq: 4, reason: 'inserted' });
  });

  it('verifies a part of a chain from where it starts', async () => {
    const entries = chain(10);
    const tail = entries.slice(6);
    expect(await verifyAuditChain(tail)).toMatchObject({ ok: false, firstBad: { seq: 7, reason: 'seq gap' } });
    expect(await verifyAuditChain(tail, { start: { seq: 7, prevHash: entries[5]!.hash } })).toMatchObject({ ok: true, count: 4 });
  });

  it('with a recorded anchor, finds an end cut off and a chain rewritten whole', async () => {
    const entries = chain(10);
    const anchor = { seq: 10, hash: entries[9]!.hash };
    expect(await verifyAuditChain(entries, { anchors: [anchor] })).toMatchObject({ ok: true });
    expect(await verifyAuditChain(entries.slice(0, 8), { anchors: [anchor] })).toMatchObject({ ok: false, count: 8, firstBad: { seq: 10, reason: 'truncated' } });

    // Someone who can write the file can recompute every hash after a change: only an anchor kept elsewhere shows it.
    const rewritten = chain(10, (index) => (index === 2 ? 'denied' : 'ok'));
    expect(await verifyAuditChain(rewritten)).toMatchObject({ ok: true });
    expect(await verifyAuditChain(rewritten, { anchors: [anchor] })).toMatchObject({ ok: false, firstBad: { seq: 10, reason: 'anchor mismatch' } });
  });

  it('verifies entries with parsed data (export lines) as it verifies stored ones', async () => {
    const [entry] = chain(1);
    const { dataJson, ...fields } = entry!;
    expect(await verifyAuditChain([{ ...fields, data: JSON.parse(dataJson) }])).toMatchObject({ ok: true });
    expect(await verifyAuditChain([{ ...fields, data: { args: { amount: 1 } } }])).toMatchObject({ ok: false, firstBad: { reason: 'hash mismatch' } });
    expect(hashAuditEntry(entry!)).toBe(entry!.hash);
  });
});
