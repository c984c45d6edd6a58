// The audit scenario of `npm run bench`: how long `keel audit verify` takes over a large log.
// It writes a log of N entries through the store (the same sealing Keel's commits do, in
// batches), closes it, then times verifyAuditChain over store.iterateAudit() on a freshly
// opened store: exactly what `keel audit verify` runs. The entries look like a real log's: a
// workflow's start, then decisions with reasoning and tool calls with arguments and a result
// fingerprint.

import type { NewAuditEntry } from '../src/audit/audit-entry.js';
import { AuditKind } from '../src/audit/audit-entry.js';
import { verifyAuditChain } from '../src/audit/verify.js';
import { openSqliteStore } from '../src/index.js';
import { databaseBytes } from './workload.js';

export interface AuditVerifyResult {
  entries: number;
  /** Writing the log (sealing and inserting, in batches of `batch` entries per transaction). */
  writeMs: number;
  verifyMs: number;
  entriesPerSecond: number;
  /** The verification found the log intact (it must: nothing tampered with it). */
  ok: boolean;
  databaseBytes: number;
}

const batch = 10_000;
const stepsPerWorkflow = 20;

export async function runAuditVerify(options: { path: string; entries: number; log?: (line: string) => void }): Promise<AuditVerifyResult> {
  const writer = openSqliteStore({ path: options.path });
  const writeStartedAt = performance.now();
  try {
    for (let written = 0; written < options.entries; written += batch) {
      const size = Math.min(batch, options.entries - written);
      await writer.appendAudit(Array.from({ length: size }, (_, index) => sampleEntry(written + index)));
      if (options.log && (written + size) % 200_000 === 0) options.log(`audit: wrote ${written + size} entries`);
    }
  } finally {
    await writer.close();
  }
  const writeMs = performance.now() - writeStartedAt;

  const reader = openSqliteStore({ path: options.path });
  try {
    const verifyStartedAt = performance.now();
    const result = await verifyAuditChain(reader.iterateAudit());
    const verifyMs = performance.now() - verifyStartedAt;
    return { entries: result.count, writeMs, verifyMs, entriesPerSecond: (result.count / verifyMs) * 1000, ok: result.ok, databaseBytes: databaseBytes(options.path) };
  } finally {
    await reader.close();
  }
}

/** Entry `index` of a log of workflows of 20 steps: a start, then a decision and a tool call per step. */
function sampleEntry(index: number): NewAuditEntry {
  const workflowId = `wf_${(Math.floor(index / (2 * stepsPerWorkflow + 1)) + 1).toString(16).padStart(16, '0')}`;
  const position = index % (2 * stepsPerWorkflow + 1);
  const actor = `user-${index % 97}`;
  if (position === 0) {
    return { kind: AuditKind.workflowStarted, actor, workflowId, step: 0, subject: 'expense-approval', outcome: 'pending', data: { agent: 'expense-approval', agentVersion: '1#d8905faedb9d', principal: actor, state: 'intake' } };
  }
  const step = Math.floor((position - 1) / 2);
  const args = { amount: 100 + (index % 900), claimId: `C-${index}`, currency: 'EUR', payee: 'DE89370400440532013000' };
  if (position % 2 === 1) {
    return {
      kind: AuditKind.decisionMade,
      actor,
      workflowId,
      step,
      subject: 'pay_claim',
      outcome: 'decided',
      data: { source: 'model', provider: 'openai', model: 'gpt-4.1-mini', reasoning: `Claim C-${index} passed the policy check and is within the travel limit; paying it.`, confidence: 0.92, args, usage: { inputTokens: 732, outputTokens: 71 }, durationMs: 812.5 },
    };
  }
  return {
    kind: AuditKind.toolCalled,
    actor,
    workflowId,
    step,
    subject: 'pay_claim',
    outcome: 'ok',
    data: { attempt: 1, durationMs: 30.2, args, result: { sha256: '0729c10a76f4d8ab06896e507a85312f69fab193e7c4b682467d129156f3c5f3', bytes: 73 } },
  };
}
