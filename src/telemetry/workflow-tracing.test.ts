// Spans of real workflow runs, caught by an in-memory exporter: the span tree, the GenAI
// attribute names and token counts, and one trace across a worker killed mid-step and the worker
// that resumes its workflow.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useInMemoryTracing } from '../../test/support/in-memory-tracing.js';
import { z } from 'zod';
import { defineAgent } from '../agent/define-agent.js';
import { createKeel, type Keel } from '../agent/keel.js';
import { scriptedModel } from '../model/scripted-model.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { defineTool } from '../tools/tool.js';
import { ManualClock } from '../util/clock.js';
import { formatTraceparent, parseTraceparent } from './workflow-tracing.js';

const exporter = useInMemoryTracing();
const leaseMs = 1000;
let directory: string;
let clock: ManualClock;
let keels: Keel[];
let killWorker: (() => void) | undefined;
let killDuring: string | undefined;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-tracing-'));
  clock = new ManualClock();
  keels = [];
  killWorker = undefined;
  killDuring = undefined;
});

afterEach(async () => {
  await Promise.all(keels.map((keel) => keel.close()));
  rmSync(directory, { recursive: true, force: true });
});

const writes = new Set<PropertyKey>(['createWorkflow', 'claim', 'renewLease', 'commit', 'updateWorkflow']);

/** A worker on its own connection whose process can be "killed": nothing it writes after reaches the database. */
function worker(workerId: string): { keel: Keel; kill: () => void } {
  let dead = false;
  const store = new Proxy(openSqliteStore({ path: join(directory, 'keel.db'), clock }), {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (dead && writes.has(property)) return async () => Promise.reject(new Error('killed'));
      return value.bind(target);
    },
  }) as Store;
  const model = scriptedModel((view) => ({ tool: view.state === 'paying' ? 'pay' : 'notify', input: { amount: 40 }, confidence: 0.8 }), {
    modelId: 'gpt-4o-mini',
    provider: 'openai.chat',
  });
  const keel = createKeel({ store, agents: [agent], clock, leaseMs, workerId, model });
  keels.push(keel);
  return { keel, kill: () => (dead = true) };
}

const sideEffect = (name: string) =>
  defineTool({
    name,
    description: `Does ${name}.`,
    input: z.object({ amount: z.number() }),
    sideEffect: true,
    execute: (args) => {
      // A library the tool uses makes its own span: it must hang under the tool's span.
      trace.getTracer('payments-sdk').startSpan(`http ${name}`).end();
      if (killDuring === name) {
        killWorker?.();
        throw new Error(`${name} never finished: its worker died`);
      }
      return { done: name, amount: args.amount };
    },
  });

const agent = defineAgent({
  name: 'payout',
  version: '1',
  tools: [sideEffect('pay'), sideEffect('notify')],
  initial: 'paying',
  states: {
    paying: { tools: ['pay'], next: ['notifying'], on: { pay: 'notifying' } },
    notifying: { tools: ['notify'], next: ['done'], on: { notify: 'done' } },
    done: { final: true },
  },
});

function named(spans: ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((span) => span.name === name);
}

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

describe('workflow spans', () => {
  it('makes invoke_agent > chat / execute_tool spans with the GenAI attribute names and the token counts', async () => {
    const { keel } = worker('worker-a');
    const { id } = await keel.start('payout', {});
    const final = await keel.run(id);
    expect(final.status).toBe('completed');

    const spans = exporter.getFinishedSpans();
    const [run] = named(spans, 'invoke_agent payout');
    expect(run).toBeDefined();
    expect(run!.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.agent.name': 'payout',
      'keel.workflow.id': id,
      'keel.workflow.status': 'completed',
    });
    const chats = named(spans, 'chat gpt-4o-mini');
    const tools = [...named(spans, 'execute_tool pay'), ...named(spans, 'execute_tool notify')];
    expect(chats).toHaveLength(2);
    expect(tools).toHaveLength(2);
    for (const span of [...chats, ...tools]) {
      expect(parentOf(span)).toBe(run!.spanContext().spanId);
      expect(span.spanContext().traceId).toBe(run!.spanContext().traceId);
    }

    // Token counts on the chat spans are the ones the journal recorded for the same decisions.
    const { journal } = await keel.inspect(id);
    const decided = journal.filter((entry) => entry.kind === 'action-decided');
    expect(chats.map((span) => span.attributes['gen_ai.usage.input_tokens'])).toEqual(decided.map((entry) => entry.tokensIn));
    expect(chats.map((span) => span.attributes['gen_ai.usage.output_tokens'])).toEqual(decided.map((entry) => entry.tokensOut));
    expect(chats[0]!.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai.chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini',
      'gen_ai.response.finish_reasons': ['tool-calls'],
      'keel.step': 0,
      'keel.confidence': 0.8,
    });
    expect(chats[0]!.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);

    const [pay] = named(spans, 'execute_tool pay');
    expect(pay!.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'pay',
      'gen_ai.tool.call.id': `${id}:0`,
      'keel.tool.attempts': 1,
      'keel.state.from': 'paying',
      'keel.state.to': 'notifying',
    });
    expect(pay!.attributes['error.type']).toBeUndefined();
    const [library] = named(spans, 'http pay');
    expect(parentOf(library!)).toBe(pay!.spanContext().spanId);
  });

  it('continues the trace when a workflow is resumed on another worker after its worker was killed', async () => {
    const a = worker('worker-a');
    const { id } = await a.keel.start('payout', {});
    killDuring = 'notify';
    killWorker = a.kill;
    const crashed = await a.keel.run(id);
    expect(crashed.status).toBe('running');

    killDuring = undefined;
    clock.advance(leaseMs + 1);
    const b = worker('worker-b');
    const final = await b.keel.run(id);
    expect(final.status).toBe('completed');

    const spans = exporter.getFinishedSpans();
    const [start] = named(spans, 'start_workflow payout');
    const runs = named(spans, 'invoke_agent payout');
    expect(runs).toHaveLength(2);
    const traceIds = new Set(spans.filter((span) => span.instrumentationScope.name === 'keel').map((span) => span.spanContext().traceId));
    expect(traceIds).toEqual(new Set([start!.spanContext().traceId]));
    for (const run of runs) expect(parentOf(run)).toBe(start!.spanContext().spanId);
    expect(runs[1]!.attributes['keel.workflow.recovered']).toBe(true);
    // The resumed step's call is traced on the second run, with the key it had on the first.
    const notifies = named(spans, 'execute_tool notify');
    expect(notifies.map((span) => span.attributes['gen_ai.tool.call.id'])).toEqual([`${id}:1`, `${id}:1`]);
    expect(parentOf(notifies[1]!)).toBe(runs[1]!.spanContext().spanId);
  });

  it('stores the traceparent of the caller’s active span when one is active', async () => {
    const { keel } = worker('worker-a');
    const caller = trace.getTracer('caller').startSpan('handle request');
    const { id } = await context.with(trace.setSpan(context.active(), caller), () => keel.start('payout', {}));
    caller.end();
    const { journal } = await keel.inspect(id);
    const stored = parseTraceparent((journal[0]!.data as { traceparent?: string }).traceparent);
    expect(stored?.traceId).toBe(caller.spanContext().traceId);
  });
});

describe('traceparent', () => {
  it('round-trips a span context and refuses malformed or all-zero values', () => {
    const spanContext = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 };
    expect(formatTraceparent(spanContext)).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(parseTraceparent(formatTraceparent(spanContext))).toEqual({ ...spanContext, isRemote: true });
    expect(parseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(parseTraceparent('not a traceparent')).toBeUndefined();
    expect(parseTraceparent(undefined)).toBeUndefined();
  });
});
