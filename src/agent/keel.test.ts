// Keel as a worker runtime: workers that die mid-step, leases that expire, recovery limits and
// agent versions. Each worker is its own Keel on its own connection to one SQLite file, as
// separate processes would be. A worker "dies" when a tool kills it mid-call: from then on nothing
// it does reaches the database, as after a kill -9, so the store holds exactly what it had
// committed. Time moves only by a shared ManualClock.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { scriptedModel, type ScriptedModel } from '../model/scripted-model.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { JournalEntry, Store, WorkflowRecord } from '../store/types.js';
import { defineTool } from '../tools/tool.js';
import { ManualClock } from '../util/clock.js';
import { defineAgent, type Agent, type AgentDefinition } from './define-agent.js';
import { createKeel, type Keel, type KeelOptions } from './keel.js';

const leaseMs = 1000;

let directory: string;
let clock: ManualClock;
let keels: Keel[];
/** Tool calls as they reached the tools: which tool, with which idempotency key. */
let calls: { tool: string; key: string }[];
/** The tool whose every call kills the worker running it (undefined: no one dies). */
let killDuring: string | undefined;
/** Kills the worker that is running now (set by runUntilKilled). */
let killWorker: (() => void) | undefined;
let kills: Map<Keel, () => void>;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-worker-'));
  clock = new ManualClock();
  keels = [];
  calls = [];
  killDuring = undefined;
  killWorker = undefined;
  kills = new Map();
});

afterEach(async () => {
  await Promise.all(keels.map((keel) => keel.close()));
  rmSync(directory, { recursive: true, force: true });
});

const storeWrites = new Set<PropertyKey>(['createWorkflow', 'claim', 'renewLease', 'commit', 'updateWorkflow', 'pruneFinished']);

/** A store whose process can be killed: after `kill`, every write fails and nothing more is written. */
function mortal(store: Store): { store: Store; kill: () => void } {
  let dead = false;
  const proxy = new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (dead && storeWrites.has(property)) {
        return async () => {
          throw new Error(`the worker process was killed; its ${String(property)} never reached the database`);
        };
      }
      return value.bind(target);
    },
  });
  return { store: proxy, kill: () => (dead = true) };
}

/** A worker: its own Keel and its own connection to the shared database file. */
function worker(workerId: string, agent: Agent, options: Partial<KeelOptions> = {}): Keel {
  const { store, kill } = mortal(openSqliteStore({ path: join(directory, 'keel.db'), clock }));
  const keel = createKeel({ store, agents: [agent], clock, leaseMs, workerId, ...options });
  keels.push(keel);
  kills.set(keel, kill);
  return keel;
}

/** Runs a workflow until a tool kills the worker mid-call; returns the workflow as the database holds it. */
async function runUntilKilled(keel: Keel, workflowId: string): Promise<WorkflowRecord> {
  let killed = false;
  killWorker = () => {
    killed = true;
    kills.get(keel)!();
  };
  const stopped = await keel.run(workflowId);
  expect(killed, 'the worker was killed mid-call').toBe(true);
  killWorker = undefined;
  return stopped;
}

const sideEffect = (name: string) =>
  defineTool({
    name,
    description: `Does ${name}.`,
    input: z.object({ amount: z.number() }),
    sideEffect: true,
    execute: (args, ctx) => {
      calls.push({ tool: name, key: ctx.idempotencyKey });
      if (killDuring === name) {
        killWorker?.();
        throw new Error(`${name} never finished: its worker died`);
      }
      ctx.append('effects', { tool: name, key: ctx.idempotencyKey });
      return { done: name, amount: args.amount };
    },
  });

const pay = sideEffect('pay');
const notify = sideEffect('notify');
const review = sideEffect('review');

function payoutDefinition(overrides: Partial<AgentDefinition> = {}): AgentDefinition {
  return {
    name: 'payout',
    version: '1',
    tools: [pay, notify],
    initial: 'paying',
    states: {
      paying: { tools: ['pay'], next: ['notifying'], on: { pay: 'notifying' } },
      notifying: { tools: ['notify'], next: ['done'], on: { notify: 'done' } },
      done: { final: true },
    },
    decide: (view) => ({ tool: view.state === 'paying' ? 'pay' : 'notify', args: { amount: 40 } }),
    ...overrides,
  };
}

const payoutModel = (): ScriptedModel => scriptedModel((view) => ({ tool: view.state === 'paying' ? 'pay' : 'notify', input: { amount: 40 } }));

function kinds(journal: JournalEntry[]): string[] {
  return journal.map((entry) => (entry.name ? `${entry.kind}:${entry.name}` : entry.kind));
}

describe('a decision is durable', () => {
  it('resumes a step whose worker died after deciding: same action, same idempotency key, no second model call', async () => {
    const model = payoutModel();
    const agent = defineAgent(payoutDefinition({ decide: undefined }));
    const first = worker('worker-a', agent, { model });
    const { id } = await first.start('payout', {});

    killDuring = 'notify';
    const crashed = await runUntilKilled(first, id);

    expect(crashed).toMatchObject({ status: 'running', state: 'notifying', step: 1, leaseOwner: 'worker-a' });
    expect(model.calls).toBe(2);
    const second = worker('worker-b', agent, { model });
    const before = await second.inspect(id);
    // Step 1 was decided and checkpointed, and its call never finished.
    expect(kinds(before.journal.filter((entry) => entry.step === 1))).toEqual(['action-decided:notify', 'checkpoint-saved']);

    killDuring = undefined;
    clock.advance(leaseMs + 1);
    const final = await second.run(id);

    expect(final).toMatchObject({ status: 'completed', state: 'done', step: 2, recoveries: 1 });
    expect(model.calls).toBe(2);
    // pay completed before the crash and never ran again; notify ran again with the key it had.
    expect(calls).toEqual([
      { tool: 'pay', key: `${id}:0` },
      { tool: 'notify', key: `${id}:1` },
      { tool: 'notify', key: `${id}:1` },
    ]);
    const { journal } = await second.inspect(id);
    expect(kinds(journal.filter((entry) => entry.step === 1))).toEqual([
      'action-decided:notify',
      'checkpoint-saved',
      'workflow-recovered',
      'tool-call-completed:notify',
      'state-changed:done',
    ]);
    expect(journal.find((entry) => entry.kind === 'workflow-recovered')).toMatchObject({
      status: 'recovered',
      attempt: 1,
      data: { worker: 'worker-b', recoveries: 1, resumesAction: { tool: 'notify', idempotencyKey: `${id}:1` } },
    });
    expect(await second.store.loadContext(id)).toEqual({
      effects: [
        { tool: 'pay', key: `${id}:0` },
        { tool: 'notify', key: `${id}:1` },
      ],
    });
  });
});

describe('leases', () => {
  it('keeps a dead worker’s workflow from others until its lease expires, then another worker recovers it', async () => {
    const agent = defineAgent(payoutDefinition());
    const workerA = worker('worker-a', agent);
    const { id } = await workerA.start('payout', {});
    killDuring = 'pay';
    await runUntilKilled(workerA, id);
    killDuring = undefined;
    const workerB = worker('worker-b', agent);
    const journalAtDeath = (await workerB.inspect(id)).journal;

    clock.advance(leaseMs - 1);
    expect(await workerB.runNext()).toBeUndefined();
    const refused = await workerB.run(id);
    expect(refused).toMatchObject({ status: 'running', leaseOwner: 'worker-a', step: 0, recoveries: 0 });
    expect((await workerB.inspect(id)).journal).toEqual(journalAtDeath);
    expect(calls).toEqual([{ tool: 'pay', key: `${id}:0` }]);

    clock.advance(2);
    const final = await workerB.runNext();

    expect(final).toMatchObject({ id, status: 'completed', recoveries: 1, leaseOwner: null });
    expect(calls.map((call) => call.key)).toEqual([`${id}:0`, `${id}:0`, `${id}:1`]);
    const { journal } = await workerB.inspect(id);
    expect(kinds(journal)).toEqual([
      'workflow-started:payout',
      'action-decided:pay',
      'checkpoint-saved',
      'workflow-recovered',
      'tool-call-completed:pay',
      'state-changed:notifying',
      'action-decided:notify',
      'checkpoint-saved',
      'tool-call-completed:notify',
      'state-changed:done',
      'workflow-completed:done',
    ]);
    expect(journal.find((entry) => entry.kind === 'workflow-recovered')!.data).toMatchObject({ worker: 'worker-b', recoveries: 1 });
  });

  it('parks a workflow for review after maxRecoveries recoveries instead of crashing workers forever', async () => {
    const agent = defineAgent(payoutDefinition());
    const maxRecoveries = 2;
    const { id } = await worker('worker-0', agent).start('payout', {});
    killDuring = 'pay';

    await runUntilKilled(worker('worker-1', agent, { maxRecoveries }), id);
    for (const name of ['worker-2', 'worker-3']) {
      clock.advance(leaseMs + 1);
      await runUntilKilled(worker(name, agent, { maxRecoveries }), id);
    }
    clock.advance(leaseMs + 1);
    const survivor = worker('worker-4', agent, { maxRecoveries });
    const parked = await survivor.run(id);

    expect(calls).toHaveLength(1 + maxRecoveries);
    expect(new Set(calls.map((call) => call.key))).toEqual(new Set([`${id}:0`]));
    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'review', recoveries: 3, leaseOwner: null, step: 0 });
    expect(parked.failure).toMatchObject({ code: 'RECOVERY_LIMIT', state: 'paying', step: 0 });
    expect(parked.failure!.message).toContain(`Workflow ${id} was recovered 3 times after its worker died (limit 2)`);
    expect(parked.failure!.message).toContain('parked for review');
    const { journal } = await survivor.inspect(id);
    expect(journal.filter((entry) => entry.kind === 'workflow-recovered').map((entry) => entry.attempt)).toEqual([1, 2]);
    expect(journal.at(-1)).toMatchObject({ kind: 'workflow-parked', name: 'review', status: 'waiting', data: { code: 'RECOVERY_LIMIT' } });

    // Parked means parked: no worker picks it up again on its own.
    clock.advance(10 * leaseMs);
    expect(await survivor.runNext()).toBeUndefined();

    // Once the cause is fixed, an operator's resume runs it to the end with a fresh count.
    killDuring = undefined;
    const resumed = await survivor.resume(id);
    expect(resumed).toMatchObject({ status: 'completed', recoveries: 0, failure: null });
    expect(calls.filter((call) => call.tool === 'pay')).toHaveLength(1 + maxRecoveries + 1);
  });
});

describe('agent versions', () => {
  // Version 2 reviews a payment before paying: a new state and a new tool.
  function version2(overrides: Partial<AgentDefinition> = {}): Agent {
    return defineAgent(
      payoutDefinition({
        version: '2',
        tools: [pay, notify, review],
        states: {
          reviewing: { tools: ['review'], next: ['paying'], on: { review: 'paying' } },
          paying: { tools: ['pay'], next: ['notifying'], on: { pay: 'notifying' } },
          notifying: { tools: ['notify'], next: ['done'], on: { notify: 'done' } },
          done: { final: true },
        },
        initial: 'reviewing',
        decide: (view) => ({ tool: { reviewing: 'review', paying: 'pay' }[view.state] ?? 'notify', args: { amount: 40 } }),
        ...overrides,
      }),
    );
  }

  /** A workflow that version 1 ran one step of (pay), then handed back when its worker shut down. */
  async function startedOnVersion1(): Promise<{ id: string; version1: Agent }> {
    const version1 = defineAgent(payoutDefinition());
    const shutdown = new AbortController();
    const keel = worker('worker-v1', version1, { onEvent: (event) => event.type === 'step-completed' && shutdown.abort() });
    const { id } = await keel.start('payout', {});
    const stopped = await keel.run(id, shutdown.signal);
    expect(stopped).toMatchObject({ status: 'pending', state: 'notifying', step: 1, agentVersion: version1.versionId, leaseOwner: null });
    return { id, version1 };
  }

  it('refuses to resume a workflow under a changed definition, naming the workflow and both versions', async () => {
    const { id, version1 } = await startedOnVersion1();
    const version2Agent = version2();
    const keel = worker('worker-v2', version2Agent);

    const parked = await keel.run(id);

    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'version-mismatch', state: 'notifying', step: 1, agentVersion: version1.versionId });
    expect(parked.failure).toMatchObject({ code: 'VERSION_MISMATCH', state: 'notifying', step: 1 });
    const message = parked.failure!.message;
    expect(message).toContain(`Workflow ${id} started on agent 'payout' version ${version1.versionId}, but this worker has version ${version2Agent.versionId}`);
    expect(message).toContain("migration for version '1'");
    expect(calls.map((call) => call.tool)).toEqual(['pay']);
    const { journal } = await keel.inspect(id);
    expect(journal.at(-1)).toMatchObject({ kind: 'workflow-parked', name: 'version-mismatch', data: { code: 'VERSION_MISMATCH' } });
    expect(await keel.store.loadContext(id)).toEqual({ effects: [{ tool: 'pay', key: `${id}:0` }] });
  });

  it('asks for a version bump when the definition changed but its version label did not', async () => {
    const { id, version1 } = await startedOnVersion1();
    const changed = version2({ version: '1', migrations: { '1': (snapshot) => snapshot } });
    const keel = worker('worker-v1-changed', changed);

    const parked = await keel.run(id);

    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'version-mismatch', agentVersion: version1.versionId });
    expect(parked.failure!.message).toContain(`version ${version1.versionId}, but this worker has version ${changed.versionId}`);
    // A migration keyed by the unchanged label could never apply: the fix is a new label.
    expect(parked.failure!.message).toContain("give the changed definition a new version label (it is still '1')");
    expect(calls.map((call) => call.tool)).toEqual(['pay']);
  });

  it('resumes a parked workflow once the agent supplies a migration for its version', async () => {
    const { id, version1 } = await startedOnVersion1();
    expect((await worker('worker-v2', version2()).run(id)).status).toBe('waiting');
    const migrated = version2({
      migrations: { '1': (snapshot) => ({ state: snapshot.state, context: { ...snapshot.context, migratedFrom: '1' } }) },
    });
    const keel = worker('worker-v2-migrating', migrated);

    const final = await keel.resume(id);

    expect(final).toMatchObject({ status: 'completed', state: 'done', agentVersion: migrated.versionId, failure: null });
    expect(calls.map((call) => call.tool)).toEqual(['pay', 'notify']);
    const { journal } = await keel.inspect(id);
    expect(journal.find((entry) => entry.kind === 'workflow-migrated')).toMatchObject({
      step: 1,
      data: { from: version1.versionId, to: migrated.versionId, state: { from: 'notifying', to: 'notifying' } },
    });
    expect(await keel.store.loadContext(id)).toEqual({
      effects: [
        { tool: 'pay', key: `${id}:0` },
        { tool: 'notify', key: `${id}:1` },
      ],
      migratedFrom: '1',
    });
  });

  it('moves a migrated workflow to the state its migration chose', async () => {
    const { id } = await startedOnVersion1();
    // Version 2 renames 'notifying' to 'announcing'.
    const renamed = defineAgent(
      payoutDefinition({
        version: '2',
        states: {
          paying: { tools: ['pay'], next: ['announcing'], on: { pay: 'announcing' } },
          announcing: { tools: ['notify'], next: ['done'], on: { notify: 'done' } },
          done: { final: true },
        },
        migrations: { '1': (snapshot) => ({ state: snapshot.state === 'notifying' ? 'announcing' : snapshot.state, context: snapshot.context }) },
      }),
    );
    const keel = worker('worker-v2', renamed);

    const final = await keel.run(id);

    expect(final).toMatchObject({ status: 'completed', state: 'done', agentVersion: renamed.versionId });
    expect(calls.map((call) => call.tool)).toEqual(['pay', 'notify']);
    const { journal } = await keel.inspect(id);
    expect(journal.find((entry) => entry.kind === 'workflow-migrated')!.data).toMatchObject({ state: { from: 'notifying', to: 'announcing' } });
    expect(journal.find((entry) => entry.kind === 'state-changed' && entry.step === 1)).toMatchObject({ data: { from: 'announcing', to: 'done' } });
  });

  it('fails the workflow, naming the migration, when a migration moves it to a state that does not exist', async () => {
    const { id } = await startedOnVersion1();
    const broken = version2({ migrations: { '1': (snapshot) => ({ state: 'nowhere', context: snapshot.context }) } });
    const keel = worker('worker-v2', broken);

    const final = await keel.run(id);

    expect(final).toMatchObject({ status: 'failed', state: 'notifying' });
    expect(final.failure).toMatchObject({ code: 'INVALID_DEFINITION' });
    expect(final.failure!.message).toContain(`The migration from version '1' of agent 'payout' moved workflow ${id} to unknown state 'nowhere'`);
    expect(calls.map((call) => call.tool)).toEqual(['pay']);
    expect(await keel.store.loadContext(id)).toEqual({ effects: [{ tool: 'pay', key: `${id}:0` }] });
  });
});
