// The demo's verdict: every claim's outcome against what the sample expects, the payments in the
// service's ledger against the paid claims (exactly once each), a summary, and what to try next:
// among it, how to decide the claims left waiting for the finance group's approval.

import type { WorkflowRecord } from '../../store/types.js';
import { formatFields, formatTable } from '../format/table.js';
import { chaosFields, type ChaosCounts } from './chaos.js';
import { formatDuration } from '../format/time.js';

/** What the demo uses of a sample from examples/expense-approval/claims.ts. */
export interface SampleClaimLike {
  input: { claimId: string; document: string };
  kind: string;
  expected: 'paid' | 'rejected';
  /** The agent's approval policy holds its payment for a person: the demo leaves it waiting. */
  needsApproval?: boolean;
}

export interface DemoResult {
  sample: SampleClaimLike;
  workflow: WorkflowRecord;
}

export interface Verdict {
  ok: boolean;
  text: string;
}

export function verdictOf(sample: SampleClaimLike, workflow: WorkflowRecord): Verdict {
  if (sample.needsApproval) {
    if (isWaitingForApproval(workflow)) return { ok: true, text: 'as expected' };
  } else if (workflow.status === 'completed' && workflow.outcome === sample.expected) {
    return { ok: true, text: 'as expected' };
  }
  const got =
    workflow.status === 'completed'
      ? `'${workflow.outcome}'`
      : `${workflow.status}${workflow.waitingFor ? ` for ${workflow.waitingFor}` : ''}${workflow.failure ? ` (${workflow.failure.code})` : ''}`;
  return { ok: false, text: `MISMATCH: expected ${sample.needsApproval ? 'waiting for approval' : `'${sample.expected}'`}, got ${got}` };
}

function isWaitingForApproval(workflow: WorkflowRecord): boolean {
  return workflow.status === 'waiting' && workflow.waitingFor === 'approval';
}

/** A request left pending by the demo, and who may decide it. */
export interface DemoApproval {
  id: string;
  workflowId: string;
}

export interface DemoReportInput {
  results: readonly DemoResult[];
  /** The payments service's ledger after the run. */
  payments: readonly { claimId: string }[];
  elapsedMs: number;
  model: string;
  databaseFlag: string;
  /** A sample claim file to suggest for `keel run`, relative to the working folder, if one ships. */
  sampleInput?: string;
  /** keel demo --chaos: the faults injected and what the runner did about them. */
  chaos?: ChaosCounts;
  /** The approval requests left pending, and a principal who may decide them (not the requester). */
  approvals?: { pending: readonly DemoApproval[]; approver: string };
}

export interface DemoReport {
  text: string;
  /** Every claim ended as expected and every paid claim was paid exactly once. */
  ok: boolean;
}

export function demoReport(input: DemoReportInput): DemoReport {
  const { results } = input;
  const count = (predicate: (result: DemoResult) => boolean) => results.filter(predicate).length;
  const completed = count((result) => result.workflow.status === 'completed');
  const failed = count((result) => result.workflow.status === 'failed');
  const waiting = count((result) => result.workflow.status === 'waiting');
  const waitingForApproval = count((result) => isWaitingForApproval(result.workflow));
  const paid = results.filter((result) => result.workflow.outcome === 'paid');
  const rejected = count((result) => result.workflow.outcome === 'rejected');
  const mismatches = results.filter((result) => !verdictOf(result.sample, result.workflow).ok);
  const paymentProblems = checkPayments(paid, input.payments);
  const steps = results.reduce((sum, result) => sum + result.workflow.step, 0);
  const others = results.length - completed - failed - waiting;

  const lines: string[] = ['\n', formatKindTable(results), '\nSummary\n'];
  lines.push(
    formatFields([
      ['workflows', `${results.length}: ${completed} completed, ${failed} failed, ${waiting} waiting${others > 0 ? `, ${others} other` : ''}`],
      ['outcomes', `${paid.length} paid, ${rejected} rejected, ${waitingForApproval} waiting for approval`],
      ['as expected', `${results.length - mismatches.length} of ${results.length}`],
      ['steps', `${steps} in total`],
      ['payments', `${input.payments.length} made (payments service ledger)${paymentProblems.length === 0 ? ', exactly one per paid claim' : ''}`],
      ['elapsed', formatDuration(input.elapsedMs)],
      ['model', input.model.replace(/^model: /, '')],
    ]),
  );
  if (input.chaos) {
    const exactlyOnce =
      paymentProblems.length === 0
        ? `every paid claim was still paid exactly once (${plural(input.payments.length, 'payment')} in the ledger for ${plural(paid.length, 'paid claim')})`
        : 'NO: see the MISMATCH lines below';
    lines.push('\nChaos: faults the payments service injected, and what Keel did\n', formatFields([...chaosFields(input.chaos), ['exactly once', exactlyOnce]]));
  }
  for (const { sample, workflow } of mismatches) {
    lines.push(`MISMATCH  claim ${sample.input.claimId} (${sample.kind}): ${verdictOf(sample, workflow).text.replace(/^MISMATCH: /, '')}. See: keel inspect ${workflow.id}${input.databaseFlag}\n`);
  }
  for (const problem of paymentProblems) lines.push(`MISMATCH  payments: ${problem}\n`);
  const ok = mismatches.length === 0 && paymentProblems.length === 0 && failed === 0;
  lines.push(
    ok
      ? `\nAll ${results.length} claims ended as expected.\n`
      : `\n${mismatches.length} of ${results.length} claims did not end as expected${paymentProblems.length > 0 ? ', and the payments do not match the paid claims' : ''} (MISMATCH lines above).\n`,
  );
  lines.push(decideCommands(input));
  lines.push(nextCommands(input));
  return { text: lines.join(''), ok };
}

function formatKindTable(results: readonly DemoResult[]): string {
  const kinds = [...new Set(results.map((result) => result.sample.kind))];
  const row = (label: string, group: readonly DemoResult[]) => [
    label,
    String(group.length),
    String(group.filter((result) => result.workflow.outcome === 'paid').length),
    String(group.filter((result) => result.workflow.outcome === 'rejected').length),
    String(group.filter((result) => result.workflow.status === 'failed').length),
    String(group.filter((result) => result.workflow.status === 'waiting').length),
    String(group.filter((result) => verdictOf(result.sample, result.workflow).ok).length),
  ];
  return formatTable(
    ['CLAIM KIND', 'CLAIMS', 'PAID', 'REJECTED', 'FAILED', 'WAITING', 'AS EXPECTED'],
    [...kinds.map((kind) => row(kind, results.filter((result) => result.sample.kind === kind))), row('total', results)],
  );
}

/** Each paid claim has exactly one payment in the ledger, and nothing else was paid. */
function checkPayments(paid: readonly DemoResult[], payments: readonly { claimId: string }[]): string[] {
  const paymentsByClaim = new Map<string, number>();
  for (const payment of payments) paymentsByClaim.set(payment.claimId, (paymentsByClaim.get(payment.claimId) ?? 0) + 1);
  const problems: string[] = [];
  for (const [claimId, times] of paymentsByClaim) {
    if (times > 1) problems.push(`claim ${claimId} was paid ${times} times`);
  }
  const paidClaims = new Set(paid.map((result) => result.sample.input.claimId));
  for (const claimId of paidClaims) {
    if (!paymentsByClaim.has(claimId)) problems.push(`claim ${claimId} ended 'paid' but the ledger holds no payment for it`);
  }
  for (const claimId of paymentsByClaim.keys()) {
    if (!paidClaims.has(claimId)) problems.push(`the ledger holds a payment for claim ${claimId}, which did not end 'paid'`);
  }
  return problems;
}

/** How to decide the claims the finance group's approval holds: they stay waiting until someone does. */
function decideCommands(input: DemoReportInput): string {
  const pending = input.approvals?.pending ?? [];
  if (pending.length === 0 || !input.approvals) return '';
  const { approver } = input.approvals;
  const flag = input.databaseFlag;
  const [first, second] = pending;
  const commands: [string, string][] = [
    [`keel approvals${flag}`, 'the requests, with why each payment waits'],
    [`keel approve ${first!.id} --by ${approver}${flag}`, `approve one (workflow ${first!.workflowId})`],
    [`keel resume ${first!.workflowId}${flag}`, 'then pay it here (or let a running `keel worker` take it up)'],
    [`keel reject ${(second ?? first)!.id} --by ${approver} --reason 'not pre-approved'${flag}`, 'or reject one: the clerk rejects the claim with your reason'],
  ];
  return (
    `\n${plural(pending.length, 'claim')} ${pending.length === 1 ? 'waits' : 'wait'} for the finance group's approval; ${approver} (role finance) may decide ${pending.length === 1 ? 'it' : 'them'}:\n` +
    commands.map(([command, why]) => `  # ${why}\n  ${command}\n`).join('')
  );
}

function nextCommands(input: DemoReportInput): string {
  const flag = input.databaseFlag;
  const paid = input.results.find((result) => result.workflow.outcome === 'paid');
  const rejected = input.results.find((result) => result.workflow.outcome === 'rejected' && result.sample.kind !== 'clean');
  const failed = input.results.find((result) => result.workflow.status === 'failed');
  const commands: [string, string][] = [[`keel list${flag}`, 'the workflows of this run']];
  for (const [result, what] of [
    [failed, 'failed'],
    [paid, 'paid'],
    [rejected, 'rejected'],
  ] as const) {
    if (result) commands.push([`keel inspect ${result.workflow.id}${flag}`, `the timeline of a ${what} claim, ${result.sample.input.claimId} (${result.sample.kind})`]);
  }
  if (input.sampleInput) commands.push([`keel run expense-approval --input ${input.sampleInput}${flag}`, 'run one more claim in this process']);
  return `\nNext, try:\n${commands.map(([command, why]) => `  # ${why}\n  ${command}\n`).join('')}`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
