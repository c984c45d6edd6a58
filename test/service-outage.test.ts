// The payments service goes down while 20 expense claims wait to be paid (issue 3, must-show 2).
// What must hold: the circuit breaker opens after a few failures and the workflows park with a
// durable wake-up time instead of spinning through their retries, so the service receives a
// handful of calls during the outage however many workflows wait on it; the breaker lets one
// probe through now and then; and once the service is back, every workflow completes and every
// claim is paid exactly once. The journal shows the deferred calls and the parks, and the
// breaker's state changes reach KeelOptions.onEvent. A second run lets the tokens expire while the
// token endpoint is down too: a refresh that cannot reach the endpoint is an outage like any
// other, not a reason to fail the workflows.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeel, JournalKind, openSqliteStore, type AuditEntry, type JournalEntry, type Keel, type KeelEvent, type WorkflowRecord } from '../src/index.js';
import { scriptedModel } from '../src/testing.js';
import { expenseApprovalUnattended, script } from '../examples/expense-approval/agent.js';
import { sampleClaims, SampleClaimKind } from '../examples/expense-approval/claims.js';
import { paymentsCredentials, paymentsService, paymentsServiceName } from '../examples/expense-approval/payments-access.js';
import { startPaymentsService, type PaymentsService, type PaymentsServiceOptions } from '../examples/expense-approval/payments-service.js';
import { payClaim } from '../examples/expense-approval/tools.js';

const workflowCount = 20;
const consecutiveFailures = 5;
/** Short, so the test sees several probes; the example's own setting is 5 s. */
const halfOpenAfterMs = 1_000;
/** Probes that must fail before the service comes back. */
const failedProbesWanted = 3;
const parkAfterMs = 100;
/** Calls already admitted (the rate budget spaces them 54 ms apart) when the breaker opens. */
const inFlightAllowance = 3;

const paymentsUrlVariable = 'EXPENSE_PAYMENTS_URL';

type BreakerChange = Extract<KeelEvent, { type: 'breaker-changed' }>;

interface OutageRun {
  samples: ReturnType<typeof sampleClaims>;
  results: { workflow: WorkflowRecord; journal: JournalEntry[] }[];
  /** Journal entries written while the service was down or after: the outage and the recovery. */
  sinceOutage: JournalEntry[];
  changes: BreakerChange[];
  /** The audit log's breaker.changed entries. */
  breakerAudit: AuditEntry[];
  /** Calls to /payments, and to /token, that reached the service while it was down. */
  callsDuringOutage: number;
  tokenRequestsDuringOutage: number;
  refreshFailuresDuringOutage: number;
  mostWaiting: number;
}

let directory: string | undefined;
let payments: PaymentsService | undefined;
let keel: Keel | undefined;
let previousPaymentsUrl: string | undefined;

afterEach(async () => {
  if (previousPaymentsUrl === undefined) delete process.env[paymentsUrlVariable];
  else process.env[paymentsUrlVariable] = previousPaymentsUrl;
  await keel?.close();
  await payments?.close();
  if (directory) rmSync(directory, { recursive: true, force: true });
  keel = payments = directory = undefined;
});

/**
 * Phase one runs 20 clean claims up to the payment state with the service up and stops each there.
 * Phase two takes the service down and lets a worker try to pay them all, until the breaker has
 * failed `failedProbesWanted` probes; then the service comes back and the worker finishes.
 */
async function payThroughOutage(serviceOptions: PaymentsServiceOptions = {}): Promise<OutageRun> {
  directory = mkdtempSync(join(tmpdir(), 'keel-outage-'));
  payments = await startPaymentsService({ latencyMs: 10, ...serviceOptions });
  const service = payments;
  previousPaymentsUrl = process.env[paymentsUrlVariable];
  process.env[paymentsUrlVariable] = service.url;
  const events: KeelEvent[] = [];
  const stopAtPayment = new Map<string, AbortController>();
  const running = createKeel({
    store: openSqliteStore({ path: join(directory, 'keel.db') }),
    agents: [expenseApprovalUnattended],
    model: scriptedModel(script),
    // The example's rate budget and credentials, with a breaker that probes sooner.
    services: { [paymentsServiceName]: { ...paymentsService, breaker: { consecutiveFailures, halfOpenAfterMs } } },
    parkAfterMs,
    onEvent: (event) => {
      events.push(event);
      if (event.type === 'step-completed' && event.state === 'payment') stopAtPayment.get(event.workflowId)?.abort();
    },
  });
  keel = running;

  const samples = sampleClaims(60, 5)
    .filter((sample) => sample.kind === SampleClaimKind.clean)
    .slice(0, workflowCount);
  expect(samples).toHaveLength(workflowCount);
  const started: WorkflowRecord[] = [];
  for (const sample of samples) started.push(await running.start(expenseApprovalUnattended.name, sample.input));

  // Phase one: every claim is read and checked while the service is up, and stops at payment.
  for (const workflow of started) stopAtPayment.set(workflow.id, new AbortController());
  const atPayment = await Promise.all(started.map((workflow) => running.run(workflow.id, stopAtPayment.get(workflow.id)!.signal)));
  expect(atPayment.map((workflow) => [workflow.status, workflow.state])).toEqual(Array(workflowCount).fill(['pending', 'payment']));
  expect(service.ledger()).toEqual([]);

  // Phase two: the service is down while all of them try to pay.
  service.setDown(true);
  const outageStartedAt = Date.now();
  const before = service.stats();
  const refreshFailuresBefore = paymentsCredentials.stats.failures;
  const working = running.work({ concurrency: workflowCount, once: true, pollMs: 50 });
  const failedProbes = () => events.filter((event) => event.type === 'breaker-changed' && event.from === 'half-open' && event.to === 'open').length;
  let mostWaiting = 0;
  await until(
    async () => {
      mostWaiting = Math.max(mostWaiting, (await running.store.countByStatus()).waiting);
      return failedProbes() >= failedProbesWanted;
    },
    20_000,
    'the breaker to open and fail its probes',
  );
  const during = service.stats();
  const refreshFailuresDuringOutage = paymentsCredentials.stats.failures - refreshFailuresBefore;
  service.setDown(false);
  await working;

  const results = await Promise.all(started.map((workflow) => running.inspect(workflow.id)));
  const breakerAudit = (await running.store.readAudit({})).filter((entry) => entry.kind === 'breaker.changed');
  return {
    breakerAudit,
    samples,
    results,
    sinceOutage: results.flatMap(({ journal }) => journal.filter((entry) => entry.at >= outageStartedAt)),
    changes: events.filter((event): event is BreakerChange => event.type === 'breaker-changed'),
    callsDuringOutage: during.calls - before.calls,
    // Every request is to /payments or /token here (no /health).
    tokenRequestsDuringOutage: during.requests - during.calls - (before.requests - before.calls),
    refreshFailuresDuringOutage,
    mostWaiting,
  };
}

/** What any outage must end with, and how it must have been ridden out. Returns figures for the summary. */
function expectRiddenOut(run: OutageRun): { bound: number; parks: number; retryParks: number; deferred: number; failed: number } {
  // Every workflow completed, and every claim was paid exactly once.
  expect(run.results.map(({ workflow }) => [workflow.status, workflow.outcome])).toEqual(Array(workflowCount).fill(['completed', 'paid']));
  const ledger = payments!.ledger();
  expect(ledger.map((payment) => payment.claimId).sort()).toEqual(run.samples.map((sample) => sample.input.claimId).sort());
  expect(payments!.stats().created).toBe(workflowCount);

  // The breaker opened, probed (half-open) while the service was down, and closed after it came back.
  const { changes } = run;
  expect(changes.every((change) => change.service === paymentsServiceName)).toBe(true);
  expect(changes[0]).toMatchObject({ from: 'closed', to: 'open' });
  expect(changes[0]!.reason).toContain(`${consecutiveFailures} consecutive failures`);
  expect(changes.filter((change) => change.from === 'half-open' && change.to === 'open').length).toBeGreaterThanOrEqual(failedProbesWanted);
  expect(changes.at(-1)).toMatchObject({ from: 'half-open', to: 'closed' });
  // Each change is in the audit log too, under the worker that saw it.
  expect(run.breakerAudit.map((entry) => [entry.subject, entry.outcome, (entry.data as { from: string }).from])).toEqual(
    changes.map((change) => [change.service, change.to, change.from]),
  );
  expect(run.breakerAudit.every((entry) => entry.actor.startsWith('keel:'))).toBe(true);

  // Parked, not spinning: workflows sat in 'waiting' with a wake-up time while the service was
  // down, and the service heard only the calls that opened the breaker, those already on their
  // way, and one probe per half-open spell, not every workflow's every attempt.
  expect(run.mostWaiting).toBeGreaterThan(workflowCount / 2);
  const probes = changes.filter((change) => change.to === 'half-open').length;
  const bound = consecutiveFailures + probes + inFlightAllowance;
  expect(run.callsDuringOutage).toBeLessThanOrEqual(bound);
  const parkedOnBreaker = run.sinceOutage.filter((entry) => entry.kind === JournalKind.workflowParked && entry.name === 'circuit-open');
  const deferredOnBreaker = run.sinceOutage.filter((entry) => entry.kind === JournalKind.toolCallDeferred && entry.status === 'circuit-open');
  expect(parkedOnBreaker.length).toBeGreaterThanOrEqual(workflowCount / 2);
  expect(deferredOnBreaker.every((entry) => entry.name === 'pay_claim')).toBe(true);
  expect(deferredOnBreaker.length).toBeGreaterThanOrEqual(parkedOnBreaker.length);
  for (const entry of parkedOnBreaker) expect((entry.data as { wakeAt?: unknown }).wakeAt).toEqual(expect.any(Number));

  // Each failed attempt was a transient failure, retried: none ended a workflow.
  const failed = run.sinceOutage.filter((entry) => entry.kind === JournalKind.toolCallFailed);
  expect(failed.map((entry) => [entry.name, entry.status, (entry.data as { final?: boolean }).final])).toEqual(Array(failed.length).fill(['pay_claim', 'transient', false]));
  const retryParks = run.sinceOutage.filter((entry) => entry.kind === JournalKind.workflowParked && entry.name === 'retry').length;
  return { bound, parks: parkedOnBreaker.length, retryParks, deferred: deferredOnBreaker.length, failed: failed.length };
}

function summary(name: string, run: OutageRun, figures: ReturnType<typeof expectRiddenOut>): string {
  return (
    `${name}: ${workflowCount} workflows at payment; ${run.callsDuringOutage} calls to /payments and ${run.tokenRequestsDuringOutage} to /token reached the service while it was down ` +
    `(bound ${figures.bound}; ${workflowCount} workflows x ${payClaim.retry!.maxAttempts} attempts would be ${workflowCount * payClaim.retry!.maxAttempts!}); ` +
    `breaker: ${run.changes.map((change) => change.to).join(' > ')}; at most ${run.mostWaiting} workflows waiting at once; ` +
    `${figures.parks} parks on the open breaker, ${figures.retryParks} on backoff; ${figures.deferred} calls deferred by the breaker; ${figures.failed} failed attempts journaled.`
  );
}

describe('a payments outage', () => {
  it('opens the breaker, parks the workflows instead of spinning, probes, and pays every claim once when the service returns', async () => {
    const run = await payThroughOutage();
    const figures = expectRiddenOut(run);
    console.log(summary('outage', run, figures));
  }, 60_000);

  it('waits out a token endpoint that is down too, when the tokens expire during the outage', async () => {
    // Tokens live 600 ms, so every probe needs a new one, from an endpoint that is down.
    const run = await payThroughOutage({ tokenTtlMs: 600 });
    const figures = expectRiddenOut(run);
    // The failed refreshes kept the breaker open (a probe that could not get a token is a failed
    // probe), and after three in a row the provider stopped asking for a while.
    expect(run.refreshFailuresDuringOutage).toBeGreaterThan(0);
    expect(run.tokenRequestsDuringOutage).toBe(run.refreshFailuresDuringOutage);
    expect(run.tokenRequestsDuringOutage).toBeLessThanOrEqual(run.changes.filter((change) => change.to === 'half-open').length);
    console.log(`${summary('outage with expiring tokens', run, figures)} ${run.refreshFailuresDuringOutage} failed token refreshes.`);
  }, 60_000);
});

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await delay(10);
  }
}
