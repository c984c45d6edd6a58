// The tool runner riding out a hostile payments service (issue 3, must-show 1): 100 expense
// claims through one Keel worker, 8 at a time, against a service that answers 30% of payment
// requests with 503, every 25th with 429 and a Retry-After, lets tokens expire every 2 s without
// saying so, hangs on some calls and loses the answer to some payments it made. What must hold:
// every payable claim is paid exactly once, no workflow fails or is left waiting, the service
// never receives more calls per second than the example's rate budget allows, token refreshes
// track expiries (one refresh per expiry, however many calls ran into it), and no token issued
// by the service appears anywhere Keel writes: the database, the logs, the events.

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeel, JournalKind, openSqliteStore, type JournalEntry, type Keel, type KeelEvent, type WorkflowRecord } from '../src/index.js';
import { scriptedModel } from '../src/testing.js';
import { expenseApprovalUnattended, script } from '../examples/expense-approval/agent.js';
import { sampleClaims } from '../examples/expense-approval/claims.js';
import { paymentsCredentials, paymentsService } from '../examples/expense-approval/payments-access.js';
import { startPaymentsService, type PaymentsService } from '../examples/expense-approval/payments-service.js';
import { seededRandom } from '../src/util/seeded-random.js';

const claimCount = 100;
const claimSeed = 7;
const faultSeed = 20_260_303;
const concurrency = 8;
const tokenTtlMs = 2_000;
/** Waits longer than this park the workflow (a 429's 1 s Retry-After always does). */
const parkAfterMs = 500;
/** Refreshes beyond one per expiry: the first token, and a refresh racing an expiry it did not see. */
const refreshSlack = 2;

const paymentsUrlVariable = 'EXPENSE_PAYMENTS_URL';

let directory: string;
let databasePath: string;
let payments: PaymentsService;
let keel: Keel;
let previousPaymentsUrl: string | undefined;
const logLines: string[] = [];
const events: KeelEvent[] = [];

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'keel-reliability-'));
  databasePath = join(directory, 'keel.db');
  payments = await startPaymentsService({
    latencyMs: 150,
    failureRate: 0.3,
    periodicRateLimit: { every: 25, retryAfterSeconds: 1 },
    tokenTtlMs,
    hideTokenTtl: true,
    hangRate: 0.03,
    lostResponseRate: 0.03,
    random: seededRandom(faultSeed),
  });
  previousPaymentsUrl = process.env[paymentsUrlVariable];
  process.env[paymentsUrlVariable] = payments.url;
  // Everything Keel logs, down to debug, goes to this buffer, to be searched for tokens.
  const logger = pino({ level: 'debug', base: undefined }, { write: (line: string) => void logLines.push(line) });
  keel = createKeel({
    store: openSqliteStore({ path: databasePath }),
    agents: [expenseApprovalUnattended],
    model: scriptedModel(script),
    logger,
    parkAfterMs,
    onEvent: (event) => events.push(event),
  });
});

afterAll(async () => {
  if (previousPaymentsUrl === undefined) delete process.env[paymentsUrlVariable];
  else process.env[paymentsUrlVariable] = previousPaymentsUrl;
  await keel?.close();
  await payments?.close();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

describe('the tool runner against a flaky, rate-limited payments service with expiring tokens', () => {
  it('pays every payable claim exactly once, within the rate budget, with one token refresh per expiry and no token leaked', async () => {
    const samples = sampleClaims(claimCount, claimSeed);
    const started: WorkflowRecord[] = [];
    for (const sample of samples) started.push(await keel.start(expenseApprovalUnattended.name, sample.input));
    const startedAt = Date.now();

    await keel.work({ concurrency, once: true });

    const seconds = (Date.now() - startedAt) / 1000;
    const results = await Promise.all(
      started.map(async (workflow, index) => ({ sample: samples[index]!, ...(await keel.inspect(workflow.id)) })),
    );

    // No workflow failed, none is left waiting: every transient fault was ridden out.
    const unfinished = results.filter(({ workflow }) => workflow.status !== 'completed');
    expect(unfinished.map(({ workflow }) => [workflow.id, workflow.status, workflow.waitingFor, workflow.failure?.message])).toEqual([]);

    // Outcomes as the inputs dictate. A resubmitted claim has its original's input: of the two,
    // exactly one is paid and the other rejected, whichever reached the service first.
    const byClaim = new Map<string, typeof results>();
    for (const result of results) byClaim.set(result.sample.input.claimId, [...(byClaim.get(result.sample.input.claimId) ?? []), result]);
    for (const [claimId, group] of byClaim) {
      expect({ claimId, outcomes: group.map(({ workflow }) => workflow.outcome).sort() }).toEqual({ claimId, outcomes: group.map(({ sample }) => sample.expected).sort() });
    }

    // Exactly one payment per payable claim, made under the key of the workflow that reports it.
    const ledger = payments.ledger();
    const payable = [...byClaim].filter(([, group]) => group.some(({ sample }) => sample.expected === 'paid')).map(([claimId]) => claimId);
    expect(ledger.map((payment) => payment.claimId).sort()).toEqual(payable.sort());
    for (const { workflow, journal } of results.filter(({ workflow }) => workflow.outcome === 'paid')) {
      const paid = journal.filter((entry) => entry.kind === JournalKind.toolCallCompleted && entry.name === 'pay_claim');
      expect(paid).toHaveLength(1);
      const receipt = (paid[0]!.data as { result: { paymentId: string } }).result;
      expect(ledger.find((payment) => payment.id === receipt.paymentId)).toMatchObject({ idempotencyKey: `${workflow.id}:${paid[0]!.step}` });
    }

    // The service never saw more calls in a second than the budget allows.
    const stats = payments.stats();
    const budget = paymentsService.rateLimit!.perSecond!;
    expect(stats.maxPerSecond).toBeLessThanOrEqual(budget);

    // Single-flight refresh: one new token per expiry the clients ran into (plus the first),
    // although several calls were refused with each expired token.
    expect(stats.tokensExpired).toBeGreaterThan(0);
    expect(stats.tokensIssued).toBeLessThanOrEqual(stats.tokensExpired + refreshSlack);
    expect(paymentsCredentials.stats.refreshes).toBe(stats.tokensIssued);
    expect(stats.unauthorized).toBeGreaterThan(stats.tokensIssued);

    // Every fault the service injected shows in the journal as one failed attempt of its class,
    // retried (none was final); a lost answer was confirmed by the retry's idempotent replay.
    const retriesOf = (errorClass: string) =>
      countEntries(results, (entry) => entry.kind === JournalKind.toolCallFailed && entry.status === errorClass && (entry.data as { final?: boolean }).final === false);
    expect(stats.failed503).toBeGreaterThan(0);
    expect(stats.rateLimited).toBeGreaterThan(0);
    expect(stats.hung + stats.lostResponses).toBeGreaterThan(0);
    expect({ transient: retriesOf('transient'), rateLimited: retriesOf('rate-limited'), authExpired: retriesOf('auth-expired') }).toEqual({
      transient: stats.failed503 + stats.hung + stats.lostResponses,
      rateLimited: stats.rateLimited,
      authExpired: stats.unauthorized,
    });
    expect(stats.replayed).toBeGreaterThanOrEqual(stats.lostResponses);
    const retries = countEntries(results, (entry) => entry.kind === JournalKind.toolCallFailed && (entry.data as { final?: boolean }).final === false);
    const parkedFor = (reason: string) => countEntries(results, (entry) => entry.kind === JournalKind.workflowParked && entry.name === reason);
    const parks = countEntries(results, (entry) => entry.kind === JournalKind.workflowParked);
    const deferrals = countEntries(results, (entry) => entry.kind === JournalKind.toolCallDeferred && (entry.data as { parked?: boolean }).parked === false);
    // A 429's Retry-After (1 s) is longer than parkAfterMs: the calls waiting on it were parked.
    expect(parkedFor('rate-limit') + parkedFor('retry')).toBeGreaterThan(0);

    // No token the service issued appears in the database (every table, every column), the logs,
    // or the events; the search itself is shown to find a token where one is.
    const tokens = payments.issuedTokens();
    expect(tokens.length).toBe(stats.tokensIssued);
    expect(leakedTokens(`Bearer ${tokens[0]}`, tokens)).toEqual([tokens[0]]);
    expect(leakedTokens(databaseText(databasePath), tokens)).toEqual([]);
    expect(leakedTokens(logLines.join('\n'), tokens)).toEqual([]);
    expect(leakedTokens(JSON.stringify(events), tokens)).toEqual([]);
    expect(logLines.length).toBeGreaterThan(0);

    const mostAttempts = Math.max(...results.flatMap(({ journal }) => journal.filter((entry) => entry.kind === JournalKind.toolCallCompleted).map((entry) => entry.attempt ?? 1)));
    const breakerChanges = events.filter((event) => event.type === 'breaker-changed').length;
    console.log(
      `reliability: ${claimCount} claims (${payable.length} payable) in ${seconds.toFixed(1)} s, concurrency ${concurrency}; ` +
        `service: ${stats.calls} calls (max ${stats.maxPerSecond}/s, budget ${budget}/s), ${stats.failed503} 503s, ${stats.rateLimited} 429s, ` +
        `${stats.hung} hung, ${stats.lostResponses} answers lost, ${stats.unauthorized} 401s; tokens: ${stats.tokensIssued} issued, ${stats.tokensExpired} expired in use; ` +
        `journal: ${retries} retries, ${parks} parks (${parkedFor('retry')} retry, ${parkedFor('rate-limit')} rate-limit, ${parkedFor('circuit-open')} circuit-open), ` +
        `${deferrals} short waits; the longest call took ${mostAttempts} attempts; ${breakerChanges} breaker changes; ${stats.replayed} payments confirmed by replay.`,
    );
  }, 60_000);
});

function countEntries(results: readonly { journal: readonly JournalEntry[] }[], matches: (entry: JournalEntry) => boolean): number {
  return results.reduce((sum, { journal }) => sum + journal.filter(matches).length, 0);
}

function leakedTokens(text: string, tokens: readonly string[]): string[] {
  return tokens.filter((token) => text.includes(token));
}

/** Every row of every table in the Keel database, as text. */
function databaseText(path: string): string {
  const database = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = database.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    return tables.map(({ name }) => JSON.stringify(database.prepare(`SELECT * FROM "${name}"`).all())).join('\n');
  } finally {
    database.close();
  }
}

