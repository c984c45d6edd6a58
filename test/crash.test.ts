// The crash test: real `keel worker` processes on one SQLite file are killed with SIGKILL at
// random moments while they work through a batch of expense claims, and restarted each time.
// The restarted worker has to wait for the dead worker's leases to expire and recover its
// workflows. At the end every workflow must be completed as its input dictates, the payments
// ledger (kept by the service in this process, so it survives the kills) must hold exactly one
// payment per payable claim, and the journal must show the recovered steps resumed with the
// decision and idempotency key they had before the kill.

import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAgent } from '../src/cli/agent-loader.js';
import { chooseModel } from '../src/cli/model-choice.js';
import { createKeel, JournalKind, openSqliteStore, type JournalEntry, type WorkflowRecord } from '../src/index.js';
import { sampleClaims, type SampleClaim } from '../examples/expense-approval/claims.js';
import { startPaymentsService, type PaymentsService } from '../examples/expense-approval/payments-service.js';
import { seededRandom } from '../src/util/seeded-random.js';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const keelBin = join(root, 'bin', 'keel.js');
const compiledCli = join(root, 'dist', 'src', 'cli', 'main.js');

const claimCount = 60;
const claimSeed = 3;
const killSeed = 20_260_301;
const leaseMs = 1000;
const minimumLandedKills = 5;
const maximumKills = 16;
/** A kill lands this long (ms, seeded random) after the worker is seen holding a lease. */
const killDelayMs = { min: 30, max: 350 };
/** Calls per second the workers together may make to the payments service. */
const paymentsRate = 100;

interface WorkerRun {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: string[];
}

interface Kill {
  pid: number;
  afterMs: number;
  /** Workflows the worker held, with their state, when it died; `paying`: its pay_claim was decided and not yet recorded. */
  inFlight: { id: string; state: string; step: number; paying: boolean }[];
}

interface WorkflowRow {
  id: string;
  status: string;
  state: string;
  step: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
}

let directory: string;
let databasePath: string;
let payments: PaymentsService;
let reader: Database.Database | undefined;
const children = new Set<ChildProcess>();
const workerOutput: string[] = [];

beforeAll(async () => {
  if (!existsSync(compiledCli)) {
    throw new Error(`The crash test runs the compiled keel command, and ${compiledCli} is missing. Run \`npm run build\` first (npm test does).`);
  }
  directory = mkdtempSync(join(tmpdir(), 'keel-crash-'));
  databasePath = join(directory, 'keel.db');
  // Latency on every call, so kills land in the middle of steps, including mid-payment.
  payments = await startPaymentsService({ latencyMs: 80 });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([...children].map((child) => new Promise((settle) => (child.exitCode !== null || child.signalCode !== null ? settle(undefined) : child.once('exit', settle)))));
  reader?.close();
  await payments?.close();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

/** Approves every pending request as a principal of the finance group; returns how many there were. */
async function approveHeldPayments(): Promise<number> {
  const keel = createKeel({ store: openSqliteStore({ path: databasePath }) });
  try {
    await keel.store.savePrincipal({ id: 'fiona@finance', roles: ['finance'] }, 'crash-test');
    const pending = await keel.approvals({ limit: claimCount });
    for (const request of pending) await keel.approve(request.id, { by: 'fiona@finance' });
    return pending.length;
  } finally {
    await keel.close();
  }
}

/** Submits the batch through the library, as an application would, then closes that store. */
async function submitBatch(samples: readonly SampleClaim[]): Promise<WorkflowRecord[]> {
  const loaded = await loadAgent('expense-approval', root);
  const keel = createKeel({ store: openSqliteStore({ path: databasePath }) });
  // An empty environment: the scripted model decides, whatever KEEL_MODEL the developer has set.
  keel.register(chooseModel({}).prepare(loaded), loaded.module);
  try {
    const started: WorkflowRecord[] = [];
    for (const sample of samples) started.push(await keel.start(loaded.agent.name, sample.input));
    return started;
  } finally {
    await keel.close();
  }
}

function startWorker(...extra: string[]): WorkerRun {
  // The workers share the payments rate budget through the database; a generous one here, so
  // the kills land in every step rather than mostly in calls waiting for their turn.
  const environment: NodeJS.ProcessEnv = { ...process.env, EXPENSE_PAYMENTS_URL: payments.url, EXPENSE_PAYMENTS_RATE: String(paymentsRate), KEEL_LOG_LEVEL: 'warn' };
  delete environment.KEEL_MODEL;
  delete environment.KEEL_DB;
  const child = spawn(process.execPath, [keelBin, 'worker', '--db', databasePath, '--concurrency', '4', '--lease-ms', String(leaseMs), '--max-recoveries', '20', ...extra], {
    cwd: root,
    env: environment,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    output.push(chunk.toString('utf8'));
    workerOutput.push(`[${child.pid}] ${chunk.toString('utf8')}`);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((settle) => {
    child.once('exit', (code) => {
      children.delete(child);
      settle(code);
    });
  });
  return { child, exited, output };
}

function database(): Database.Database {
  reader ??= new Database(databasePath, { readonly: true, fileMustExist: true });
  return reader;
}

function rows(): WorkflowRow[] {
  return database().prepare('SELECT id, status, state, step, lease_owner, lease_expires_at FROM workflows').all() as WorkflowRow[];
}

/** Keel's worker ids are `<host>:<pid>:<random>`. */
function heldBy(pid: number): WorkflowRow[] {
  return rows().filter((row) => row.status === 'running' && row.lease_owner?.split(':').at(-2) === String(pid));
}

/** Whether the workflow's current step is a decided pay_claim: a kill now lands mid-payment. */
function payingAt(row: Pick<WorkflowRow, 'id' | 'step'>): boolean {
  const decided = database().prepare("SELECT 1 FROM journal WHERE workflow_id = ? AND step = ? AND kind = 'action-decided' AND name = 'pay_claim'").get(row.id, row.step);
  return decided !== undefined;
}

function allFinished(): boolean {
  return rows().every((row) => row.status === 'completed' || row.status === 'failed' || row.status === 'cancelled');
}

/** Resolves true once the worker holds a lease, false if it exits or the batch finishes first. */
async function untilWorking(run: WorkerRun): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (run.child.exitCode !== null) return false;
    if (heldBy(run.child.pid!).length > 0) return true;
    if (allFinished()) return false;
    await delay(5);
  }
  throw new Error(`Worker ${run.child.pid} held no lease within 10 s while work was left. Its output:\n${run.output.join('')}`);
}

async function untilLeasesExpire(): Promise<void> {
  for (;;) {
    const now = Date.now();
    const live = rows().filter((row) => row.status === 'running' && (row.lease_expires_at ?? 0) >= now);
    if (live.length === 0) return;
    await delay(Math.max(...live.map((row) => row.lease_expires_at! - now)) + 10);
  }
}


function entriesOf(journal: readonly JournalEntry[], kind: JournalKind, name?: string): JournalEntry[] {
  return journal.filter((entry) => entry.kind === kind && (name === undefined || entry.name === name));
}

describe('crash recovery with SIGKILLed worker processes', () => {
  it('completes every claim as its input dictates (held payments once finance approves them) and pays each payable claim exactly once', async () => {
    const samples = sampleClaims(claimCount, claimSeed);
    const started = await submitBatch(samples);
    const random = seededRandom(killSeed);
    const kills: Kill[] = [];

    // Kill workers until enough kills landed while they held work, and at least one landed while
    // a claim was being paid (its pay_claim decided, not yet recorded): that is the step where a
    // lost key would pay twice. Being in state 'payment' is not enough: a worker that recovered
    // a workflow there may not have decided yet.
    const enough = () => kills.filter((kill) => kill.inFlight.length > 0).length >= minimumLandedKills && kills.some((kill) => kill.inFlight.some((row) => row.paying));
    while (!enough() && kills.length < maximumKills) {
      const run = startWorker();
      if (!(await untilWorking(run))) {
        run.child.kill('SIGKILL');
        await run.exited;
        break;
      }
      const afterMs = Math.round(killDelayMs.min + random() * (killDelayMs.max - killDelayMs.min));
      await delay(afterMs);
      run.child.kill('SIGKILL');
      await run.exited;
      kills.push({ pid: run.child.pid!, afterMs, inFlight: heldBy(run.child.pid!).map(({ id, state, step }) => ({ id, state, step, paying: payingAt({ id, step }) })) });
    }

    // A last worker finishes the batch once the dead workers' leases ran out.
    await untilLeasesExpire();
    const last = startWorker('--once');
    expect(await last.exited, `the final worker failed:\n${last.output.join('')}`).toBe(0);
    // Payments the finance group holds wait, unpaid, through every kill; finance approves them
    // through the library and one more worker pays them.
    expect(await approveHeldPayments()).toBe(samples.filter((sample) => sample.needsApproval).length);
    const paying = startWorker('--once');
    expect(await paying.exited, `the worker after the approvals failed:\n${paying.output.join('')}`).toBe(0);

    const landed = kills.filter((kill) => kill.inFlight.length > 0);
    expect(landed.length, `kills: ${JSON.stringify(kills)}`).toBeGreaterThanOrEqual(minimumLandedKills);

    const store = openSqliteStore({ path: databasePath });
    try {
      const results = await Promise.all(
        started.map(async (workflow, index) => ({
          sample: samples[index]!,
          workflow: (await store.getWorkflow(workflow.id))!,
          journal: await store.readJournal(workflow.id),
        })),
      );
      const stuck = results.filter(({ workflow }) => workflow.status !== 'completed');
      expect(stuck.map(({ workflow }) => [workflow.id, workflow.status, workflow.state, workflow.failure?.message]), `worker output:\n${workerOutput.join('')}`).toEqual([]);

      // Outcomes as the inputs dictate. A resubmitted claim has the same input as its original:
      // of the two, exactly one is paid and one rejected, whichever a crash let pay first.
      const byClaim = new Map<string, typeof results>();
      for (const result of results) byClaim.set(result.sample.input.claimId, [...(byClaim.get(result.sample.input.claimId) ?? []), result]);
      for (const [claimId, group] of byClaim) {
        const outcomes = group.map(({ workflow }) => workflow.outcome).sort();
        const expected = group.map(({ sample }) => sample.expected).sort();
        expect({ claimId, outcomes }).toEqual({ claimId, outcomes: expected });
      }

      // Exactly one payment per payable claim: none missing, none twice, none for a rejected claim.
      const ledger = payments.ledger();
      const payable = [...byClaim].filter(([, group]) => group.some(({ sample }) => sample.expected === 'paid')).map(([claimId]) => claimId);
      expect(ledger.map((payment) => payment.claimId).sort()).toEqual(payable.sort());
      expect(payments.stats().created).toBe(payable.length);

      for (const { workflow, journal } of results) {
        // Every key this workflow ever used to pay: the steps of its pay_claim calls and of the
        // pay_claim actions it was recovered into. One step, one key, even across kills.
        const recoveredInto = entriesOf(journal, JournalKind.workflowRecovered)
          .map((entry) => (entry.data as { resumesAction: { tool: string; idempotencyKey: string } | null }).resumesAction)
          .filter((action) => action?.tool === 'pay_claim')
          .map((action) => action!.idempotencyKey);
        const calledWith = journal
          .filter((entry) => entry.name === 'pay_claim' && (entry.kind === JournalKind.toolCallCompleted || entry.kind === JournalKind.toolCallFailed))
          .map((entry) => `${workflow.id}:${entry.step}`);
        const keys = new Set([...recoveredInto, ...calledWith]);
        const payment = ledger.filter((entry) => entry.idempotencyKey.startsWith(`${workflow.id}:`));
        if (workflow.outcome === 'paid') {
          const paid = entriesOf(journal, JournalKind.toolCallCompleted, 'pay_claim');
          expect(paid).toHaveLength(1);
          expect([...keys]).toEqual([`${workflow.id}:${paid[0]!.step}`]);
          expect(payment.map((entry) => entry.idempotencyKey)).toEqual([...keys]);
        } else {
          expect(payment).toEqual([]);
          expect(keys.size).toBeLessThanOrEqual(1);
        }
      }

      // The journal shows the resumed steps: every workflow a kill caught was recovered by a later
      // worker, and a recovered action ran again at its own step with no new decision.
      const inFlightAtKill = new Set(landed.flatMap((kill) => kill.inFlight.map((row) => row.id)));
      const journals = new Map(results.map(({ workflow, journal }) => [workflow.id, journal]));
      for (const id of inFlightAtKill) {
        expect(entriesOf(journals.get(id)!, JournalKind.workflowRecovered).length, `workflow ${id} was caught by a kill`).toBeGreaterThan(0);
      }
      let resumedActions = 0;
      for (const journal of journals.values()) {
        for (const recovery of entriesOf(journal, JournalKind.workflowRecovered)) {
          const action = (recovery.data as { resumesAction: { tool: string } | null }).resumesAction;
          if (!action) continue;
          resumedActions++;
          const later = journal.filter((entry) => entry.seq > recovery.seq && entry.step === recovery.step);
          expect(later.some((entry) => entry.name === action.tool && (entry.kind === JournalKind.toolCallCompleted || entry.kind === JournalKind.toolCallFailed))).toBe(true);
          expect(entriesOf(later, JournalKind.actionDecided)).toEqual([]);
        }
      }
      const recoveries = [...journals.values()].flatMap((journal) => entriesOf(journal, JournalKind.workflowRecovered));
      const recoveredIntoPayment = recoveries.filter((entry) => (entry.data as { resumesAction: { tool: string } | null }).resumesAction?.tool === 'pay_claim');
      expect(recoveries.length).toBeGreaterThanOrEqual(inFlightAtKill.size);
      expect(recoveredIntoPayment.length).toBeGreaterThan(0);

      console.info(
        `crash test: ${claimCount} claims, ${kills.length} kills (${landed.length} landed, ${landed.reduce((sum, kill) => sum + kill.inFlight.length, 0)} workflows caught, ` +
          `${landed.filter((kill) => kill.inFlight.some((row) => row.paying)).length} mid-payment), ` +
          `${recoveries.length} recoveries (${resumedActions} resumed a decided action, ${recoveredIntoPayment.length} into pay_claim), ` +
          `${payments.stats().replayed} payments confirmed by idempotent replay, ${ledger.length} payments.`,
      );
    } finally {
      await store.close();
    }
  });
});
