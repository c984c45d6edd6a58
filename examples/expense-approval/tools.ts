// The expense-approval agent's tools: read the document, apply the policy, pay, report, reject.
// Each tool checks that it works on the workflow's own claim, so a decider that mixes up ids or
// amounts gets an error to correct instead of paying the wrong thing. Results the later steps
// need (the claim, the policy result, the payment) go into the workflow context, which Keel
// commits with the step. The two tools that call the payments service name it, so its breaker,
// rate budget and credentials (payments-access.ts) apply, and say how their calls are retried.

import { z } from 'zod';
import { defineTool, ToolError, type ToolContext } from '../../src/index.js';
import { parseClaimDocument, type ClaimTask, type ExpenseClaim } from './claim-document.js';
import { paymentsServiceName } from './payments-access.js';
import { createPayment, isClaimPaid, type PaymentReceipt } from './payments-client.js';
import { evaluatePolicy, formatMoney, type PolicyResult } from './policy.js';

/** Context keys the tools write; the script and reports read them. */
export const ContextKey = {
  claim: 'claim',
  policy: 'policy',
  payment: 'payment',
  rejection: 'rejection',
} as const;

export interface ClaimReport {
  claimId: string;
  outcome: 'paid';
  employee: string;
  category: string;
  amount: number;
  currency: string;
  payee: string;
  paymentId: string;
  replayed: boolean;
  summary: string;
}

const claimId = z.string().min(1).describe("The claim's id, exactly as in the task (e.g. C-0007)");

export const extractClaim = defineTool({
  name: 'extract_claim',
  description:
    'Reads a plain-text expense claim document into structured fields (claim id, employee, category, amount, currency, date, receipt, payee IBAN, description). ' +
    'Pass the document exactly as submitted. If the document is malformed, the error lists every problem with its line: the claim should then be rejected with that explanation.',
  input: z.object({ document: z.string().min(1).describe('The full claim document text, unchanged') }),
  // Least privilege (docs/security.md): the permission each call needs, on the resources it names.
  permission: 'claims:read',
  resource: (_args, { input }) => `claim:${(input as ClaimTask).claimId}`,
  execute({ document }, context): ExpenseClaim {
    const task = context.input as ClaimTask;
    const parsed = parseClaimDocument(document);
    if (!parsed.ok) {
      throw new ToolError(
        'invalid-input',
        `The claim document for ${task.claimId} is malformed: ${parsed.problems.join('; ')}. Reject the claim so the employee can correct and resubmit it.`,
        { details: { problems: parsed.problems } },
      );
    }
    if (parsed.claim.claimId !== task.claimId) {
      throw new ToolError(
        'invalid-input',
        `The document is for claim ${parsed.claim.claimId}, but this task is claim ${task.claimId}. Reject the claim: the wrong document was submitted.`,
      );
    }
    context.set(ContextKey.claim, parsed.claim);
    return parsed.claim;
  },
});

export const checkPolicy = defineTool({
  name: 'check_policy',
  description:
    'Checks the extracted claim against the expense policy: the category limit, a receipt for amounts above 25 EUR, the currency, and whether this claim id was already paid (a duplicate). ' +
    'Call it after extract_claim. Returns { compliant, violations }; a non-compliant claim is rejected.',
  input: z.object({ claimId }),
  permission: 'payments:read',
  resource: (args) => `claim:${args.claimId}`,
  service: paymentsServiceName,
  // A read: safe to repeat, so it is retried like a payment.
  retry: { maxAttempts: 20, baseDelayMs: 100, maxDelayMs: 5_000, maxTotalMs: 60_000 },
  timeoutMs: 2_000,
  async execute(args, context): Promise<PolicyResult> {
    const claim = extractedClaim(context, args.claimId, 'check_policy');
    const paid = await isClaimPaid(claim.claimId, { signal: context.signal, token: await context.credentials() });
    const result = evaluatePolicy(claim, paid);
    context.set(ContextKey.policy, result);
    return result;
  },
});

export const payClaim = defineTool({
  name: 'pay_claim',
  description:
    'Pays an approved claim to the payee through the payments service. Use the exact claim id, amount, currency and payee IBAN from extract_claim; ' +
    'different values are refused. A claim is paid at most once: if it was already paid under another request, the error says it is a duplicate and the claim should be rejected.',
  input: z.object({
    claimId,
    amount: z.number().positive().describe('The claimed amount, e.g. 412.5'),
    currency: z.string().regex(/^[A-Z]{3}$/).describe('ISO currency code, e.g. EUR'),
    payee: z.string().min(1).describe('The IBAN to pay, as extracted'),
  }),
  sideEffect: true,
  permission: 'payments:write',
  resource: (args) => [`claim:${args.claimId}`, `payee:${args.payee.replaceAll(' ', '').toUpperCase()}`],
  service: paymentsServiceName,
  // Every attempt sends the step's idempotency key, so retrying is safe. A payment is worth
  // waiting for up to a minute: that is the real limit. Twenty attempts only stop a loop of fast
  // failures; ten could run out within seconds against a service that fails 40% of its calls
  // (0.4^10 is one claim in ten thousand). Waits on the breaker or the rate budget are no attempts.
  retry: { maxAttempts: 20, baseDelayMs: 100, maxDelayMs: 5_000, maxTotalMs: 60_000 },
  // The service answers in milliseconds; a call still open after 2 s is hanging, and the retry
  // (same key) finds out whether it was paid.
  timeoutMs: 2_000,
  async execute(args, context): Promise<PaymentReceipt> {
    const claim = extractedClaim(context, args.claimId, 'pay_claim');
    const differences = (['amount', 'currency', 'payee'] as const)
      .filter((field) => args[field] !== claim[field])
      .map((field) => `${field} ${JSON.stringify(args[field])} (the claim says ${JSON.stringify(claim[field])})`);
    if (differences.length > 0) {
      throw new ToolError('invalid-input', `pay_claim arguments do not match claim ${claim.claimId}: ${differences.join(', ')}. Pay exactly what the claim says.`);
    }
    const receipt = await createPayment(
      { claimId: claim.claimId, amount: claim.amount, currency: claim.currency, payee: claim.payee },
      context.idempotencyKey,
      { signal: context.signal, token: await context.credentials() },
    );
    context.set(ContextKey.payment, receipt);
    return receipt;
  },
});

export const generateReport = defineTool({
  name: 'generate_report',
  description: 'Writes the closing report of a paid claim: who was paid what, for which claim, under which payment id. Call it once the payment succeeded.',
  input: z.object({ claimId }),
  permission: 'reports:write',
  resource: (args) => `claim:${args.claimId}`,
  execute(args, context): ClaimReport {
    const claim = extractedClaim(context, args.claimId, 'generate_report');
    const payment = context.get<PaymentReceipt>(ContextKey.payment);
    if (!payment) {
      throw new ToolError('invalid-input', `Claim ${claim.claimId} has no payment recorded in this workflow; call pay_claim before generate_report.`);
    }
    const amount = formatMoney(claim.amount, claim.currency);
    return {
      claimId: claim.claimId,
      outcome: 'paid',
      employee: claim.employee,
      category: claim.category,
      amount: claim.amount,
      currency: claim.currency,
      payee: claim.payee,
      paymentId: payment.paymentId,
      replayed: payment.replayed,
      summary: `Paid ${amount} to ${claim.payee} for ${claim.employee}'s ${claim.category} claim ${claim.claimId} (${claim.date}), payment ${payment.paymentId}${payment.replayed ? ', confirmed on replay' : ''}.`,
    };
  },
});

export const rejectClaim = defineTool({
  name: 'reject_claim',
  description:
    'Rejects the claim with a reason the employee can act on (what is wrong and how to fix it). Use it for malformed documents, policy violations and duplicates. Ends the workflow.',
  input: z.object({
    claimId,
    reason: z.string().min(1).describe('Why the claim is rejected, in a sentence or two'),
  }),
  permission: 'claims:reject',
  resource: (args) => `claim:${args.claimId}`,
  execute(args, context): { rejected: true; reason: string } {
    taskClaimId(context, args.claimId, 'reject_claim');
    context.set(ContextKey.rejection, { claimId: args.claimId, reason: args.reason });
    return { rejected: true, reason: args.reason };
  },
});

export const expenseTools = [extractClaim, checkPolicy, payClaim, generateReport, rejectClaim] as const;

function taskClaimId(context: ToolContext, claimIdArgument: string, tool: string): string {
  const task = context.input as ClaimTask;
  if (claimIdArgument !== task.claimId) {
    throw new ToolError('invalid-input', `${tool} was called for claim '${claimIdArgument}', but this workflow handles claim '${task.claimId}'. Use '${task.claimId}'.`);
  }
  return task.claimId;
}

function extractedClaim(context: ToolContext, claimIdArgument: string, tool: string): ExpenseClaim {
  taskClaimId(context, claimIdArgument, tool);
  const claim = context.get<ExpenseClaim>(ContextKey.claim);
  if (!claim) {
    throw new ToolError('invalid-input', `${tool} needs the extracted claim, and this workflow has none yet; call extract_claim with the document first.`);
  }
  return claim;
}
