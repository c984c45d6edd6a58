// The expense-approval agent with human approval (src/approval, docs/approvals.md): payments above
// 1,000 EUR, and payments the clerk is unsure of (confidence below 0.8, e.g. claims near their
// category limit), wait for the finance group before they run. A rejected payment comes back to
// the clerk, who rejects the claim with the finance group's reason.
//
// A variant beside the default agent rather than a change to it: the demo, the crash test and the
// other examples' tests expect every claim to finish unattended.

import { argsMatch, confidenceBelow, defineAgent, type Agent, type ApprovalPolicy } from '../../src/index.js';
import { expenseApproval } from './agent.js';

/** Payments above this (EUR) need the finance group's approval. */
export const approvalLimit = 1000;

export const financeApprovalPolicy: ApprovalPolicy = {
  tools: {
    pay_claim: [confidenceBelow(0.8), argsMatch<{ amount: number }>(`payment above ${approvalLimit} EUR`, (args) => args.amount > approvalLimit)],
  },
  approvers: 'finance',
  expiresAfterMs: 3 * 24 * 3600_000,
};

export const expenseApprovalWithFinance: Agent = defineAgent({ ...expenseApproval, approval: financeApprovalPolicy });

export default expenseApprovalWithFinance;
