// The step loop of one workflow, run end to end through a Keel on an in-memory SQLite store:
// the gates (state, tool, schema) turn bad actions into observations, transitions stay inside the
// state machine, a failed side effect rolls back to its checkpoint and retries with the same
// idempotency key, failures are saved for inspection, and the limits (steps, context size) hold.
// Every test asserts on the workflow record and on the journal, which is the durable record.

import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { scriptedModel } from '../model/scripted-model.js';
import type { DecisionView } from '../model/decision.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { JournalEntry } from '../store/types.js';
import { ToolError } from '../tools/tool-error.js';
import { defineTool, type ToolContext } from '../tools/tool.js';
import { ManualClock } from '../util/clock.js';
import { defineAgent, type Agent } from './define-agent.js';
import { createKeel, type Keel, type KeelOptions } from './keel.js';

let keels: Keel[] = [];

afterEach(async () => {
  await Promise.all(keels.map((keel) => keel.close()));
  keels = [];
});

function keelFor(agent: Agent, options: Partial<KeelOptions> = {}): Keel {
  const clock = new ManualClock();
  const keel = createKeel({ store: openSqliteStore({ path: ':memory:', clock }), agents: [agent], clock, workerId: 'worker-test', ...options });
  keels.push(keel);
  return keel;
}

/** `kind` or `kind:name` of each entry of one step, in commit order. */
function stepKinds(journal: JournalEntry[], step: number): string[] {
  return journal.filter((entry) => entry.step === step).map((entry) => (entry.name ? `${entry.kind}:${entry.name}` : entry.kind));
}

function only(journal: JournalEntry[], kind: string): JournalEntry {
  const found = journal.filter((entry) => entry.kind === kind);
  expect(found, `journal entries of kind ${kind}`).toHaveLength(1);
  return found[0]!;
}

describe('the state machine gate', () => {
  it('refuses a tool the current state does not allow: journaled, fed back, never executed', async () => {
    const paid: unknown[] = [];
    const lookup = defineTool({ name: 'lookup', description: 'Finds a claim.', input: z.object({ id: z.string() }), execute: (args) => ({ id: args.id, amount: 40 }) });
    const pay = defineTool({
      name: 'pay',
      description: 'Pays a claim.',
      input: z.object({ amount: z.number() }),
      sideEffect: true,
      execute: (args) => {
        paid.push(args);
        return { paid: args.amount };
      },
    });
    const views: DecisionView[] = [];
    const agent = defineAgent({
      name: 'claims',
      tools: [lookup, pay],
      initial: 'checking',
      states: {
        checking: { tools: ['lookup'], next: ['paying'], on: { lookup: 'paying' } },
        paying: { tools: ['pay'], next: ['done'], on: { pay: 'done' } },
        done: { final: true },
      },
      decide: (view) => {
        views.push(view);
        // The first decision jumps ahead to paying; after the refusal it follows the rules.
        if (view.step === 0) return { tool: 'pay', args: { amount: 40 } };
        if (view.state === 'checking') return { tool: 'lookup', args: { id: 'c1' } };
        return { tool: 'pay', args: { amount: 40 } };
      },
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('claims', {});

    expect(final).toMatchObject({ status: 'completed', state: 'done', step: 3 });
    const { journal } = await keel.inspect(final.id);
    expect(stepKinds(journal, 0)).toEqual(['workflow-started:claims', 'action-decided:pay', 'action-refused:pay']);
    expect(only(journal, 'action-refused')).toMatchObject({
      status: 'not-allowed',
      data: { args: { amount: 40 }, errorClass: 'not-allowed', message: "Tool 'pay' is not allowed in state 'checking'. Allowed now: lookup." },
    });
    // No checkpoint for a refused side effect, and the refused call never ran: pay ran once, in step 2.
    expect(journal.filter((entry) => entry.kind === 'checkpoint-saved').map((entry) => entry.step)).toEqual([2]);
    expect(paid).toEqual([{ amount: 40 }]);
    expect(views[1]!.lastObservation).toEqual({
      type: 'tool-error',
      step: 0,
      tool: 'pay',
      args: { amount: 40 },
      errorClass: 'not-allowed',
      message: "Tool 'pay' is not allowed in state 'checking'. Allowed now: lookup.",
    });
  });

  it('refuses a tool that does not exist, listing the tools allowed now', async () => {
    const ping = defineTool({ name: 'ping', description: 'Pings.', input: z.object({}), execute: () => 'pong' });
    const agent = defineAgent({
      name: 'pinger',
      tools: [ping],
      initial: 'start',
      states: { start: { tools: ['ping'], next: ['done'], on: { ping: 'done' } }, done: { final: true } },
      decide: (view) => (view.step === 0 ? { tool: 'teleport', args: {} } : { tool: 'ping', args: {} }),
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('pinger', {});

    expect(final.status).toBe('completed');
    const { journal } = await keel.inspect(final.id);
    expect(only(journal, 'action-refused')).toMatchObject({ step: 0, name: 'teleport', data: { message: "There is no tool 'teleport'. Allowed now: ping." } });
  });

  it('fails the workflow when a transition function returns a state outside next, naming the workflow, state and target', async () => {
    const lookup = defineTool({ name: 'lookup', description: 'Finds a claim.', input: z.object({}), execute: () => ({ amount: 5000 }) });
    const agent = defineAgent({
      name: 'router',
      tools: [lookup],
      initial: 'checking',
      states: {
        checking: { tools: ['lookup'], next: ['approved'], on: { lookup: (result: { amount: number }) => (result.amount > 1000 ? 'escalated' : 'approved') } },
        approved: { final: true },
        escalated: { final: true },
      },
      decide: () => ({ tool: 'lookup', args: {} }),
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('router', {});

    // Never silently accepted: the workflow stays where it was and fails with the reason.
    expect(final).toMatchObject({ status: 'failed', state: 'checking', step: 0, outcome: null });
    expect(final.failure).toMatchObject({ code: 'ILLEGAL_TRANSITION', tool: 'lookup', state: 'checking', step: 0 });
    const message = final.failure!.message;
    expect(message).toContain(final.id);
    expect(message).toContain("from state 'checking' to 'escalated'");
    expect(message).toContain("'checking' may only move to: approved");
    const { journal } = await keel.inspect(final.id);
    expect(journal.map((entry) => entry.kind)).not.toContain('state-changed');
    // The call itself happened, so its result is kept: a resume records it instead of calling again.
    expect(only(journal, 'tool-call-completed')).toMatchObject({ step: 0, name: 'lookup', status: 'ok' });
    expect(only(journal, 'workflow-failed')).toMatchObject({ name: 'ILLEGAL_TRANSITION', status: 'failed', data: { message } });
  });
});

describe('schema validation', () => {
  it('feeds invalid arguments back to the model, which corrects them; execute never sees bad arguments', async () => {
    const executed: unknown[] = [];
    const pay = defineTool({
      name: 'pay',
      description: 'Pays a claim.',
      input: z.object({ amount: z.number().positive() }),
      execute: (args) => {
        executed.push(args);
        return { paid: args.amount };
      },
    });
    const views: DecisionView[] = [];
    const model = scriptedModel((view) => {
      views.push(view);
      return view.lastObservation?.type === 'tool-error' ? { tool: 'pay', input: { amount: 40 } } : { tool: 'pay', input: { amount: 'forty' } };
    });
    const agent = defineAgent({
      name: 'payer',
      tools: [pay],
      initial: 'paying',
      states: { paying: { tools: ['pay'], next: ['done'], on: { pay: 'done' } }, done: { final: true } },
    });
    const keel = keelFor(agent, { model });

    const final = await keel.startAndRun('payer', {});

    expect(final).toMatchObject({ status: 'completed', state: 'done', step: 2 });
    expect(executed).toEqual([{ amount: 40 }]);
    expect(model.calls).toBe(2);
    const { journal } = await keel.inspect(final.id);
    expect(stepKinds(journal, 0)).toEqual(['workflow-started:payer', 'action-decided:pay', 'tool-call-invalid:pay']);
    expect(stepKinds(journal, 1)).toEqual(['action-decided:pay', 'tool-call-completed:pay', 'state-changed:done']);
    const invalid = only(journal, 'tool-call-invalid');
    expect(invalid).toMatchObject({ status: 'invalid-input', data: { args: { amount: 'forty' }, errorClass: 'invalid-input' } });
    const message = (invalid.data as { message: string }).message;
    expect(message).toMatch(/^Arguments for tool 'pay' do not match its schema: amount: .+\. Call it again with corrected arguments\.$/);
    expect(views[1]!.lastObservation).toEqual({ type: 'tool-error', step: 0, tool: 'pay', args: { amount: 'forty' }, errorClass: 'invalid-input', message });
  });
});

describe('rollback to the checkpoint', () => {
  it('undoes the context writes of a failed side effect and retries it with the same idempotency key', async () => {
    const attempts: { key: string; attempt: number; ledger: unknown; status: unknown }[] = [];
    const open = defineTool({ name: 'open', description: 'Opens a ledger.', input: z.object({}), execute: (_args, ctx) => ctx.append('ledger', 'opened') });
    const pay = defineTool({
      name: 'pay',
      description: 'Pays a claim.',
      input: z.object({ amount: z.number() }),
      sideEffect: true,
      maxAttempts: 3,
      execute: (args, ctx) => {
        attempts.push({ key: ctx.idempotencyKey, attempt: ctx.attempt, ledger: structuredClone(ctx.get('ledger')), status: ctx.get('status') });
        ctx.append('ledger', { paid: args.amount });
        ctx.set('status', 'paid');
        if (ctx.attempt === 1) throw new ToolError('transient', 'payments service returned 503');
        return { paid: args.amount };
      },
    });
    const agent = defineAgent({
      name: 'ledger',
      tools: [open, pay],
      initial: 'opening',
      states: {
        opening: { tools: ['open'], next: ['paying'], on: { open: 'paying' } },
        paying: { tools: ['pay'], next: ['done'], on: { pay: 'done' } },
        done: { final: true },
      },
      decide: (view) => (view.state === 'opening' ? { tool: 'open', args: {} } : { tool: 'pay', args: { amount: 40 } }),
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('ledger', {});

    expect(final).toMatchObject({ status: 'completed', step: 2 });
    // The retry saw the context exactly as checkpointed: the first attempt's writes were undone.
    expect(attempts).toEqual([
      { key: `${final.id}:1`, attempt: 1, ledger: ['opened'], status: undefined },
      { key: `${final.id}:1`, attempt: 2, ledger: ['opened'], status: undefined },
    ]);
    expect(await keels[0]!.store.loadContext(final.id)).toEqual({ ledger: ['opened', { paid: 40 }], status: 'paid' });
    const { journal } = await keel.inspect(final.id);
    expect(stepKinds(journal, 1)).toEqual([
      'action-decided:pay',
      'checkpoint-saved',
      'tool-call-failed:pay',
      'rolled-back:pay',
      'tool-call-completed:pay',
      'state-changed:done',
    ]);
    expect(only(journal, 'checkpoint-saved').data).toMatchObject({ state: 'paying' });
    expect(only(journal, 'tool-call-failed')).toMatchObject({ status: 'transient', attempt: 1, data: { final: false } });
    expect(only(journal, 'rolled-back').data).toEqual({ toCheckpoint: 1, state: 'paying' });
    expect(journal.find((entry) => entry.step === 1 && entry.kind === 'tool-call-completed')).toMatchObject({ attempt: 2, data: { result: { paid: 40 } } });
  });
});

describe('a failed workflow', () => {
  it('saves a failure record with code, message, tool, step and context, and inspect returns it', async () => {
    const calls: number[] = [];
    const note = defineTool({ name: 'note', description: 'Takes a note.', input: z.object({ text: z.string() }), execute: (args, ctx) => ctx.set('note', args.text) });
    const pay = defineTool({
      name: 'pay',
      description: 'Pays a claim.',
      input: z.object({ amount: z.number() }),
      sideEffect: true,
      execute: (_args, ctx) => {
        calls.push(ctx.attempt);
        ctx.set('half-written', true);
        throw new ToolError('fatal', 'account 7 is closed');
      },
    });
    const agent = defineAgent({
      name: 'payer',
      tools: [note, pay],
      initial: 'noting',
      states: {
        noting: { tools: ['note'], next: ['paying'], on: { note: 'paying' } },
        paying: { tools: ['pay'], next: ['done'], on: { pay: 'done' } },
        done: { final: true },
      },
      decide: (view) => (view.state === 'noting' ? { tool: 'note', args: { text: 'claim c1' } } : { tool: 'pay', args: { amount: 40 } }),
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('payer', {});

    expect(calls).toEqual([1]);
    expect(final).toMatchObject({ status: 'failed', state: 'paying', step: 1, leaseOwner: null });
    expect(final.failure).toMatchObject({
      code: 'TOOL_FAILED',
      tool: 'pay',
      args: { amount: 40 },
      attempts: 1,
      errorClass: 'fatal',
      state: 'paying',
      step: 1,
      context: { note: 'claim c1' },
    });
    expect(final.failure!.message).toBe(`Tool 'pay' failed (fatal, attempt 1 of 3, workflow ${final.id}, step 1): account 7 is closed; the workflow fails.`);
    const inspection = await keel.inspect(final.id);
    expect(inspection.workflow.failure).toEqual(final.failure);
    expect(stepKinds(inspection.journal, 1)).toEqual(['action-decided:pay', 'checkpoint-saved', 'tool-call-failed:pay', 'rolled-back:pay', 'workflow-failed:TOOL_FAILED']);
    expect(only(inspection.journal, 'workflow-failed').data).toEqual(final.failure);
    expect(await keels[0]!.store.loadContext(final.id)).toEqual({ note: 'claim c1' });
  });
});

describe('limits', () => {
  it('fails a workflow whose context would pass maxContextBytes, naming it and the size, and keeps the stored context intact', async () => {
    const small = 'x'.repeat(20);
    const big = 'y'.repeat(300);
    const collect = defineTool({ name: 'collect', description: 'Collects a note.', input: z.object({ text: z.string() }), execute: (args, ctx) => ctx.append('notes', args.text) });
    const agent = defineAgent({
      name: 'collector',
      tools: [collect],
      initial: 'collecting',
      maxContextBytes: 200,
      states: { collecting: { tools: ['collect'], next: ['done'] }, done: { final: true } },
      decide: (view) => ({ tool: 'collect', args: { text: view.step === 0 ? small : big } }),
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('collector', {});

    const wouldBe = Buffer.byteLength(JSON.stringify([small, big]));
    expect(final).toMatchObject({ status: 'failed', step: 1, contextBytes: Buffer.byteLength(JSON.stringify([small])) });
    expect(final.failure).toMatchObject({ code: 'CONTEXT_TOO_LARGE', tool: 'collect', step: 1, context: { notes: [small] } });
    expect(final.failure!.message).toContain(`Workflow ${final.id} context would grow to ${wouldBe} bytes at step 1 (tool 'collect')`);
    expect(final.failure!.message).toContain('limit of 200 bytes (maxContextBytes)');
    expect(await keels[0]!.store.loadContext(final.id)).toEqual({ notes: [small] });
    const { journal } = await keel.inspect(final.id);
    expect(stepKinds(journal, 1)).toEqual(['action-decided:collect', 'tool-call-completed:collect', 'workflow-failed:CONTEXT_TOO_LARGE']);
  });

  it('stops an agent that never reaches a final state at maxSteps with a clear failure', async () => {
    let polls = 0;
    const poll = defineTool({ name: 'poll', description: 'Polls.', input: z.object({}), execute: () => ({ ready: false, poll: ++polls }) });
    const agent = defineAgent({
      name: 'poller',
      tools: [poll],
      initial: 'waiting',
      maxSteps: 3,
      states: { waiting: { tools: ['poll'], next: ['done'], on: { poll: (result: { ready: boolean }) => (result.ready ? 'done' : undefined) } }, done: { final: true } },
      decide: () => ({ tool: 'poll', args: {} }),
    });
    const keel = keelFor(agent);

    const final = await keel.startAndRun('poller', {});

    expect(polls).toBe(3);
    expect(final).toMatchObject({ status: 'failed', state: 'waiting', step: 3 });
    expect(final.failure).toMatchObject({ code: 'MAX_STEPS_EXCEEDED', state: 'waiting', step: 3 });
    expect(final.failure!.message).toContain(`Workflow ${final.id} reached its limit of 3 steps in state 'waiting' without reaching a final state`);
    const { journal } = await keel.inspect(final.id);
    expect(journal.filter((entry) => entry.kind === 'tool-call-completed')).toHaveLength(3);
    expect(stepKinds(journal, 3)).toEqual(['workflow-failed:MAX_STEPS_EXCEEDED']);
  });
});

describe('what a step records and hands to its tool', () => {
  it('records the tokens of model decisions and none for code decisions', async () => {
    const lookup = defineTool({ name: 'lookup', description: 'Finds a claim.', input: z.object({ id: z.string() }), execute: (args) => ({ id: args.id }) });
    const approve = defineTool({ name: 'approve', description: 'Approves.', input: z.object({}), execute: () => ({ approved: true }) });
    const model = scriptedModel(() => ({ tool: 'lookup', input: { id: 'c1' } }));
    const agent = defineAgent({
      name: 'mixed',
      tools: [lookup, approve],
      initial: 'checking',
      states: {
        checking: { tools: ['lookup'], next: ['approving'], on: { lookup: 'approving' } },
        approving: { tools: ['approve'], next: ['done'], on: { approve: 'done' }, decide: () => ({ tool: 'approve', args: {} }) },
        done: { final: true },
      },
    });
    const keel = keelFor(agent, { model });

    const final = await keel.startAndRun('mixed', {});

    expect(final.status).toBe('completed');
    expect(model.calls).toBe(1);
    const decided = (await keel.inspect(final.id)).journal.filter((entry) => entry.kind === 'action-decided');
    const [byModel, byCode] = decided;
    expect(byModel).toMatchObject({ step: 0, name: 'lookup', status: 'model' });
    expect(byModel!.tokensIn).toBeGreaterThan(0);
    expect(byModel!.tokensOut).toBeGreaterThan(0);
    expect((byModel!.data as { decision: { usage: unknown } }).decision.usage).toMatchObject({ inputTokens: byModel!.tokensIn, outputTokens: byModel!.tokensOut });
    expect(byCode).toMatchObject({ step: 1, name: 'approve', status: 'code', tokensIn: null, tokensOut: null });
  });

  it('gives the tool its workflow id, step, idempotency key, principal, input, signal and logger', async () => {
    const seen: ToolContext[] = [];
    const record = defineTool({
      name: 'record',
      description: 'Records its context.',
      input: z.object({}),
      execute: (_args, ctx) => {
        seen.push(ctx);
        return { signalAborted: ctx.signal.aborted };
      },
    });
    const agent = defineAgent({
      name: 'recorder',
      tools: [record],
      initial: 'first',
      states: {
        first: { tools: ['record'], next: ['second'], on: { record: 'second' } },
        second: { tools: ['record'], next: ['done'], on: { record: 'done' } },
        done: { final: true },
      },
      decide: () => ({ tool: 'record', args: {} }),
    });
    const keel = keelFor(agent);
    const principal = { id: 'alice', roles: ['clerk'], department: 'claims' };

    const started = await keel.start('recorder', { claim: 'c1' }, { principal, id: 'wf_ctx' });
    const final = await keel.run(started.id);

    expect(final.status).toBe('completed');
    expect(seen.map((ctx) => [ctx.workflowId, ctx.step, ctx.idempotencyKey, ctx.attempt])).toEqual([
      ['wf_ctx', 0, 'wf_ctx:0', 1],
      ['wf_ctx', 1, 'wf_ctx:1', 1],
    ]);
    for (const ctx of seen) {
      expect(ctx.principal).toEqual(principal);
      expect(ctx.input).toEqual({ claim: 'c1' });
      expect(ctx.signal).toBeInstanceOf(AbortSignal);
      expect(typeof ctx.logger.info).toBe('function');
    }
    const { journal } = await keel.inspect(final.id);
    expect(journal.filter((entry) => entry.kind === 'tool-call-completed').map((entry) => entry.data)).toEqual([
      { args: {}, result: { signalAborted: false } },
      { args: {}, result: { signalAborted: false } },
    ]);
  });
});
