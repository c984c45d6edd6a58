// The permission matrix of the expense-approval example (docs/security.md): for each of its five
// tools, a principal with the grant, without it, with an expired grant, with a grant for another
// task type, and with the grant revoked while the workflow runs. Only the fully granted workflow
// gets past the tool; in every other case the call is denied before it runs and the workflow fails
// (the example fails on a denial: its clerk cannot fix a missing permission). Every call's
// permission decision is in the audit log, with the policies that decided and the reason.

import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../src/index.js';
import { expenseApprovalUnattended } from '../examples/expense-approval/agent.js';
import { afterTool, cleanClaim, malformedClaim, openSecureExpenseWorld, toolPermissions, type ExampleTool, type SecureExpenseWorld } from './support/secure-expense.js';

const principal = 'alice';
const tools = Object.keys(toolPermissions) as ExampleTool[];
/** The tool that runs just before each one on its path (extract_claim is first: its grant is revoked between start and run). */
const before: Record<ExampleTool, ExampleTool | undefined> = {
  extract_claim: undefined,
  check_policy: 'extract_claim',
  pay_claim: 'check_policy',
  generate_report: 'pay_claim',
  reject_claim: 'extract_claim',
};

type Case = 'granted' | 'no grant' | 'expired grant' | 'grant for another task type' | 'grant revoked mid-workflow';
const denials: Record<Exclude<Case, 'granted'>, { code: string; reason: RegExp }> = {
  'no grant': { code: 'no-grant', reason: /'alice' holds no grant of '[\w:]+'/ },
  'expired grant': { code: 'grant-expired', reason: /gr_\w+ expired at 2026-06-01T09:01:00.000Z/ },
  'grant for another task type': { code: 'other-task-type', reason: /gr_\w+ is for task type travel-booking, not 'expense-approval'/ },
  'grant revoked mid-workflow': { code: 'grant-revoked', reason: /gr_\w+ was revoked by security-officer at / },
};

let world: SecureExpenseWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

async function runCase(tool: ExampleTool, which: Case) {
  const permission = toolPermissions[tool];
  let revokeNow: () => Promise<void> = async () => {};
  const preceding = before[tool];
  const agent = which === 'grant revoked mid-workflow' && preceding ? afterTool(expenseApprovalUnattended, preceding, () => revokeNow()) : expenseApprovalUnattended;
  world = await openSecureExpenseWorld({ agent });
  const { keel, store, clock } = world;
  const grants = await world.grantAll(principal, [permission]);
  if (which !== 'no grant') {
    grants[permission] = await world.grant({
      principalId: principal,
      permission,
      taskTypes: [which === 'grant for another task type' ? 'travel-booking' : expenseApprovalUnattended.name],
      expiresAt: which === 'expired grant' ? clock.now() + 60_000 : undefined,
    });
  }
  const task = tool === 'reject_claim' ? malformedClaim('C-0042') : cleanClaim('C-0042');
  const started = await keel.start(expenseApprovalUnattended.name, task, { principal: { id: principal } });
  if (which === 'expired grant') clock.advance(120_000);
  const revoke = async () => {
    revokeNow = async () => {};
    await store.revokeGrant(grants[permission]!.id, { by: 'security-officer', reason: 'moved to another team' });
  };
  if (which === 'grant revoked mid-workflow') {
    if (preceding) revokeNow = revoke;
    else await revoke();
  }
  const workflow = await keel.run(started.id);
  const audit = await store.readAudit({ workflowId: started.id });
  return { workflow, audit, grants, permission, ledger: world.payments.ledger() };
}

function decisionsOf(audit: readonly AuditEntry[]) {
  return audit.filter((entry) => entry.kind === 'permission.decided');
}

describe.each(tools)('tool %s', (tool) => {
  it('runs with the grant, and the audit names the grant that permitted it', async () => {
    const { workflow, audit, grants, permission } = await runCase(tool, 'granted');

    expect(workflow).toMatchObject({ status: 'completed', outcome: tool === 'reject_claim' ? 'rejected' : 'paid' });
    const decision = decisionsOf(audit).find((entry) => entry.subject === tool)!;
    expect(decision).toMatchObject({ outcome: 'permit', actor: principal, data: { permission, taskType: 'expense-approval', policyIds: [grants[permission]!.id] } });
    expect((decision.data as { reason: string }).reason).toBe(`permitted by grant ${grants[permission]!.id}`);
    expect(audit.some((entry) => entry.kind === 'tool.called' && entry.subject === tool)).toBe(true);
    // Every decided action went through the permission gate, and every permitted call ran.
    expect(decisionsOf(audit).map((entry) => entry.subject)).toEqual(audit.filter((entry) => entry.kind === 'decision.made').map((entry) => entry.subject));
    expect(decisionsOf(audit).every((entry) => entry.outcome === 'permit')).toBe(true);
    const started = audit.find((entry) => entry.kind === 'workflow.started')!;
    expect((started.data as { permissions: { effective: string[] } }).permissions.effective).toContain(permission);
  });

  it.each(Object.keys(denials) as (keyof typeof denials)[])('is denied with %s, before it runs, and the denial is audited with its reason', async (which) => {
    const { workflow, audit, permission, ledger } = await runCase(tool, which);

    expect(workflow).toMatchObject({ status: 'failed', failure: { code: 'PERMISSION_DENIED', tool, errorClass: 'permission-denied' } });
    expect(workflow.failure!.message).toMatch(new RegExp(`^Permission denied: tool '${tool}' \\(workflow ${workflow.id}, step \\d+\\) needs '${permission}' on claim:C-0042`));
    const denied = decisionsOf(audit).filter((entry) => entry.outcome === 'deny');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ subject: tool, actor: principal, data: { permission, code: denials[which].code, policyIds: [], next: 'fail' } });
    expect((denied[0]!.data as { reason: string }).reason).toMatch(denials[which].reason);
    // The call never ran: no tool.called for it, nothing paid when the payment was denied.
    expect(audit.some((entry) => entry.kind === 'tool.called' && entry.subject === tool)).toBe(false);
    if (tool === 'pay_claim') expect(ledger).toEqual([]);
    // The tools before it were permitted and ran; every decision has its permission decision.
    expect(decisionsOf(audit).map((entry) => entry.subject)).toEqual(audit.filter((entry) => entry.kind === 'decision.made').map((entry) => entry.subject));
    expect(audit.at(-1)).toMatchObject({ kind: 'workflow.failed', subject: 'PERMISSION_DENIED' });
    if (which === 'grant revoked mid-workflow') {
      const revoked = (await world!.store.readAudit()).find((entry) => entry.kind === 'grant.revoked')!;
      expect(revoked).toMatchObject({ actor: 'security-officer', data: { principal, permission, reason: 'moved to another team' } });
      expect(revoked.seq).toBeLessThan(denied[0]!.seq);
      const started = audit.find((entry) => entry.kind === 'workflow.started')!;
      expect((started.data as { permissions: { effective: string[] } }).permissions.effective).toContain(permission);
    }
  });
});
