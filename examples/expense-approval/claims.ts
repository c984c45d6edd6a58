// Sample expense claims for the demo, the tests and the benchmarks: a deterministic batch (same
// count and seed, same claims) with a realistic mix of about 60% clean claims, 25% policy
// violations (over the category limit, a missing receipt, a duplicate resubmission) and 15%
// malformed documents. Each sample says what a careful clerk should conclude, so a run can be
// scored against it, and whether the agent's finance approval policy holds its payment for a
// person first (above the approval limit, or near the category limit).
//
// Resubmissions come last in the batch and copy the earliest clean claims: an agent working
// through the batch in order pays the original first and sees the copy as already paid. Claim ids
// carry the seed, so batches with different seeds can share one payments service.

import { formatClaimDocument, ibanCheckDigits, type ClaimTask, type ExpenseClaim } from './claim-document.js';
import { categoryLimits, expenseCategories, needsFinanceApproval, receiptRequiredAbove, type ExpenseCategory } from './policy.js';
import { seededRandom } from '../../src/testing.js';

export const SampleClaimKind = {
  clean: 'clean',
  overLimit: 'over-limit',
  missingReceipt: 'missing-receipt',
  duplicate: 'duplicate',
  malformed: 'malformed',
} as const;
export type SampleClaimKind = (typeof SampleClaimKind)[keyof typeof SampleClaimKind];

export interface SampleClaim {
  input: { claimId: string; document: string };
  kind: 'clean' | 'over-limit' | 'missing-receipt' | 'duplicate' | 'malformed';
  /** How the claim ends once its payment, if held, is approved; or with no approval policy. */
  expected: 'paid' | 'rejected';
  /** With the finance approval policy (agent.ts), the payment first waits for the finance group. */
  needsApproval: boolean;
}

const accounts = [
  { employee: 'alice@example.com', account: '370400440532013000' },
  { employee: 'bruno@example.com', account: '500105175407324931' },
  { employee: 'chiara@example.com', account: '200411330018742500' },
  { employee: 'dmitri@example.com', account: '100100100987654321' },
  { employee: 'esther@example.com', account: '760501010012345678' },
  { employee: 'farid@example.com', account: '120300000000202051' },
];
const employees = accounts.map(({ employee, account }) => ({ employee, payee: `DE${ibanCheckDigits('DE', account)}${account}` }));

const descriptions: Readonly<Record<ExpenseCategory, readonly string[]>> = {
  travel: ['Train to Berlin for the customer workshop', 'Flight to Lisbon for the partner summit', 'Taxi from the airport to the client office', 'Rental car for the site visits in Lyon'],
  lodging: ['Two nights in Munich for the trade fair', 'Hotel in Vienna during the supplier audit', 'One night in Rotterdam before the early meeting'],
  meals: ['Team lunch after the release', 'Dinner with the client in Hamburg', 'Coffee with a candidate'],
  office: ['Ergonomic keyboard', 'Monitor stand and cables', 'Printer toner for the Leipzig office'],
  software: ['Annual licence for the diagram editor', 'IDE subscription for the new hire', 'Font licence for the brand refresh'],
};

type Defect = (lines: string[], claim: ExpenseClaim) => string[];

// Mistakes people really make in hand-written claims; each one is something the parser refuses.
const defects: readonly Defect[] = [
  (lines) => lines.filter((line) => !line.startsWith('Amount:')),
  (lines, claim) => replaceLine(lines, 'Amount:', `Amount: ${claim.amount.toFixed(2).replace('.', ',')} ${claim.currency}`),
  (lines) => replaceLine(lines, 'Category:', 'Category: entertainment'),
  (lines) => lines.filter((line) => !line.startsWith('Payee:')),
  (lines, claim) => replaceLine(lines, 'Date:', `Date: ${claim.date.slice(0, 4)}-02-30`),
  (lines, claim) => replaceLine(lines, 'Payee:', `Payee: ${claim.payee.slice(0, -1)}${claim.payee.endsWith('0') ? '1' : '0'}`),
];

type Random = () => number;

export function sampleClaims(count: number, seed = 1): SampleClaim[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`sampleClaims needs a whole number of claims (0 or more), got ${count}.`);
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`sampleClaims needs a whole, non-negative seed, got ${seed}.`);
  const random = seededRandom(seed);
  const malformed = Math.round(count * 0.15);
  const violations = Math.round(count * 0.25);
  const duplicates = Math.floor(violations / 3);
  const missingReceipt = Math.floor(violations / 3) + (violations % 3 === 2 ? 1 : 0);
  const overLimit = violations - duplicates - missingReceipt;
  const plan: Array<Exclude<SampleClaimKind, 'duplicate'>> = shuffle(random, [
    ...repeat(SampleClaimKind.overLimit, overLimit),
    ...repeat(SampleClaimKind.missingReceipt, missingReceipt),
    ...repeat(SampleClaimKind.malformed, malformed),
    ...repeat(SampleClaimKind.clean, count - malformed - violations),
  ]);

  const claims = plan.map((kind, index) => sampleClaim(random, kind, `C-${seed}-${String(index + 1).padStart(4, '0')}`));
  // Copies of claims paid without a person: a copy of a held claim would find nothing paid yet.
  const originals = claims.filter((claim) => claim.kind === SampleClaimKind.clean && !claim.needsApproval).slice(0, duplicates);
  for (const original of originals) {
    claims.push({ input: { ...original.input }, kind: SampleClaimKind.duplicate, expected: 'rejected', needsApproval: false });
  }
  return claims;
}

function sampleClaim(random: Random, kind: Exclude<SampleClaimKind, 'duplicate'>, claimId: string): SampleClaim {
  const category = pick(random, expenseCategories);
  const limit = categoryLimits[category];
  const { employee, payee } = pick(random, employees);
  const claim: ExpenseClaim = {
    claimId,
    employee,
    category,
    amount: 0,
    currency: 'EUR',
    date: `2026-${String(9 + Math.floor(random() * 3)).padStart(2, '0')}-${String(1 + Math.floor(random() * 28)).padStart(2, '0')}`,
    receipt: true,
    payee,
    description: pick(random, descriptions[category]),
  };
  switch (kind) {
    case SampleClaimKind.clean: {
      const variant = random();
      if (variant < 0.1) {
        // Small enough to need no receipt.
        claim.amount = money(between(random, 4, receiptRequiredAbove));
        claim.receipt = false;
      } else if (variant < 0.3) {
        // Within policy but close to the limit, sometimes exactly at it.
        claim.amount = variant < 0.13 ? limit : money(limit * between(random, 0.9, 1));
      } else {
        claim.amount = money(limit * between(random, 0.15, 0.85));
      }
      break;
    }
    case SampleClaimKind.overLimit:
      claim.amount = money(limit * between(random, 1.05, 1.6));
      break;
    case SampleClaimKind.missingReceipt:
      claim.amount = money(between(random, receiptRequiredAbove + 5, limit * 0.85));
      claim.receipt = false;
      break;
    case SampleClaimKind.malformed:
      claim.amount = money(limit * between(random, 0.15, 0.85));
      break;
  }
  const lines = formatClaimDocument(claim).split('\n');
  const document = kind === SampleClaimKind.malformed ? pick(random, defects)(lines, claim).join('\n') : lines.join('\n');
  const input: ClaimTask = { claimId, document };
  const clean = kind === SampleClaimKind.clean;
  return { input, kind, expected: clean ? 'paid' : 'rejected', needsApproval: clean && needsFinanceApproval(claim) };
}

function replaceLine(lines: string[], prefix: string, replacement: string): string[] {
  return lines.map((line) => (line.startsWith(prefix) ? replacement : line));
}

function repeat<T>(value: T, times: number): T[] {
  return Array.from({ length: Math.max(0, times) }, () => value);
}

function shuffle<T>(random: Random, items: T[]): T[] {
  for (let index = items.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [items[index], items[other]] = [items[other]!, items[index]!];
  }
  return items;
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function between(random: Random, low: number, high: number): number {
  return low + random() * (high - low);
}

/** Rounds to cents, and never below one cent. */
function money(amount: number): number {
  return Math.max(0.01, Math.round(amount * 100) / 100);
}

