// The expense-approval example end to end: the agent with its scripted model, a temporary SQLite
// store and the example payments service in this process. What it must show: every sample claim
// ends as a careful clerk would decide, the ledger pays each payable claim exactly once under the
// step's idempotency key, duplicates and malformed documents are rejected with their reasons, and
// a payments outage is retried (or, when it outlasts the retries, fails and resumes) without a
// second payment.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKeel, defineAgent, defineTool, JournalKind, openSqliteStore, type Agent, type JournalEntry, type Keel, type WorkflowRecord } from '../../src/index.js';
import { scriptedModel } from '../../src/testing.js';
import { expenseApproval, script } from './agent.js';
import { financeGroup } from './finance-approval.js';
import { parseClaimDocument, type ClaimTask } from './claim-document.js';
import { sampleClaims, SampleClaimKind, type SampleClaim } from './claims.js';
import { cleanClaim } from '../../test/support/secure-expense.js';
import { startPaymentsService, type Payment, type PaymentsService, type PaymentsServiceOptions } from './payments-service.js';
import { paymentsService, paymentsServiceName } from './payments-access.js';
import { ContextKey, payClaim } from './tools.js';

const paymentsUrlVariable = 'EXPENSE_PAYMENTS_URL';
const seed = 11;

let directory: string;
let keel: Keel;
let service: PaymentsService | undefined;
let previousPaymentsUrl: string | undefined;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-expense-'));
  previousPaymentsUrl = process.env[paymentsUrlVariable];
  const store = openSqliteStore({ path: join(directory, 'keel.db') });
  keel = createKeel({ store, agents: [expenseApproval], model: scriptedModel(script) });
});

afterEach(async () => {
  if (previousPaymentsUrl === undefined) delete process.env[paymentsUrlVariable];
  else process.env[paymentsUrlVariable] = previousPaymentsUrl;
  await keel.close();
  await service?.close();
  service = undefined;
  rmSync(directory, { recursive: true, force: true });
});

/** Starts the payments service and points the example's tools at it (they read the URL per call). */
async function startPayments(options: PaymentsServiceOptions = {}): Promise<PaymentsService> {
  service = await startPaymentsService(options);
  process.env[paymentsUrlVariable] = service.url;
  return service;
}

async function submit(samples: readonly SampleClaim[]): Promise<WorkflowRecord[]> {
  const started: WorkflowRecord[] = [];
  // One at a time, so the store sees them in batch order (originals before their resubmissions).
  for (const sample of samples) started.push(await keel.start(expenseApproval.name, sample.input));
  return started;
}

function completedCall(journal: readonly JournalEntry[], tool: string): JournalEntry | undefined {
  return journal.find((entry) => entry.kind === JournalKind.toolCallCompleted && entry.name === tool);
}

async function rejectionReason(workflowId: string): Promise<string> {
  const context = await keel.store.loadContext(workflowId);
  return (context[ContextKey.rejection] as { reason: string } | undefined)?.reason ?? '';
}

/** The agent with pay_claim retrying at once: a test of running out of retries need not wait between them. */
function withoutBackoff(agent: Agent): Agent {
  const tools = agent.tools.map((tool) => (tool.name === payClaim.name ? defineTool({ ...tool, retry: { ...tool.retry, baseDelayMs: 0, maxDelayMs: 0 } }) : tool));
  return defineAgent({ ...agent, tools });
}

describe('expense-approval agent', () => {
  it('holds large and near-limit payments for finance, then ends every sample claim as expected and pays each payable claim exactly once, keyed by workflow and step', async () => {
    const payments = await startPayments({ latencyMs: 2 });
    const samples = sampleClaims(24, seed);
    // The batch must exercise every path, or the assertions below prove less than they say.
    expect(new Set(samples.map((sample) => sample.kind))).toEqual(new Set(Object.values(SampleClaimKind)));
    const started = await submit(samples);

    await keel.work({ concurrency: 4, once: true });

    // Payments above the approval limit or near a category limit wait for finance, unpaid.
    const held = samples.filter((sample) => sample.needsApproval);
    expect(held.length).toBeGreaterThan(0);
    const requests = await keel.approvals();
    expect(requests.map((request) => request.workflowId).sort()).toEqual(started.filter((_, index) => samples[index]!.needsApproval).map((workflow) => workflow.id).sort());
    for (const request of requests) expect(request).toMatchObject({ tool: 'pay_claim', approvers: financeGroup, status: 'pending' });
    expect(payments.ledger().map((payment) => payment.claimId).sort()).toEqual(
      samples.filter((sample) => sample.expected === 'paid' && !sample.needsApproval).map((sample) => sample.input.claimId).sort(),
    );
    await keel.store.savePrincipal({ id: 'fiona@finance', roles: [financeGroup] }, 'test-setup');
    for (const request of requests) await keel.approve(request.id, { by: 'fiona@finance' });
    await keel.work({ concurrency: 4, once: true });

    const ledger = payments.ledger();
    for (const [index, sample] of samples.entries()) {
      const { workflow, journal } = await keel.inspect(started[index]!.id);
      expect({ claim: sample.input.claimId, kind: sample.kind, status: workflow.status, outcome: workflow.outcome }).toEqual({
        claim: sample.input.claimId,
        kind: sample.kind,
        status: 'completed',
        outcome: sample.expected,
      });
      const paidHere = ledger.filter((payment) => payment.idempotencyKey.startsWith(`${workflow.id}:`));
      if (sample.expected === 'rejected') {
        expect(paidHere).toEqual([]);
        continue;
      }
      const payCall = completedCall(journal, 'pay_claim')!;
      expect(paidHere).toHaveLength(1);
      expect(paidHere[0]).toMatchObject({ claimId: sample.input.claimId, idempotencyKey: `${workflow.id}:${payCall.step}` });
      expect((payCall.data as { result: { paymentId: string } }).result.paymentId).toBe(paidHere[0]!.id);
    }
    const paidClaims = samples.filter((sample) => sample.expected === 'paid').map((sample) => sample.input.claimId);
    expect(ledger.map((payment) => payment.claimId).sort()).toEqual([...paidClaims].sort());
    expect(payments.stats()).toMatchObject({ created: paidClaims.length, replayed: 0 });
  });

  it('rejects a resubmitted claim as already paid, naming the duplicate', async () => {
    const payments = await startPayments();
    const samples = sampleClaims(24, seed);
    const resubmissions = samples.filter((sample) => sample.kind === SampleClaimKind.duplicate);
    const originals = resubmissions.map((copy) => samples.find((sample) => sample.kind === SampleClaimKind.clean && sample.input.claimId === copy.input.claimId)!);
    expect(resubmissions.length).toBeGreaterThan(0);

    const [original, copy] = await submit([originals[0]!, resubmissions[0]!]);
    await keel.work({ concurrency: 1, once: true });

    expect((await keel.store.getWorkflow(original!.id))).toMatchObject({ status: 'completed', outcome: 'paid' });
    const { workflow, journal } = await keel.inspect(copy!.id);
    expect(workflow).toMatchObject({ status: 'completed', outcome: 'rejected' });
    const policy = completedCall(journal, 'check_policy')!.data as { result: { compliant: boolean; violations: string[] } };
    expect(policy.result.compliant).toBe(false);
    expect(policy.result.violations).toContain(`claim ${resubmissions[0]!.input.claimId} was already paid: this is a duplicate resubmission`);
    expect(completedCall(journal, 'pay_claim')).toBeUndefined();
    expect(payments.ledger().map((payment) => payment.claimId)).toEqual([originals[0]!.input.claimId]);
  });

  it('pays a claim submitted twice at the same moment once, and rejects the other as a duplicate', async () => {
    // Enough latency that both policy checks see no payment yet, so both workflows reach pay_claim
    // and the payments service itself must refuse the second one. A rate budget roomy enough that
    // both checks go out at once: the example's 20 calls a second could let one claim's payment
    // go before the other's check.
    const payments = await startPayments({ latencyMs: 50 });
    const racing = createKeel({
      store: keel.store,
      agents: [expenseApproval],
      model: scriptedModel(script),
      services: { [paymentsServiceName]: { ...paymentsService, rateLimit: { perSecond: 1_000 } } },
    });
    const task = cleanClaim('C-TWICE-1');
    const [first, second] = await submit([
      { input: task, kind: SampleClaimKind.clean, expected: 'paid', needsApproval: false },
      { input: task, kind: SampleClaimKind.duplicate, expected: 'rejected', needsApproval: false },
    ]);

    const finished = await Promise.all([racing.run(first!.id), racing.run(second!.id)]);

    expect(finished.map((workflow) => workflow.outcome).sort()).toEqual(['paid', 'rejected']);
    const rejected = finished.find((workflow) => workflow.outcome === 'rejected')!;
    const rejectedJournal = await keel.store.readJournal(rejected.id);
    const refusedPayment = rejectedJournal.find((entry) => entry.kind === JournalKind.toolCallFailed && entry.name === 'pay_claim');
    expect(refusedPayment).toMatchObject({ status: 'invalid-input' });
    expect(await rejectionReason(rejected.id)).toMatch(/already paid under another request.*duplicate/);
    const ledger = payments.ledger();
    expect(ledger).toHaveLength(1);
    expect(ledger[0]!.idempotencyKey.startsWith(`${finished.find((workflow) => workflow.outcome === 'paid')!.id}:`)).toBe(true);
  });

  it('rejects malformed documents with every problem the parser found', async () => {
    const payments = await startPayments();
    const malformedSamples = sampleClaims(24, seed).filter((sample) => sample.kind === SampleClaimKind.malformed);
    // A document with several mistakes at once: the employee must learn of all of them in one round.
    const lines = cleanClaim('C-MANY-1').document.split('\n');
    const manyMistakes = lines
      .filter((line) => !line.startsWith('Amount:'))
      .map((line) => (line.startsWith('Date:') ? 'Date: 2026-02-30' : line.startsWith('Category:') ? 'Category: entertainment' : line))
      .concat('this line is not a field');
    const tasks = [...malformedSamples.map((sample) => sample.input), { claimId: 'C-MANY-1', document: manyMistakes.join('\n') }];
    const problemsOf = (task: ClaimTask) => {
      const parsed = parseClaimDocument(task.document);
      if (parsed.ok) throw new Error(`test setup: the document of ${task.claimId} should be malformed`);
      return parsed.problems;
    };
    expect(problemsOf(tasks.at(-1)!)).toHaveLength(4);

    const started = [];
    for (const task of tasks) started.push(await keel.start(expenseApproval.name, task));
    await keel.work({ concurrency: 2, once: true });

    for (const [index, task] of tasks.entries()) {
      const workflow = (await keel.store.getWorkflow(started[index]!.id))!;
      expect(workflow).toMatchObject({ status: 'completed', outcome: 'rejected', state: 'rejected' });
      const reason = await rejectionReason(workflow.id);
      for (const problem of problemsOf(task)) expect(reason).toContain(problem);
    }
    expect(payments.ledger()).toEqual([]);
    expect(payments.stats().paymentRequests).toBe(0);
  });

  it('retries a transient 503 from the payments service with the same idempotency key and pays once', async () => {
    // The service consults `random` once per payment request: two failures, then success.
    const draws = [0, 0];
    const payments = await startPayments({ failureRate: 0.5, random: () => draws.shift() ?? 0.99 });
    const [started] = await submit([{ input: cleanClaim('C-FLAKY-1'), kind: SampleClaimKind.clean, expected: 'paid', needsApproval: false }]);

    const finished = await keel.run(started!.id);

    expect(finished).toMatchObject({ status: 'completed', outcome: 'paid' });
    const journal = await keel.store.readJournal(finished.id);
    const payAttempts = journal.filter((entry) => entry.name === 'pay_claim' && (entry.kind === JournalKind.toolCallFailed || entry.kind === JournalKind.toolCallCompleted));
    expect(payAttempts.map((entry) => [entry.kind, entry.status, entry.attempt])).toEqual([
      [JournalKind.toolCallFailed, 'transient', 1],
      [JournalKind.toolCallFailed, 'transient', 2],
      [JournalKind.toolCallCompleted, 'ok', 3],
    ]);
    // A side-effecting tool that failed is rolled back to its checkpoint before the retry.
    expect(journal.filter((entry) => entry.kind === JournalKind.rolledBack)).toHaveLength(2);
    const step = payAttempts[0]!.step;
    expect(payAttempts.every((entry) => entry.step === step)).toBe(true);
    expect(payments.ledger()).toEqual([expect.objectContaining<Partial<Payment>>({ claimId: 'C-FLAKY-1', idempotencyKey: `${finished.id}:${step}` })]);
    expect(payments.stats()).toMatchObject({ paymentRequests: 3, failed503: 2, created: 1 });
  });

  it('fails a claim when the outage outlasts its retries, saves why, and pays it once on resume', async () => {
    const payments = await startPayments({ failureRate: 1 });
    const [started] = await submit([{ input: cleanClaim('C-OUTAGE-1'), kind: SampleClaimKind.clean, expected: 'paid', needsApproval: false }]);
    // The example's breaker would park the claim until the service recovers (test/service-outage.test.ts
    // shows that); without it, and without pauses between attempts, the retries themselves run out.
    const impatient = createKeel({
      store: keel.store,
      agents: [withoutBackoff(expenseApproval)],
      model: scriptedModel(script),
      services: { [paymentsServiceName]: { ...paymentsService, breaker: false } },
    });

    const failed = await impatient.run(started!.id);

    expect(failed).toMatchObject({ status: 'failed', state: 'payment' });
    expect(failed.failure).toMatchObject({ code: 'TOOL_FAILED', tool: 'pay_claim', errorClass: 'transient', attempts: payClaim.retry!.maxAttempts });
    expect(failed.failure!.message).toContain('HTTP 503');
    expect(payments.ledger()).toEqual([]);

    payments.setOptions({ failureRate: 0 });
    const resumed = await keel.resume(failed.id);

    expect(resumed).toMatchObject({ status: 'completed', outcome: 'paid' });
    const payStep = failed.step;
    expect(payments.ledger()).toEqual([expect.objectContaining<Partial<Payment>>({ claimId: 'C-OUTAGE-1', idempotencyKey: `${failed.id}:${payStep}` })]);
  });
});
