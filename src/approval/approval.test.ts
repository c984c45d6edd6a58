// Approvals end to end on a SQLite file: a payment over the limit parks its workflow with a
// durable request; a person's decision, through Keel's public API, lets it pay exactly once or
// hands the rejection to the agent; second decisions, self-approval, bad changed arguments and
// expiry are refused or recorded as the issue asks.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { approvalAgent, paymentLedger, type PaymentLedger } from '../../test/support/approval-agent.js';
import { createKeel, type Keel } from '../agent/keel.js';
import { KeelError } from '../errors.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { ManualClock } from '../util/clock.js';
import { keywords, type ApprovalPolicy } from './policy.js';

let directory: string;
let clock: ManualClock;
let ledger: PaymentLedger;
let keel: Keel;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-approval-'));
  clock = new ManualClock();
  ledger = paymentLedger();
});

afterEach(async () => {
  await keel?.close();
  rmSync(directory, { recursive: true, force: true });
});

function open(policy: Partial<ApprovalPolicy> = {}): Keel {
  keel = createKeel({ store: openSqliteStore({ path: join(directory, 'keel.db'), clock }), clock, agents: [approvalAgent(ledger, policy)], workerId: 'worker-1' });
  return keel;
}

/** The people who decide in these tests, with the groups the policies name. */
async function recordApprovers(): Promise<void> {
  for (const id of ['fin-1', 'fin-2', 'bob']) await keel.store.savePrincipal({ id, roles: ['finance', 'team-lead', 'cfo'] }, 'test-setup');
}

async function parkedClaim(amount = 5000, principal = 'alice') {
  await recordApprovers();
  const workflow = await keel.startAndRun('approval-payer', { amount, payee: 'DE89 3704' }, { principal: { id: principal } });
  const [request] = await keel.approvals({ workflowId: workflow.id });
  return { workflow, request: request! };
}

async function refusal(promise: Promise<unknown>): Promise<KeelError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!KeelError.isInstance(error)) throw new Error(`expected a KeelError, got ${String(error)}`);
  return error;
}

describe('approval requests', () => {
  it('lets a payment within policy run without a request', async () => {
    open();
    const done = await keel.startAndRun('approval-payer', { amount: 200, payee: 'DE89 3704' });
    expect(done).toMatchObject({ status: 'completed', outcome: 'paid' });
    expect(await keel.approvals({ status: 'all' })).toEqual([]);
  });

  it('parks a payment over the limit with a durable request, its lease released, request and park in one commit', async () => {
    open();
    const { workflow, request } = await parkedClaim(5000);
    expect(workflow).toMatchObject({ status: 'waiting', waitingFor: 'approval', leaseOwner: null });
    expect(request).toMatchObject({
      workflowId: workflow.id,
      step: 0,
      tool: 'pay',
      args: { amount: 5000, payee: 'DE89 3704' },
      reasoning: 'Claim of 5000 is within policy.',
      confidence: 0.95,
      reasons: ['amount over 1000'],
      approvers: 'finance',
      requester: 'alice',
      status: 'pending',
    });
    expect(ledger.payments.size).toBe(0);
    const { journal } = await keel.inspect(workflow.id);
    expect(journal.map((entry) => entry.kind)).toEqual(['workflow-started', 'action-decided', 'checkpoint-saved', 'approval-requested', 'workflow-parked']);
    const audit = await keel.store.readAudit({ workflowId: workflow.id });
    expect(audit.find((entry) => entry.kind === 'approval.requested')).toMatchObject({ actor: 'alice', data: { requestId: request.id, reasons: ['amount over 1000'] } });
  });

  it('lists every reason that fired', async () => {
    open();
    const workflow = await keel.startAndRun('approval-payer', { amount: 5000, payee: 'DE89 3704', confidence: 0.5 });
    const [request] = await keel.approvals({ workflowId: workflow.id });
    expect(request!.reasons).toEqual(['confidence 0.5 is below 0.8', 'amount over 1000']);
  });

  it('pays an approved claim exactly once and records who approved it and when', async () => {
    open();
    const { workflow, request } = await parkedClaim();
    clock.advance(60_000);
    const approved = await keel.approve(request.id, { by: 'fin-1', comment: 'receipt checked' });
    expect(approved).toMatchObject({ status: 'approved', decidedBy: 'fin-1', decidedAt: clock.now(), comment: 'receipt checked' });
    expect(await keel.store.getWorkflow(workflow.id)).toMatchObject({ status: 'pending', waitingFor: null });
    expect(await keel.run(workflow.id)).toMatchObject({ status: 'completed', outcome: 'paid' });
    expect([...ledger.payments.values()]).toEqual([{ workflowId: workflow.id, amount: 5000, count: 1 }]);
    const audit = await keel.store.readAudit({ workflowId: workflow.id });
    expect(audit.find((entry) => entry.kind === 'approval.decided')).toMatchObject({ actor: 'fin-1', outcome: 'approved', data: { requestId: request.id, by: 'fin-1' } });
  });

  it('refuses a second decision on the same request, naming who decided', async () => {
    open();
    const { request } = await parkedClaim();
    await keel.approve(request.id, { by: 'fin-1' });
    const again = await refusal(keel.reject(request.id, { by: 'fin-2', reason: 'too late' }));
    expect(again.code).toBe('APPROVAL_DECIDED');
    expect(again.message).toContain('already approved by fin-1');
    expect((await refusal(keel.approve(request.id, { by: 'fin-2' }))).code).toBe('APPROVAL_DECIDED');
  });

  it('hands a rejection to the agent, which adapts; the rejected payment never runs, not even when resumed again', async () => {
    open();
    const { workflow, request } = await parkedClaim();
    await keel.reject(request.id, { by: 'fin-1', reason: 'duplicate of claim 17' });
    expect(await keel.run(workflow.id)).toMatchObject({ status: 'completed', outcome: 'declined' });
    expect(ledger.declined.get(workflow.id)).toContain('duplicate of claim 17');
    expect(ledger.payments.size).toBe(0);
    const { journal } = await keel.inspect(workflow.id);
    expect(journal.find((entry) => entry.kind === 'action-refused')).toMatchObject({ status: 'approval-rejected', step: 0 });
  });

  it('never runs a rejected action when a worker died after the decision and before recording it', async () => {
    open();
    const { workflow, request } = await parkedClaim();
    await keel.reject(request.id, { by: 'fin-1', reason: 'over budget' });
    // A worker that claims the step again finds the decided action in the journal (pending, not
    // completed): the approvals table, read on every run of the step, keeps it from running.
    await keel.store.claim({ owner: 'dead-worker', leaseMs: 1000, workflowId: workflow.id });
    clock.advance(5000);
    expect(await keel.run(workflow.id)).toMatchObject({ status: 'completed', outcome: 'declined' });
    expect(ledger.payments.size).toBe(0);
  });

  it('never runs a rejected action when a worker whose agent has no approval policy takes the workflow up', async () => {
    open();
    const { workflow, request } = await parkedClaim();
    await keel.reject(request.id, { by: 'fin-1', reason: 'over budget' });
    await keel.close();
    const withoutPolicy = { ...approvalAgent(ledger), approval: undefined };
    keel = createKeel({ store: openSqliteStore({ path: join(directory, 'keel.db'), clock }), clock, agents: [withoutPolicy], workerId: 'worker-2' });
    expect(await keel.run(workflow.id)).toMatchObject({ status: 'completed', outcome: 'declined' });
    expect(ledger.payments.size).toBe(0);
  });

  it('parks a resumed workflow again for the same pending request', async () => {
    open();
    const { workflow, request } = await parkedClaim();
    expect(await keel.resume(workflow.id, undefined, { by: 'ops' })).toMatchObject({ status: 'waiting', waitingFor: 'approval' });
    expect(await keel.approvals({ status: 'all' })).toEqual([expect.objectContaining({ id: request.id, status: 'pending' })]);
    expect(ledger.payments.size).toBe(0);
  });

  it('refuses self-approval unless the policy allows it', async () => {
    open();
    const { request } = await parkedClaim(5000, 'alice');
    const self = await refusal(keel.approve(request.id, { by: 'alice' }));
    expect(self.code).toBe('SELF_APPROVAL');
    expect(self.message).toContain('finance');
    expect((await keel.store.getApproval(request.id))!.status).toBe('pending');
    await keel.close();
    open({ allowSelfApproval: true });
    const allowed = await parkedClaim(5000, 'bob');
    expect(await keel.approve(allowed.request.id, { by: 'bob' })).toMatchObject({ status: 'approved' });
  });

  it('runs with changed arguments that fit the schema; refuses invalid ones and leaves the workflow waiting', async () => {
    open();
    const { workflow, request } = await parkedClaim(5000);
    const invalid = await refusal(keel.approve(request.id, { by: 'fin-1', args: { amount: 'lots', payee: 'DE89 3704' } }));
    expect(invalid.code).toBe('BAD_INPUT');
    expect(invalid.message).toContain('amount');
    expect(await keel.store.getWorkflow(workflow.id)).toMatchObject({ status: 'waiting', waitingFor: 'approval' });
    await keel.approve(request.id, { by: 'fin-1', args: { amount: 900, payee: 'DE89 3704' } });
    expect(await keel.run(workflow.id)).toMatchObject({ outcome: 'paid' });
    expect([...ledger.payments.values()].map((payment) => payment.amount)).toEqual([900]);
  });

  it('refuses changed arguments that raise a reason the approver was not shown', async () => {
    open({ tools: { pay: [keywords(['urgent'])] } });
    const { workflow, request } = await parkedClaim(5000);
    expect(request.reasons).toEqual(['amount over 1000']);
    const raised = await refusal(keel.approve(request.id, { by: 'fin-1', args: { amount: 5000, payee: 'urgent transfer' } }));
    expect(raised.code).toBe('BAD_INPUT');
    expect(raised.message).toContain("mentions 'urgent'");
    expect(await keel.store.getWorkflow(workflow.id)).toMatchObject({ status: 'waiting', waitingFor: 'approval' });
  });

  it('expires an undecided request at its deadline: the agent sees the expiry and the payment never runs', async () => {
    open({ expiresAfterMs: 60_000 });
    const { workflow, request } = await parkedClaim();
    expect(workflow.wakeAt).toBe(request.expiresAt);
    clock.advance(60_001);
    expect((await refusal(keel.approve(request.id, { by: 'fin-1' }))).message).toContain('expired');
    await keel.work({ once: true, concurrency: 1, pollMs: 1 });
    expect(await keel.store.getWorkflow(workflow.id)).toMatchObject({ status: 'completed', outcome: 'declined' });
    expect(await keel.store.getApproval(request.id)).toMatchObject({ status: 'expired', decidedBy: 'keel' });
    expect(ledger.declined.get(workflow.id)).toContain('expired');
    expect(ledger.payments.size).toBe(0);
  });

  it('escalates an undecided request along a three-level chain on durable timers, then expires it', async () => {
    open({ approvers: 'team-lead', escalation: ['finance', 'cfo'], expiresAfterMs: 60_000 });
    const { workflow, request } = await parkedClaim();
    expect(request.approvers).toBe('team-lead');
    const seen: (string | null)[] = [request.approvers];
    for (let level = 0; level < 2; level++) {
      clock.advance(60_001);
      // A new Keel each time: the timer is the row's wake_at, not anything in a worker's memory.
      await keel.close();
      open({ approvers: 'team-lead', escalation: ['finance', 'cfo'], expiresAfterMs: 60_000 });
      await keel.work({ once: true, concurrency: 1, pollMs: 1 });
      const current = (await keel.store.getApproval(request.id))!;
      expect(current).toMatchObject({ status: 'pending', expiresAt: clock.now() + 60_000 });
      expect(await keel.store.getWorkflow(workflow.id)).toMatchObject({ status: 'waiting', waitingFor: 'approval', wakeAt: current.expiresAt });
      seen.push(current.approvers);
    }
    expect(seen).toEqual(['team-lead', 'finance', 'cfo']);
    clock.advance(60_001);
    await keel.work({ once: true, concurrency: 1, pollMs: 1 });
    expect(await keel.store.getApproval(request.id)).toMatchObject({ status: 'expired', approvers: 'cfo' });
    expect(await keel.store.getWorkflow(workflow.id)).toMatchObject({ status: 'completed', outcome: 'declined' });
    expect(ledger.payments.size).toBe(0);
    const audit = await keel.store.readAudit({ workflowId: workflow.id });
    expect(audit.filter((entry) => entry.kind === 'approval.escalated').map((entry) => (entry.data as { to: string }).to)).toEqual(['finance', 'cfo']);
    expect(audit.find((entry) => entry.kind === 'approval.decided')).toMatchObject({ outcome: 'expired', actor: 'keel:worker-1' });
  });

  it('a decision made while a worker escalates the request stands: the escalation is dropped', async () => {
    open({ approvers: 'team-lead', escalation: ['finance'], expiresAfterMs: 60_000 });
    const { workflow, request } = await parkedClaim();
    clock.advance(60_001);
    // The worker reads the pending request, then a person approves it before the worker's escalation commits.
    const store = keel.store;
    const original = store.approvalForStep.bind(store);
    let decided = false;
    store.approvalForStep = async (workflowId, step) => {
      const found = await original(workflowId, step);
      if (!decided) {
        decided = true;
        await store.decideApproval({ id: request.id, status: 'approved', by: 'fin-1' }, []);
      }
      return found;
    };
    await keel.run(workflow.id);
    expect(await store.getApproval(request.id)).toMatchObject({ status: 'approved', approvers: 'team-lead', decidedBy: 'fin-1' });
    expect(await store.getWorkflow(workflow.id)).toMatchObject({ status: 'completed', outcome: 'paid' });
    expect([...ledger.payments.values()].map((payment) => payment.count)).toEqual([1]);
  });

  it('lets only a principal holding the named group decide; a request naming none may be decided by anyone but the requester', async () => {
    open();
    const { request } = await parkedClaim();
    const stranger = await refusal(keel.approve(request.id, { by: 'mallory' }));
    expect(stranger.code).toBe('NOT_APPROVER');
    expect(stranger.message).toContain("there is no principal 'mallory'");
    await keel.store.savePrincipal({ id: 'dev-1', roles: ['engineering'] }, 'test-setup');
    const outsider = await refusal(keel.reject(request.id, { by: 'dev-1', reason: 'not mine to pay' }));
    expect(outsider.code).toBe('NOT_APPROVER');
    expect(outsider.message).toContain("only finance may, and dev-1 holds the roles 'engineering'");
    expect(outsider.message).toContain('keel principals add dev-1 --role finance');
    expect((await keel.store.getApproval(request.id))!.status).toBe('pending');
    expect(await keel.approve(request.id, { by: 'fin-1' })).toMatchObject({ status: 'approved', decidedBy: 'fin-1' });

    await keel.close();
    open({ approvers: undefined });
    const unnamed = await parkedClaim();
    expect(unnamed.request.approvers).toBeNull();
    expect(await keel.reject(unnamed.request.id, { by: 'anyone', reason: 'over budget' })).toMatchObject({ status: 'rejected', decidedBy: 'anyone' });
  });

  it('refuses an unknown request id and a rejection without a reason', async () => {
    open();
    expect((await refusal(keel.approve('apr_nope', { by: 'fin-1' }))).code).toBe('UNKNOWN_APPROVAL');
    const { request } = await parkedClaim();
    expect((await refusal(keel.reject(request.id, { by: 'fin-1', reason: ' ' }))).code).toBe('BAD_INPUT');
  });
});
