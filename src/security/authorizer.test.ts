// Cedar decisions for single calls: grants narrowed by task type, resources and expiry, operator
// forbid policies on arguments and tools, policy errors failing closed, and arguments Cedar cannot
// hold. Also the parsing of operator policies and the conversion of arguments to Cedar values.

import { describe, expect, it } from 'vitest';
import type { Grant } from '../store/types.js';
import { Authorizer, type PermissionRequest } from './authorizer.js';
import { CedarValueError, decimalText, toCedarValue } from './cedar-values.js';
import { matchesPattern } from './grant-policies.js';
import { parseOperatorPolicies } from './operator-policies.js';

const now = Date.UTC(2026, 5, 1);

function grant(changes: Partial<Grant> = {}): Grant {
  return {
    id: 'gr_pay',
    principalId: 'alice',
    permission: 'payments:write',
    taskTypes: ['expense-approval'],
    resources: ['payee:DE89*', 'claim:*'],
    expiresAt: null,
    createdBy: 'ops',
    createdAt: now - 1000,
    revokedAt: null,
    revokedBy: null,
    lastUsedAt: null,
    ...changes,
  };
}

function request(changes: Partial<PermissionRequest> = {}): PermissionRequest {
  return {
    principal: { id: 'alice', roles: ['clerk'], department: 'finance' },
    permission: 'payments:write',
    taskType: 'expense-approval',
    tool: 'pay_claim',
    resources: ['claim:C-1', 'payee:DE89370400440532013000'],
    args: { claimId: 'C-1', amount: 412.5, payee: 'DE89370400440532013000' },
    workflowId: 'wf_1',
    step: 2,
    now,
    grants: [grant()],
    ...changes,
  };
}

const maxPayment = `@id("max-payment") forbid (principal, action == Keel::Action::"payments:write", resource) when { context.args.amount.greaterThan(decimal("1000.0")) };`;

describe('Authorizer', () => {
  const open = new Authorizer({});

  it('permits a call every resource of which a live grant covers, naming the grant', () => {
    expect(open.decide(request())).toEqual({ outcome: 'permit', policyIds: ['gr_pay'], reason: 'permitted by grant gr_pay' });
  });

  it('denies by default, and says which condition of which grant did not hold', () => {
    expect(open.decide(request({ grants: [] }))).toMatchObject({ outcome: 'deny', code: 'no-grant', policyIds: [] });
    expect(open.decide(request({ resources: ['claim:C-1', 'payee:FR7630006000011234567890189'] }))).toMatchObject({
      code: 'resource-out-of-scope',
      reason: "no grant of 'payments:write' held by 'alice' covers it: gr_pay covers payee:DE89*, claim:*, not payee:FR7630006000011234567890189",
    });
    expect(open.decide(request({ taskType: 'travel-booking' }))).toMatchObject({ code: 'other-task-type' });
    expect(open.decide(request({ grants: [grant({ expiresAt: now })] }))).toMatchObject({ code: 'grant-expired' });
    expect(open.decide(request({ grants: [grant({ revokedAt: now + 5000, revokedBy: 'ops' })] }))).toMatchObject({ code: 'grant-revoked' });
    expect(open.decide(request({ permission: 'payments:refund' }))).toMatchObject({ code: 'no-grant' });
  });

  it('denies when an operator forbid policy applies, naming it, whatever the grants say', () => {
    const limited = new Authorizer(parseOperatorPolicies([maxPayment]));
    expect(limited.decide(request({ args: { amount: 1000 } }))).toMatchObject({ outcome: 'permit' });
    expect(limited.decide(request({ args: { amount: 1000.01 } }))).toMatchObject({ outcome: 'deny', code: 'forbidden', policyIds: ['max-payment'] });
    // Rounded away from zero at the fourth place: a fraction above the limit is above it.
    expect(limited.decide(request({ args: { amount: 1000.00001 } }))).toMatchObject({ outcome: 'deny', code: 'forbidden' });
  });

  it('forbids a tool for a task type, and reads the principal\'s roles and department', () => {
    const policies = parseOperatorPolicies([
      `@id("no-pay-from-reports") forbid (principal, action, resource) when { context.tool == "pay_claim" && context.taskType == "report-writer" };
       @id("finance-only") forbid (principal, action == Keel::Action::"payments:write", resource) unless { principal has department && principal.department == "finance" };`,
    ]);
    const authorizer = new Authorizer(policies);
    const anyTask = grant({ taskTypes: null });
    expect(authorizer.decide(request({ grants: [anyTask] }))).toMatchObject({ outcome: 'permit' });
    expect(authorizer.decide(request({ grants: [anyTask], taskType: 'report-writer' }))).toMatchObject({ code: 'forbidden', policyIds: ['no-pay-from-reports'] });
    expect(authorizer.decide(request({ principal: { id: 'alice', department: 'sales' } }))).toMatchObject({ code: 'forbidden', policyIds: ['finance-only'] });
    expect(authorizer.decide(request({ principal: { id: 'alice' } }))).toMatchObject({ code: 'forbidden', policyIds: ['finance-only'] });
  });

  it('fails closed: a policy that cannot be evaluated for a call denies it', () => {
    const careless = new Authorizer(parseOperatorPolicies([`@id("max-total") forbid (principal, action, resource) when { context.args.total.greaterThan(decimal("10.0")) };`]));
    const decision = careless.decide(request());
    expect(decision).toMatchObject({ outcome: 'deny', code: 'policy-error', policyIds: ['max-total'] });
    expect(decision.reason).toContain("policy 'max-total': ");
    expect(decision.reason).toContain('guard optional attributes with `has`');
  });

  it('denies a call whose arguments hold a number no policy can test', () => {
    expect(open.decide(request({ args: { amount: 1e300 } }))).toMatchObject({ outcome: 'deny', code: 'bad-request' });
  });

  it('treats grant fields as data: quotes and wildcards in ids cannot widen a grant', () => {
    const odd = grant({ principalId: 'al"ice', resources: ['claim:"C-1"'] });
    expect(open.decide(request({ principal: { id: 'al"ice' }, grants: [odd], resources: ['claim:"C-1"'] }))).toMatchObject({ outcome: 'permit' });
    expect(open.decide(request({ principal: { id: 'al"ice' }, grants: [odd], resources: ['claim:C-1'] }))).toMatchObject({ outcome: 'deny' });
    expect(open.decide(request({ principal: { id: 'alice' }, grants: [odd] }))).toMatchObject({ outcome: 'deny' });
  });
});

describe('parseOperatorPolicies', () => {
  it('keeps forbid policies by their @id', () => {
    expect(Object.keys(parseOperatorPolicies([maxPayment, '']))).toEqual(['max-payment']);
  });

  it.each([
    ['a permit', `@id("p") permit (principal, action, resource);`, /is a permit policy; operator policies may only forbid/],
    ['no id', `forbid (principal, action, resource);`, /has no @id\("..."\) annotation/],
    ['a grant-like id', `@id("gr_1") forbid (principal, action, resource);`, /policy id 'gr_1' is not usable/],
    ['a duplicate id', `@id("x") forbid (principal, action, resource); @id("x") forbid (principal, action, resource);`, /two policies have the id 'x'/],
    ['bad syntax', `@id("x") forbid (principal, action, resource) when {`, /they do not parse/],
  ])('refuses %s', (_name, text, message) => {
    expect(() => parseOperatorPolicies([text])).toThrow(message);
  });
});

describe('Cedar values of arguments', () => {
  it('writes every number as a decimal, rounding away from zero past four places', () => {
    expect([412.5, 1000, 0.1, -2.5, 1.23456, 0.00001, -1.00001].map((value) => decimalText(value))).toEqual(['412.5', '1000.0', '0.1', '-2.5', '1.2346', '0.0001', '-1.0001']);
    expect(() => decimalText(Number.NaN)).toThrow(CedarValueError);
  });

  it('drops nulls and keeps records, sets and strings', () => {
    expect(toCedarValue({ a: null, b: ['x', 2], c: { d: true } })).toEqual({ b: ['x', { __extn: { fn: 'decimal', arg: '2.0' } }], c: { d: true } });
    expect(() => toCedarValue({ when: new Date(0) })).toThrow(/args.when is a Date/);
  });

  it("matches resource patterns as Cedar's like does", () => {
    expect(matchesPattern('payee:DE89370400440532013000', 'payee:DE89*')).toBe(true);
    expect(matchesPattern('payee:DE79', 'payee:DE89*')).toBe(false);
    expect(matchesPattern('claim:a.b', 'claim:a.b')).toBe(true);
    expect(matchesPattern('claim:aXb', 'claim:a.b')).toBe(false);
  });
});
