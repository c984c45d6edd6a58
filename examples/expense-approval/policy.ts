// The expense policy: what the company reimburses, as plain data and pure functions, so the rules
// can be read, tested and changed in one place. The check_policy tool applies them; the scripted
// model reads `isNearLimit` to lower its confidence on claims a person may want to look at.
// Nothing here does I/O: whether a claim was already paid is asked by the tool and passed in.

import type { ExpenseClaim } from './claim-document.js';

/** Highest amount reimbursed per claim, by category, in the policy currency. */
export const categoryLimits = {
  travel: 1500,
  lodging: 800,
  meals: 120,
  office: 400,
  software: 600,
} as const;

export type ExpenseCategory = keyof typeof categoryLimits;

export const expenseCategories = Object.keys(categoryLimits) as ExpenseCategory[];

/** Claims are reimbursed in this currency only; the limits are in it. */
export const policyCurrency = 'EUR';

/** Above this amount a receipt must be attached. */
export const receiptRequiredAbove = 25;

/** A claim at or above this share of its category limit is "near the limit". */
export const nearLimitShare = 0.9;

/** Payments above this (EUR) need the finance group's approval (finance-approval.ts). */
export const approvalLimit = 1000;

export interface PolicyResult {
  compliant: boolean;
  violations: string[];
}

export function isExpenseCategory(value: string): value is ExpenseCategory {
  return Object.hasOwn(categoryLimits, value);
}

/** Applies every rule and lists all violations, so a rejection names each problem at once. */
export function evaluatePolicy(claim: ExpenseClaim, alreadyPaid: boolean): PolicyResult {
  const violations: string[] = [];
  const limit = categoryLimits[claim.category];
  if (claim.currency !== policyCurrency) {
    violations.push(`currency ${claim.currency} is not reimbursed: claims must be in ${policyCurrency}`);
  } else if (claim.amount > limit) {
    violations.push(`amount ${formatMoney(claim.amount, claim.currency)} is over the ${claim.category} limit of ${formatMoney(limit, policyCurrency)}`);
  }
  if (!claim.receipt && claim.amount > receiptRequiredAbove) {
    violations.push(`no receipt attached: a receipt is required above ${formatMoney(receiptRequiredAbove, policyCurrency)} (claimed ${formatMoney(claim.amount, claim.currency)})`);
  }
  if (alreadyPaid) {
    violations.push(`claim ${claim.claimId} was already paid: this is a duplicate resubmission`);
  }
  return { compliant: violations.length === 0, violations };
}

/** Within policy but close to the category limit: worth a second look before paying. */
export function isNearLimit(claim: Pick<ExpenseClaim, 'category' | 'amount'>): boolean {
  const limit = categoryLimits[claim.category];
  return claim.amount >= limit * nearLimitShare && claim.amount <= limit;
}

/**
 * A compliant claim whose payment waits for the finance group under the agent's approval policy:
 * above the approval limit, or near its category limit (the clerk's confidence drops there).
 */
export function needsFinanceApproval(claim: Pick<ExpenseClaim, 'category' | 'amount'>): boolean {
  return claim.amount > approvalLimit || isNearLimit(claim);
}

export function formatMoney(amount: number, currency: string): string {
  return `${amount.toFixed(2)} ${currency}`;
}
