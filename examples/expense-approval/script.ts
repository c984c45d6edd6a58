// The decisions of the scripted model for the expense-approval agent: a careful clerk who reads
// the document, checks the policy, pays, reports, and rejects with the reason whenever a step
// says the claim cannot go on. It drives the demo and the tests through the same model path a
// real provider takes. Confidence drops for claims near their category limit, which is where an
// approval policy would ask a person to look before paying.

import type { Observation } from '../../src/index.js';
import type { Script, ScriptedAction } from '../../src/testing.js';
import type { ClaimTask, ExpenseClaim } from './claim-document.js';
import { categoryLimits, formatMoney, isNearLimit, policyCurrency } from './policy.js';
import { ContextKey } from './tools.js';

/** Confidence of pay_claim for a claim within policy but near its category limit. */
export const nearLimitConfidence = 0.6;

export const script: Script = (view) => {
  const task = view.input as ClaimTask;
  const claim = view.context[ContextKey.claim] as ExpenseClaim | undefined;
  const failure = failureOf(view.lastObservation);
  switch (view.state) {
    case 'intake':
      if (failure?.tool === 'extract_claim') {
        return reject(task, `The claim document cannot be processed. ${failure.message}`, 'The document could not be read into a claim; the employee has to correct it.');
      }
      return {
        tool: 'extract_claim',
        input: { document: task.document },
        reasoning: `Read the document of claim ${task.claimId} into fields before checking anything.`,
        confidence: 0.95,
      };
    case 'review':
      if (failure?.tool === 'check_policy' || !claim) {
        return reject(task, `The policy check could not be made. ${failure?.message ?? 'No extracted claim is available.'}`, 'Without a policy check the claim must not be paid.');
      }
      return {
        tool: 'check_policy',
        input: { claimId: claim.claimId },
        reasoning: `Claim ${claim.claimId} is ${formatMoney(claim.amount, claim.currency)} of ${claim.category}; check it against the ${claim.category} limit, the receipt rule and earlier payments.`,
        confidence: 0.95,
      };
    case 'payment':
      if (failure?.tool === 'pay_claim' || !claim) {
        return reject(task, `The payment was refused. ${failure?.message ?? 'No extracted claim is available.'}`, 'The payments service refused this claim; paying again would not be right.');
      }
      return payAction(claim);
    case 'reporting':
      return {
        tool: 'generate_report',
        input: { claimId: task.claimId },
        reasoning: `Claim ${task.claimId} is paid; write the closing report.`,
        confidence: 0.98,
      };
    default:
      throw new Error(`The expense-approval script has no decision for state '${view.state}' (workflow ${view.workflowId}); it knows intake, review, payment and reporting.`);
  }
};

function payAction(claim: ExpenseClaim): ScriptedAction {
  const limit = categoryLimits[claim.category];
  const amount = formatMoney(claim.amount, claim.currency);
  const nearLimit = isNearLimit(claim);
  return {
    tool: 'pay_claim',
    input: { claimId: claim.claimId, amount: claim.amount, currency: claim.currency, payee: claim.payee },
    reasoning: nearLimit
      ? `Claim ${claim.claimId} passed the policy check, but ${amount} is close to the ${claim.category} limit of ${formatMoney(limit, policyCurrency)}; paying, though a second look would be reasonable.`
      : `Claim ${claim.claimId} passed the policy check: ${amount} is well within the ${claim.category} limit of ${formatMoney(limit, policyCurrency)}; pay ${claim.payee}.`,
    confidence: nearLimit ? nearLimitConfidence : 0.9,
  };
}

function reject(task: ClaimTask, reason: string, reasoning: string): ScriptedAction {
  return { tool: 'reject_claim', input: { claimId: task.claimId, reason }, reasoning, confidence: 0.9 };
}

function failureOf(observation: Observation | undefined): Extract<Observation, { type: 'tool-error' }> | undefined {
  return observation?.type === 'tool-error' ? observation : undefined;
}
