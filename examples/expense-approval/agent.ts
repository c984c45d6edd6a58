// The expense-approval agent: the seed pattern of a production Keel agent. One agent, five
// typed tools, an explicit state machine: a claim document is read (intake), checked against the
// policy (review), paid exactly once (payment), and reported (reporting); a malformed, non-compliant
// or duplicate claim ends in `rejected` with a reason. Payments above 1,000 EUR and those the clerk
// is unsure of wait for the finance group's approval (finance-approval.ts). Calls to the payments service go through
// Keel's runner with the service's breaker, rate budget and credentials (payments-access.ts).
// Run it with a real model (KEEL_MODEL) or, for tests and the demo, with `scriptedModel(script)`.

import { defineAgent, type Agent } from '../../src/index.js';
import { claimTaskInput } from './claim-document.js';
import { financeApprovalPolicy } from './finance-approval.js';
import type { PolicyResult } from './policy.js';
import { categoryLimits, policyCurrency, receiptRequiredAbove } from './policy.js';
import { paymentsService, paymentsServiceName } from './payments-access.js';
import { expenseTools } from './tools.js';

export { script } from './script.js';

const limits = Object.entries(categoryLimits)
  .map(([category, limit]) => `${category} ${limit}`)
  .join(', ');

const instructions = `You are an expense clerk. Each task is one expense claim: its id and the document the employee submitted.
Take exactly one action per turn, with your reasoning and an honest confidence.

States and what to do in each:
- intake: call extract_claim with the document exactly as given. If it reports the document malformed, call reject_claim and pass on every problem it lists, so the employee can fix them all at once.
- review: call check_policy with the claim id. Compliant claims move on to payment; non-compliant ones are rejected automatically with the listed violations.
- payment: call pay_claim with the claim id, amount, currency and payee exactly as extracted; never round or change them. If the payment is refused as a duplicate (the claim was already paid), or for any other reason you cannot correct, call reject_claim with that reason instead of retrying.
- reporting: call generate_report with the claim id.

Policy (in ${policyCurrency}): per-claim limits by category: ${limits}. A receipt is required above ${receiptRequiredAbove} ${policyCurrency}. A claim id is paid at most once.
Lower your confidence when a claim is close to its category limit or anything about it looks unusual.`;

/**
 * The agent with no approval policy: every claim finishes without a person. For tests of other
 * concerns (permissions, outages, injection) that score each claim's unattended outcome.
 */
export const expenseApprovalUnattended: Agent = defineAgent({
  name: 'expense-approval',
  version: '1',
  description: 'Reads expense claim documents, checks them against the expense policy, pays compliant claims once and rejects the rest with a reason.',
  instructions,
  input: claimTaskInput,
  tools: expenseTools,
  services: { [paymentsServiceName]: paymentsService },
  // What this task type may need of its principal's rights; with permissions enforced, each call
  // also needs a live grant (docs/security.md). A denied call fails the claim: the clerk cannot
  // fix a missing permission, a person can.
  permissions: ['claims:read', 'payments:read', 'payments:write', 'reports:write', 'claims:reject'],
  onPermissionDenied: 'fail',
  initial: 'intake',
  states: {
    intake: {
      description: 'Read the claim document into fields.',
      tools: ['extract_claim', 'reject_claim'],
      next: ['review', 'rejected'],
      on: { extract_claim: 'review', reject_claim: 'rejected' },
    },
    review: {
      description: 'Check the claim against the expense policy and earlier payments.',
      tools: ['check_policy', 'reject_claim'],
      next: ['payment', 'rejected'],
      on: {
        check_policy: (result: PolicyResult) => (result.compliant ? 'payment' : 'rejected'),
        reject_claim: 'rejected',
      },
    },
    payment: {
      description: 'Pay the approved claim once.',
      tools: ['pay_claim', 'reject_claim'],
      next: ['reporting', 'rejected'],
      on: { pay_claim: 'reporting', reject_claim: 'rejected' },
    },
    reporting: {
      description: 'Write the closing report of the paid claim.',
      tools: ['generate_report'],
      next: ['paid'],
      on: { generate_report: 'paid' },
    },
    paid: { final: true, outcome: 'paid', description: 'The claim was paid and reported.' },
    rejected: { final: true, outcome: 'rejected', description: 'The claim was rejected with a reason.' },
  },
});

/** The built-in agent (`keel demo`, `keel run expense-approval`): large and uncertain payments wait for finance. */
export const expenseApproval: Agent = defineAgent({ ...expenseApprovalUnattended, approval: financeApprovalPolicy });

export default expenseApproval;
