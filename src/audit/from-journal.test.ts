// What the audit log keeps of a commit's journal entries: decisions with model, reasoning and
// confidence; tool calls with their arguments and result class, the result only as a
// fingerprint; lifecycle; and nothing a redactor would hide.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { JournalKind, type NewJournalEntry } from '../store/types.js';
import { createRedactor } from '../util/redact.js';
import { canonicalJson } from './canonical-json.js';
import { auditFromJournal, type AuditSource } from './from-journal.js';

const secret = 'sk-live-0123456789abcdef';
const source: AuditSource = { workflowId: 'wf_1', actor: 'alice', workerId: 'host:42', redactor: createRedactor({ secrets: () => [secret] }) };

describe('auditFromJournal', () => {
  it('records a decision with its model, reasoning, confidence and arguments', () => {
    const journal: NewJournalEntry[] = [
      {
        step: 3,
        kind: JournalKind.actionDecided,
        name: 'pay_claim',
        status: 'model',
        data: { decision: { tool: 'pay_claim', args: { amount: 120 }, reasoning: 'Receipt matches.', confidence: 0.92, source: 'model', provider: 'openai', model: 'gpt-x', usage: { inputTokens: 10, outputTokens: 5 } } },
      },
      { step: 3, kind: JournalKind.checkpointSaved, data: { state: 'paying' } },
    ];
    expect(auditFromJournal(journal, source)).toEqual([
      {
        kind: 'decision.made',
        actor: 'alice',
        workflowId: 'wf_1',
        step: 3,
        subject: 'pay_claim',
        outcome: 'decided',
        data: { source: 'model', provider: 'openai', model: 'gpt-x', reasoning: 'Receipt matches.', confidence: 0.92, args: { amount: 120 }, usage: { inputTokens: 10, outputTokens: 5 } },
      },
    ]);
  });

  it('records a tool call with its arguments and a fingerprint of its result, not the result', () => {
    const result = { paymentId: 'pay_1', payee: 'DE89 3704 0044 0532 0130 00' };
    const [entry] = auditFromJournal([{ step: 4, kind: JournalKind.toolCallCompleted, name: 'pay_claim', status: 'ok', attempt: 2, durationMs: 12.5, data: { args: { amount: 120 }, result } }], source);
    const text = canonicalJson(result);
    expect(entry).toEqual({
      kind: 'tool.called',
      actor: 'alice',
      workflowId: 'wf_1',
      step: 4,
      subject: 'pay_claim',
      outcome: 'ok',
      data: { attempt: 2, durationMs: 12.5, args: { amount: 120 }, result: { sha256: createHash('sha256').update(text).digest('hex'), bytes: Buffer.byteLength(text) } },
    });
    expect(JSON.stringify(entry)).not.toContain('DE89');
  });

  it('records failures by error class and a failed workflow without its context snapshot', () => {
    const entries = auditFromJournal(
      [
        { step: 5, kind: JournalKind.toolCallFailed, name: 'pay_claim', status: 'fatal', attempt: 1, data: { args: { amount: 1 }, errorClass: 'fatal', message: 'refused', final: true } },
        { step: 5, kind: JournalKind.rolledBack, name: 'pay_claim', data: { toCheckpoint: 5 } },
        { step: 5, kind: JournalKind.workflowFailed, name: 'TOOL_FAILED', status: 'failed', data: { code: 'TOOL_FAILED', message: 'refused', state: 'paying', step: 5, context: { claim: { name: 'private' } }, at: 1 } },
      ],
      source,
    );
    expect(entries.map((entry) => [entry.kind, entry.subject, entry.outcome])).toEqual([
      ['tool.failed', 'pay_claim', 'fatal'],
      ['workflow.failed', 'TOOL_FAILED', 'failed'],
    ]);
    expect(entries[1]!.data).toEqual({ code: 'TOOL_FAILED', message: 'refused', state: 'paying' });
  });

  it("credits a crash recovery to the worker, and other entries to the source's actor", () => {
    const entries = auditFromJournal(
      [
        { step: 2, kind: JournalKind.workflowRecovered, status: 'recovered', attempt: 1, data: { worker: 'host:42', recoveries: 1 } },
        { step: 2, kind: JournalKind.stateChanged, name: 'paid', data: { from: 'paying', to: 'paid' } },
      ],
      source,
    );
    expect(entries.map((entry) => entry.actor)).toEqual(['keel:host:42', 'alice']);
    expect(entries[1]).toMatchObject({ kind: 'state.changed', subject: 'paid', data: { from: 'paying', to: 'paid' } });
  });

  it('redacts known secrets and sensitive keys before anything is sealed', () => {
    const [decided, failed] = auditFromJournal(
      [
        { step: 1, kind: JournalKind.actionDecided, name: 'call_api', data: { decision: { tool: 'call_api', args: { token: 'tok_abcdefghijkl', url: `https://x.test/?key=${secret}` }, reasoning: `use ${secret}`, source: 'code' } } },
        { step: 1, kind: JournalKind.toolCallFailed, name: 'call_api', status: 'auth-expired', data: { args: {}, errorClass: 'auth-expired', message: `401 for key ${secret}` } },
      ],
      source,
    );
    const text = JSON.stringify([decided, failed]);
    expect(text).not.toContain(secret);
    expect(text).not.toContain('tok_abcdefghijkl');
    expect(decided!.data).toMatchObject({ args: { token: '[REDACTED]', url: 'https://x.test/?key=[REDACTED]' }, reasoning: 'use [REDACTED]' });
  });

  it('returns nothing for a commit with no auditable entry', () => {
    expect(auditFromJournal([], source)).toEqual([]);
    expect(auditFromJournal([{ step: 1, kind: JournalKind.checkpointSaved, data: {} }], source)).toEqual([]);
  });
});
