// Issue 4, must-show 1: 1,000 workflows wait for approval in one SQLite file. A real `keel worker`
// process parks them, is killed and replaced by a new one; half the requests are approved and
// half rejected through the public API (Keel.approve / Keel.reject, in this process). Every
// approved claim pays exactly once (the ledger is a separate SQLite file the tool writes to) and
// completes; every rejected one adapts: its agent reads the rejection reason and declines the
// claim. The restarted worker's resident memory while the 1,000 wait is compared with an idle
// worker's on an empty database: waiting costs rows, not memory.
//
// Needs the compiled CLI (npx tsc -p tsconfig.json), like test/crash.test.ts.

import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Agent } from '../src/agent/define-agent.js';
import { createKeel } from '../src/agent/keel.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const keelBin = join(root, 'bin', 'keel.js');
const compiledIndex = join(root, 'dist', 'src', 'index.js');
const workflowCount = 1000;
const memoryBudgetBytes = 50 * 1024 * 1024;

const directory = mkdtempSync(join(tmpdir(), 'keel-approvals-scale-'));
const databasePath = join(directory, 'keel.db');
const ledgerPath = join(directory, 'ledger.db');
const agentPath = join(directory, 'payer-agent.mjs');
const children = new Set<ChildProcess>();

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await delay(50);
  rmSync(directory, { recursive: true, force: true });
});

/** The agent module the workers import: the compiled Keel, a ledger in its own SQLite file. */
function agentSource(): string {
  return `
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(join(root, 'package.json'))});
const { z } = require('zod');
const Database = require('better-sqlite3');
const { defineAgent, defineTool, argsMatch, confidenceBelow } = await import(${JSON.stringify(pathToFileURL(compiledIndex).href)});

let ledger;
function ledgerDb() {
  ledger ??= new Database(process.env.APPROVAL_LEDGER_DB, { timeout: 10000 });
  return ledger;
}

const pay = defineTool({
  name: 'pay',
  description: 'Pays the claim to the payee.',
  input: z.object({ amount: z.number().positive(), payee: z.string().min(1) }),
  sideEffect: true,
  execute: async (args, context) => {
    ledgerDb().prepare('INSERT INTO payments (workflow_id, idempotency_key, amount) VALUES (?, ?, ?)').run(context.workflowId, context.idempotencyKey, args.amount);
    return { paid: args.amount };
  },
});

const decline = defineTool({
  name: 'decline',
  description: 'Closes the claim without paying it.',
  input: z.object({ reason: z.string() }),
  execute: async (args) => ({ declined: args.reason }),
});

export const agent = defineAgent({
  name: 'scale-payer',
  tools: [pay, decline],
  initial: 'review',
  states: {
    review: { tools: ['pay', 'decline'], next: ['paid', 'declined'], on: { pay: 'paid', decline: 'declined' } },
    paid: { final: true, outcome: 'paid' },
    declined: { final: true, outcome: 'declined' },
  },
  decide: (view) => {
    const last = view.lastObservation;
    if (last?.type === 'tool-error' && last.errorClass === 'approval-rejected') return { tool: 'decline', args: { reason: last.message } };
    return { tool: 'pay', args: { amount: view.input.amount, payee: view.input.payee }, reasoning: 'Receipt matches the claim.', confidence: 0.9 };
  },
  approval: { rules: [confidenceBelow(), argsMatch('amount over 1000', (args) => args.amount > 1000)], approvers: 'finance' },
});
`;
}

interface Worker {
  child: ChildProcess;
  output: string[];
}

function startWorker(): Worker {
  const environment: NodeJS.ProcessEnv = { ...process.env, APPROVAL_LEDGER_DB: ledgerPath, KEEL_LOG_LEVEL: 'warn' };
  delete environment.KEEL_MODEL;
  delete environment.KEEL_DB;
  const child = spawn(process.execPath, [keelBin, 'worker', '--db', databasePath, '--agent', agentPath, '--concurrency', '8', '--poll-ms', '100'], {
    cwd: directory,
    env: environment,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const output: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  return { child, output };
}

async function stopWorker(worker: Worker): Promise<void> {
  if (worker.child.exitCode !== null) return;
  const exited = new Promise((settle) => worker.child.once('exit', settle));
  worker.child.kill('SIGKILL');
  await exited;
}

/** Resident set size of a process, from /proc (Linux). */
function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((text) => text.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

/** The worker settled: polling with nothing to do. The largest of several samples, to be fair to the idle baseline too. */
async function settledResident(worker: Worker): Promise<number> {
  await delay(1500);
  let largest = 0;
  for (let sample = 0; sample < 5; sample++) {
    if (worker.child.exitCode !== null) throw new Error(`the worker exited: ${worker.output.join('')}`);
    largest = Math.max(largest, residentBytes(worker.child.pid!));
    await delay(200);
  }
  return largest;
}

async function until(what: string, worker: Worker, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (worker.child.exitCode !== null) throw new Error(`the worker exited while waiting for ${what}: ${worker.output.join('')}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; worker output: ${worker.output.join('').slice(-2000)}`);
    await delay(100);
  }
}

function statusCounts(reader: Database.Database): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const row of reader.prepare('SELECT status, count(*) AS n FROM workflows GROUP BY status').all() as { status: string; n: number }[]) counts[row.status] = row.n;
  return counts;
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

describe.skipIf(!existsSync(compiledIndex))('1,000 workflows waiting for approval', () => {
  it('survive a worker restart; approved ones pay exactly once, rejected ones adapt; waiting costs no worker memory', { timeout: 120_000 }, async () => {
    writeFileSync(agentPath, agentSource());
    const ledger = new Database(ledgerPath);
    ledger.exec('CREATE TABLE payments (workflow_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, amount REAL NOT NULL)');
    const agent = ((await import(pathToFileURL(agentPath).href)) as { agent: Agent }).agent;
    const keel = createKeel({ store: openSqliteStore({ path: databasePath }) });
    keel.register(agent, agentPath);
    const reader = new Database(databasePath, { readonly: true });
    try {
      // The idle baseline: a worker on the (empty) database with nothing to do.
      const first = startWorker();
      const idleBytes = await settledResident(first);

      const ids: string[] = [];
      for (let index = 0; index < workflowCount; index++) {
        ids.push((await keel.start('scale-payer', { amount: 1500 + index, payee: `DE89 ${index}` }, { principal: { id: `employee-${index % 50}` } })).id);
      }
      await until('1,000 workflows parked for approval', first, () => statusCounts(reader).waiting === workflowCount);
      const firstWaitingBytes = await settledResident(first);

      // The worker process is killed and a new one started: the waits are rows, nothing was in its memory.
      await stopWorker(first);
      const second = startWorker();
      const restartedWaitingBytes = await settledResident(second);
      expect(statusCounts(reader)).toEqual({ waiting: workflowCount });

      await keel.store.savePrincipal({ id: 'finance-lead', roles: ['finance'] }, 'test-setup');
      const requests = await keel.approvals({ limit: 10_000 });
      expect(requests).toHaveLength(workflowCount);
      expect(new Set(requests.map((request) => request.workflowId))).toEqual(new Set(ids));
      const approved = new Set<string>();
      const rejected = new Set<string>();
      // The first 50 approvals one at a time, each waited for, so the latency figure is the signal's, not a backlog's.
      const signalMs: number[] = [];
      for (const [index, request] of requests.slice(0, 100).entries()) {
        if (index % 2 !== 0) continue;
        const decidedAt = Date.now();
        await keel.approve(request.id, { by: 'finance-lead' });
        approved.add(request.workflowId);
        const nextStep = reader.prepare(`SELECT count(*) AS n FROM journal WHERE workflow_id = ? AND kind = 'tool-call-completed'`);
        await until(`workflow ${request.workflowId} to run its approved payment`, second, () => (nextStep.get(request.workflowId) as { n: number }).n > 0);
        signalMs.push(Date.now() - decidedAt);
      }
      signalMs.sort((a, b) => a - b);
      for (const [index, request] of requests.entries()) {
        if (index < 100 && index % 2 === 0) continue;
        if (index % 2 === 0) {
          await keel.approve(request.id, { by: 'finance-lead' });
          approved.add(request.workflowId);
        } else {
          await keel.reject(request.id, { by: 'finance-lead', reason: `no receipt for claim ${index}` });
          rejected.add(request.workflowId);
        }
      }
      // A second decision on any of them is refused.
      await expect(keel.reject(requests[0]!.id, { by: 'finance-lead', reason: 'changed my mind' })).rejects.toMatchObject({ code: 'APPROVAL_DECIDED' });
      await until('every workflow to finish', second, () => statusCounts(reader).completed === workflowCount);
      await stopWorker(second);

      const payments = ledger.prepare('SELECT workflow_id AS id, count(*) AS n, count(DISTINCT idempotency_key) AS keys FROM payments GROUP BY workflow_id').all() as { id: string; n: number; keys: number }[];
      expect(payments.filter((payment) => payment.n !== 1)).toEqual([]);
      expect(new Set(payments.map((payment) => payment.id))).toEqual(approved);
      for (const workflow of await keel.store.listWorkflows({ limit: 10_000 })) {
        expect(workflow.outcome).toBe(approved.has(workflow.id) ? 'paid' : 'declined');
      }
      // The rejected agents read the reason: their decline carries it.
      const declines = reader
        .prepare(`SELECT workflow_id AS id, json_extract(data, '$.args.reason') AS reason FROM journal WHERE kind = 'tool-call-completed' AND name = 'decline'`)
        .all() as { id: string; reason: string }[];
      expect(declines).toHaveLength(rejected.size);
      for (const decline of declines) {
        expect(rejected.has(decline.id)).toBe(true);
        expect(decline.reason).toMatch(/rejected by finance-lead: no receipt for claim \d+/);
      }

      // The bench figure (reported, not asserted): from a decision's commit to the workflow's next journal entry.
      const latencies = (
        reader
          .prepare(
            `SELECT (SELECT min(next.at) FROM journal next WHERE next.workflow_id = decided.workflow_id AND next.seq > decided.seq) - decided.at AS ms
             FROM journal decided WHERE decided.kind = 'approval-decided'`,
          )
          .all() as { ms: number }[]
      )
        .map((row) => row.ms)
        .sort((a, b) => a - b);
      const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
      console.log(
        `[approvals-scale] worker RSS: idle ${mb(idleBytes)} MB; with ${workflowCount} waiting: ${mb(firstWaitingBytes)} MB (after parking them), ` +
          `${mb(restartedWaitingBytes)} MB (restarted worker). Approval to the approved call completing (worker polls every 100 ms), one at a time: ` +
          `p50 ${percentile(signalMs, 0.5)} ms, p99 ${percentile(signalMs, 0.99)} ms (n=${signalMs.length}); ` +
          `with the other 950 decided in a burst: p50 ${percentile(latencies, 0.5)} ms, p99 ${percentile(latencies, 0.99)} ms.`,
      );
      expect(restartedWaitingBytes - idleBytes).toBeLessThan(memoryBudgetBytes);
      expect(firstWaitingBytes - idleBytes).toBeLessThan(memoryBudgetBytes);
    } finally {
      reader.close();
      ledger.close();
      await keel.close();
    }
  });
});
