// Each built-in approval rule, alone and composed: when it fires and the reason it gives.

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTool, type AnyTool } from '../tools/tool.js';
import { allOf, argsMatch, confidenceBelow, evaluateApproval, keywords, principalHasRole, principalLacksRole, type ProposedAction } from './policy.js';

const pay = defineTool({ name: 'pay_claim', description: 'Pays a claim.', input: z.object({ amount: z.number() }), sideEffect: true, execute: () => null });
const lookup = defineTool({ name: 'lookup', description: 'Reads a policy.', input: z.object({}), execute: () => null });
const wire = defineTool({ name: 'wire', description: 'Sends money abroad.', input: z.object({}), sideEffect: true, requiresApproval: true, execute: () => null });

function action(overrides: Partial<ProposedAction> & { tool?: AnyTool } = {}): ProposedAction {
  return { tool: pay, args: { amount: 500 }, decision: { reasoning: 'Within policy.', confidence: 0.9 }, principal: { id: 'alice', roles: ['employee'] }, agent: 'payer', state: 'review', ...overrides };
}

describe('approval rules', () => {
  it('confidence below the threshold (default 0.8), for side-effecting calls unless told otherwise', () => {
    const rule = confidenceBelow();
    expect(rule.check(action({ decision: { confidence: 0.79 } }))).toBe('confidence 0.79 is below 0.8');
    expect(rule.check(action({ decision: { confidence: 0.8 } }))).toBeUndefined();
    expect(rule.check(action({ decision: {} }))).toContain('no confidence');
    expect(rule.check(action({ tool: lookup, decision: { confidence: 0.1 } }))).toBeUndefined();
    expect(confidenceBelow(0.5, { readsToo: true }).check(action({ tool: lookup, decision: { confidence: 0.1 } }))).toBe('confidence 0.1 is below 0.5');
  });

  it('a tool marked as requiring approval, always', () => {
    expect(evaluateApproval(undefined, action({ tool: wire }))).toEqual(["tool 'wire' always requires approval"]);
    expect(evaluateApproval(undefined, action())).toEqual([]);
  });

  it('a predicate over the arguments, and one that cannot read them', () => {
    const rule = argsMatch<{ amount: number }>('amount over 1000', (args) => args.amount > 1000);
    expect(rule.check(action({ args: { amount: 1001 } }))).toBe('amount over 1000');
    expect(rule.check(action({ args: { amount: 1000 } }))).toBeUndefined();
    const throws = argsMatch<{ nested: { amount: number } }>('nested amount over 1000', (args) => args.nested.amount > 1000);
    expect(throws.check(action({ args: {} }))).toContain('could not read the arguments');
  });

  it('keywords in the tool, the reasoning or the arguments, as whole words', () => {
    const rule = keywords(['payment', 'delete']);
    expect(rule.check(action({ args: { memo: 'Final payment for March' } }))).toBe("the action mentions 'payment'");
    expect(rule.check(action({ decision: { reasoning: 'Delete the duplicate.' }, args: {} }))).toBe("the action mentions 'delete'");
    expect(rule.check(action({ args: { memo: 'payments' } }))).toBeUndefined();
    expect(keywords(['pay']).check(action())).toBe("the action mentions 'pay'");
  });

  it("the principal's role", () => {
    expect(principalLacksRole(['finance']).check(action())).toBe("principal 'alice' has none of the roles 'finance'");
    expect(principalLacksRole(['finance']).check(action({ principal: { id: 'fin', roles: ['finance'] } }))).toBeUndefined();
    expect(principalHasRole(['contractor']).check(action({ principal: { id: 'c', roles: ['contractor'] } }))).toBe("principal 'c' acts as 'contractor'");
    expect(principalHasRole(['contractor']).check(action())).toBeUndefined();
  });

  it('composes: every rule that fires gives its reason; allOf needs all of its rules', () => {
    const big = argsMatch<{ amount: number }>('amount over 1000', (args) => args.amount > 1000);
    const policy = { rules: [confidenceBelow(), big], tools: { pay_claim: [principalLacksRole(['finance'])] } };
    expect(evaluateApproval(policy, action({ args: { amount: 5000 }, decision: { confidence: 0.5 } }))).toEqual([
      'confidence 0.5 is below 0.8',
      'amount over 1000',
      "principal 'alice' has none of the roles 'finance'",
    ]);
    expect(evaluateApproval(policy, action({ principal: { id: 'fin', roles: ['finance'] } }))).toEqual([]);
    const both = allOf(big, principalHasRole(['contractor']));
    expect(both.check(action({ args: { amount: 5000 } }))).toBeUndefined();
    expect(both.check(action({ args: { amount: 5000 }, principal: { id: 'c', roles: ['contractor'] } }))).toBe("amount over 1000 and principal 'c' acts as 'contractor'");
  });
});
