// Sealing entries into the chain: the hand-written hash body is exactly the canonical JSON of
// the hashed fields, each entry links to the one before it, and the format is pinned by a
// known hash so that a change to it cannot slip in unnoticed.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { genesisHash, type NewAuditEntry, type StoredAuditEntry } from './audit-entry.js';
import { canonicalJson } from './canonical-json.js';
import { auditHashBody, hashAuditEntry, sealAuditEntry } from './chain.js';

const samples: NewAuditEntry[] = [
  { kind: 'workflow.started', actor: 'alice', workflowId: 'wf_1', step: 0, subject: 'expenses', outcome: 'pending', data: { input: { amount: 120 } } },
  { kind: 'decision.made', actor: 'bob "the builder"', workflowId: 'wf_2', step: 7, subject: 'pay_claim', outcome: 'decided', data: { reasoning: 'Zahlung über 120 € 👍\n', confidence: 0.85 } },
  { kind: 'grant.added', actor: 'operator' },
  { kind: 'tool.failed', actor: 'keel:host:1', workflowId: null, step: null, subject: null, outcome: null, data: [1.5e-7, null, 'x'] },
];

function hashedObject(entry: StoredAuditEntry) {
  const { dataJson, hash: _hash, ...fields } = entry;
  return { v: 1, ...fields, data: JSON.parse(dataJson) };
}

describe('the audit chain', () => {
  it('hashes exactly the canonical JSON of {v, seq, at, kind, actor, workflowId, step, subject, outcome, data, prevHash}', () => {
    let prevHash = genesisHash;
    samples.forEach((sample, index) => {
      const entry = sealAuditEntry(sample, index + 1, 1_767_225_600_000 + index, prevHash);
      const body = canonicalJson(hashedObject(entry));
      expect(auditHashBody(entry)).toBe(body);
      expect(entry.hash).toBe(createHash('sha256').update(body, 'utf8').digest('hex'));
      expect(entry.prevHash).toBe(prevHash);
      prevHash = entry.hash;
    });
  });

  it('fills absent fields with null and stores data as canonical JSON text', () => {
    const entry = sealAuditEntry({ kind: 'grant.added', actor: 'operator', data: { b: 1, a: Number.NaN } }, 1, 5, genesisHash);
    expect(entry).toMatchObject({ workflowId: null, step: null, subject: null, outcome: null, dataJson: '{"a":null,"b":1}' });
    expect(sealAuditEntry({ kind: 'grant.added', actor: 'operator' }, 1, 5, genesisHash).dataJson).toBe('null');
  });

  it('gives the same hash from the stored data text and from the parsed data of an export line', () => {
    const entry = sealAuditEntry(samples[1]!, 3, 10, genesisHash);
    const { dataJson, ...fields } = entry;
    expect(hashAuditEntry({ ...fields, data: JSON.parse(dataJson) })).toBe(entry.hash);
    expect(hashAuditEntry(entry)).toBe(entry.hash);
  });

  it('keeps the keel-audit-v1 hash of a known entry (a changed format must get a new version)', () => {
    const entry = sealAuditEntry(
      { kind: 'tool.called', actor: 'alice', workflowId: 'wf_1', step: 2, subject: 'pay_claim', outcome: 'ok', data: { args: { amount: 120 } } },
      1,
      1_767_225_600_000,
      genesisHash,
    );
    expect(auditHashBody(entry)).toBe(
      '{"actor":"alice","at":1767225600000,"data":{"args":{"amount":120}},"kind":"tool.called","outcome":"ok",' +
        `"prevHash":"${genesisHash}","seq":1,"step":2,"subject":"pay_claim","v":1,"workflowId":"wf_1"}`,
    );
    expect(entry.hash).toBe(createHash('sha256').update(auditHashBody(entry)).digest('hex'));
  });

  it('never matches a hash when a stored field holds a value no entry can hold', () => {
    const entry = sealAuditEntry({ kind: 'tool.called', actor: 'alice', step: null }, 1, 10, genesisHash);
    expect(hashAuditEntry({ ...entry, step: Number.POSITIVE_INFINITY })).not.toBe(entry.hash);
    expect(hashAuditEntry({ ...entry, at: '10' as unknown as number })).not.toBe(entry.hash);
  });
});
