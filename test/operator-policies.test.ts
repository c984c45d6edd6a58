// Operator forbid policies on the expense-approval example (docs/security.md): a hard limit on
// what any grant allows. "Never pay above 1000 EUR" stops a claim the company policy would pay
// (travel is reimbursed up to 1500 EUR), names the policy in the audit, and leaves smaller
// payments alone; "never write reports for expense claims" stops one tool for one task type.

import { afterEach, describe, expect, it } from 'vitest';
import { expenseApprovalUnattended } from '../examples/expense-approval/agent.js';
import { cleanClaim, openSecureExpenseWorld, type SecureExpenseWorld } from './support/secure-expense.js';

const maxPayment = `
// Payments above 1000 EUR go through the bank's own dual control, never through an agent.
@id("max-payment-1000")
forbid (principal, action == Keel::Action::"payments:write", resource)
when { context.args has amount && context.args.amount.greaterThan(decimal("1000.0")) };`;

const noReports = `@id("no-reports-for-expenses") forbid (principal, action, resource) when { context.tool == "generate_report" && context.taskType == "expense-approval" };`;

let world: SecureExpenseWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

async function payClaims(policies: string, amounts: number[]) {
  world = await openSecureExpenseWorld({ keel: { security: { policies } } });
  await world.grantAll('alice');
  const results = [];
  for (const [index, amount] of amounts.entries()) {
    const started = await world.keel.start(expenseApprovalUnattended.name, cleanClaim(`C-${index + 1}`, { amount }), { principal: { id: 'alice' } });
    results.push({ workflow: await world.keel.run(started.id), audit: await world.store.readAudit({ workflowId: started.id }) });
  }
  return results;
}

describe('operator forbid policies', () => {
  it('never pays above the limit, whatever the grants allow, and audits the policy that decided', async () => {
    const [large, small] = await payClaims(maxPayment, [1200, 412.5]);

    expect(large!.workflow).toMatchObject({ status: 'failed', failure: { code: 'PERMISSION_DENIED', tool: 'pay_claim' } });
    expect(large!.workflow.failure!.message).toContain("operator policy 'max-payment-1000' forbids it for claim:C-1");
    expect(large!.workflow.failure!.message).toContain('Only an operator can change the policies (max-payment-1000)');
    const denied = large!.audit.find((entry) => entry.kind === 'permission.decided' && entry.outcome === 'deny')!;
    expect(denied).toMatchObject({ subject: 'pay_claim', data: { code: 'forbidden', policyIds: ['max-payment-1000'] } });
    expect(small!.workflow).toMatchObject({ status: 'completed', outcome: 'paid' });
    expect(world!.payments.ledger().map((payment) => payment.amount)).toEqual([412.5]);
  });

  it('forbids one tool for one task type', async () => {
    const [claim] = await payClaims(noReports, [412.5]);

    expect(claim!.workflow).toMatchObject({ status: 'failed', failure: { code: 'PERMISSION_DENIED', tool: 'generate_report' } });
    expect(claim!.audit.find((entry) => entry.kind === 'permission.decided' && entry.outcome === 'deny')).toMatchObject({ data: { policyIds: ['no-reports-for-expenses'] } });
  });

  it('refuses to start with a policy that would grant instead of forbid', async () => {
    await expect(openSecureExpenseWorld({ keel: { security: { policies: '@id("all") permit (principal, action, resource);' } } })).rejects.toMatchObject({
      code: 'INVALID_POLICY',
      message: expect.stringContaining('is a permit policy; operator policies may only forbid'),
    });
  });
});
