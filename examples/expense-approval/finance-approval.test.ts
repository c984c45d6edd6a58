// The expense example's finance approval: a batch of sample claims runs; payments above the limit
// and low-confidence ones wait; someone outside finance cannot decide them; finance approves all
// but one; the approved claims are paid exactly once, the rejected one is rejected with finance's
// reason, nothing else waits.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeel, openSqliteStore } from '../../src/index.js';
import { scriptedModel } from '../../src/testing.js';
import { expenseApproval, script } from './agent.js';
import { sampleClaims } from './claims.js';
import { approvalLimit, financeGroup } from './finance-approval.js';
import { startPaymentsService, type PaymentsService } from './payments-service.js';
import { ContextKey } from './tools.js';

const paymentsUrlVariable = 'EXPENSE_PAYMENTS_URL';
let directory: string | undefined;
let service: PaymentsService | undefined;
const previousUrl = process.env[paymentsUrlVariable];

afterEach(async () => {
  if (previousUrl === undefined) delete process.env[paymentsUrlVariable];
  else process.env[paymentsUrlVariable] = previousUrl;
  await service?.close();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

describe('expense-approval with finance approval', () => {
  it('holds large and uncertain payments for finance; approved ones pay once, a rejected one is rejected with the reason', async () => {
    directory = mkdtempSync(join(tmpdir(), 'keel-expense-finance-'));
    service = await startPaymentsService({ latencyMs: 1 });
    process.env[paymentsUrlVariable] = service.url;
    const keel = createKeel({ store: openSqliteStore({ path: join(directory, 'keel.db') }), agents: [expenseApproval], model: scriptedModel(script) });
    try {
      for (const sample of sampleClaims(24, 11)) await keel.start(expenseApproval.name, sample.input, { principal: { id: 'employee' } });
      await keel.work({ concurrency: 4, once: true });
      const waiting = await keel.approvals();
      expect(waiting.length).toBeGreaterThan(1);
      for (const request of waiting) {
        expect(request).toMatchObject({ tool: 'pay_claim', approvers: 'finance', status: 'pending' });
        const amount = (request.args as { amount: number }).amount;
        expect(request.reasons.some((reason) => reason === `payment above ${approvalLimit} EUR` || reason.startsWith('confidence'))).toBe(true);
        if (amount > approvalLimit) expect(request.reasons).toContain(`payment above ${approvalLimit} EUR`);
      }
      // Both rules are exercised by this batch.
      expect(waiting.some((request) => (request.args as { amount: number }).amount > approvalLimit)).toBe(true);
      expect(waiting.some((request) => request.reasons.some((reason) => reason.startsWith('confidence')))).toBe(true);
      // Nothing held has been paid; what was paid finished without a person.
      const paidUnattended = (await keel.store.listWorkflows({ status: 'completed' })).filter((workflow) => workflow.outcome === 'paid').length;
      expect(service.ledger()).toHaveLength(paidUnattended);

      // The samples say which claims finance holds.
      const held = sampleClaims(24, 11).filter((sample) => sample.needsApproval).map((sample) => sample.input.claimId);
      const heldWorkflows = await Promise.all(waiting.map((request) => keel.store.getWorkflow(request.workflowId)));
      expect(heldWorkflows.map((workflow) => (workflow!.input as { claimId: string }).claimId).sort()).toEqual([...held].sort());

      await expect(keel.approve(waiting[0]!.id, { by: 'employee-2' })).rejects.toMatchObject({ code: 'NOT_APPROVER' });
      await keel.store.savePrincipal({ id: 'finance-lead', roles: [financeGroup] }, 'test-setup');
      const [rejected, ...approved] = waiting;
      await keel.reject(rejected!.id, { by: 'finance-lead', reason: 'the trip was not pre-approved' });
      for (const request of approved) await keel.approve(request.id, { by: 'finance-lead' });
      await keel.work({ concurrency: 4, once: true });

      expect((await keel.store.countByStatus()).waiting).toBe(0);
      const ledger = service.ledger();
      for (const request of approved) {
        expect(ledger.filter((payment) => payment.idempotencyKey === `${request.workflowId}:${request.step}`)).toHaveLength(1);
      }
      expect(ledger.filter((payment) => payment.idempotencyKey.startsWith(`${rejected!.workflowId}:`))).toEqual([]);
      expect(await keel.store.getWorkflow(rejected!.workflowId)).toMatchObject({ status: 'completed', outcome: 'rejected' });
      const rejection = (await keel.store.loadContext(rejected!.workflowId))[ContextKey.rejection] as { reason: string };
      expect(rejection.reason).toContain('the trip was not pre-approved');
    } finally {
      await keel.close();
    }
  });
});
