// A tiny paying agent for approval tests: it proposes one payment; a payment over 1,000 (or a
// low-confidence one) waits for the finance group. A rejected payment is not proposed again: the
// agent closes the claim as declined, quoting the reason it was given.

import { z } from 'zod';
import { defineAgent, type Agent } from '../../src/agent/define-agent.js';
import { argsMatch, confidenceBelow, type ApprovalPolicy } from '../../src/approval/policy.js';
import { defineTool } from '../../src/tools/tool.js';

export interface PaymentLedger {
  /** Payments as they reached the payments tool, by idempotency key: a key seen twice is a double payment. */
  payments: Map<string, { workflowId: string; amount: number; count: number }>;
  /** What the agent was told when it closed a claim as declined, by workflow. */
  declined: Map<string, string>;
}

export function paymentLedger(): PaymentLedger {
  return { payments: new Map(), declined: new Map() };
}

export const claimInput = z.object({ amount: z.number().positive(), payee: z.string(), confidence: z.number().min(0).max(1).optional() });

export function approvalAgent(ledger: PaymentLedger, policy: Partial<ApprovalPolicy> = {}): Agent {
  const pay = defineTool({
    name: 'pay',
    description: 'Pays the claim to the payee.',
    input: z.object({ amount: z.number().positive(), payee: z.string().min(1) }),
    sideEffect: true,
    execute: async (args, context) => {
      const seen = ledger.payments.get(context.idempotencyKey);
      ledger.payments.set(context.idempotencyKey, { workflowId: context.workflowId, amount: args.amount, count: (seen?.count ?? 0) + 1 });
      return { paid: args.amount };
    },
  });
  const decline = defineTool({
    name: 'decline',
    description: 'Closes the claim without paying it.',
    input: z.object({ reason: z.string() }),
    execute: async (args, context) => {
      ledger.declined.set(context.workflowId, args.reason);
      return { declined: true };
    },
  });
  return defineAgent({
    name: 'approval-payer',
    tools: [pay, decline],
    input: claimInput,
    initial: 'review',
    states: {
      review: { tools: ['pay', 'decline'], next: ['paid', 'declined'], on: { pay: 'paid', decline: 'declined' } },
      paid: { final: true, outcome: 'paid' },
      declined: { final: true, outcome: 'declined' },
    },
    decide: (view) => {
      const last = view.lastObservation;
      if (last?.type === 'tool-error' && last.errorClass === 'approval-rejected') return { tool: 'decline', args: { reason: last.message } };
      const input = view.input as z.infer<typeof claimInput>;
      return { tool: 'pay', args: { amount: input.amount, payee: input.payee }, reasoning: `Claim of ${input.amount} is within policy.`, confidence: input.confidence ?? 0.95 };
    },
    approval: {
      rules: [confidenceBelow(), argsMatch<{ amount: number }>('amount over 1000', (args) => args.amount > 1000)],
      approvers: 'finance',
      ...policy,
    },
  });
}
