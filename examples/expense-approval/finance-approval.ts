// The finance group's approval of the expense-approval agent (src/approval, docs/approvals.md):
// payments above 1,000 EUR, and payments the clerk is unsure of (confidence below 0.8, e.g. claims
// near their category limit), wait for a principal with the 'finance' role before they run. A
// rejected payment comes back to the clerk, who rejects the claim with the finance group's reason.

import { argsMatch, confidenceBelow, type ApprovalPolicy } from '../../src/index.js';
import { approvalLimit } from './policy.js';

export { approvalLimit };

/** The group (a principal's role) that decides the held payments. */
export const financeGroup = 'finance';

export const financeApprovalPolicy: ApprovalPolicy = {
  tools: {
    pay_claim: [confidenceBelow(0.8), argsMatch<{ amount: number }>(`payment above ${approvalLimit} EUR`, (args) => args.amount > approvalLimit)],
  },
  approvers: financeGroup,
  expiresAfterMs: 3 * 24 * 3600_000,
};
