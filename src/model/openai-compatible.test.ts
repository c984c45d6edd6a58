// Keel's model path over real HTTP: a KEEL_MODEL-style spec builds the provider, the provider talks
// to a local fake OpenAI server, and a workflow runs to completion. Checks what went over the wire
// (wrapped tool schemas, required tool choice, the history) and what reached the journal (tokens
// from the server's usage), for both `openai-compatible:` (Chat Completions) and `openai:`
// (Responses API), and that provider errors are classified for Keel's retry policy.

import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAgent } from '../agent/define-agent.js';
import { createKeel, type Keel } from '../agent/keel.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { JournalKind } from '../store/types.js';
import { defineTool } from '../tools/tool.js';
import { classifyError } from '../tools/tool-error.js';
import type { LanguageModelV3 } from '@ai-sdk/provider';
import type { DecisionView } from './decision.js';
import { startFakeOpenAIServer, type FakeOpenAIServer, type FakeOpenAIServerOptions } from './fake-openai-server.js';
import { modelDecider, wrappedParameters } from './model-decider.js';
import { createModel, parseModelSpec } from './model-from-env.js';

const orders: Readonly<Record<string, { total: number }>> = { 'o-17': { total: 20 } };

const lookupOrder = defineTool({
  name: 'lookup_order',
  description: 'Looks an order up by id.',
  input: z.object({ orderId: z.string() }),
  execute: ({ orderId }) => ({ found: orderId in orders, order: orders[orderId] ?? null }),
});

// Two states: keep looking until the order is found, then done.
const agent = defineAgent({
  name: 'order-finder',
  instructions: 'Find the order the customer means.',
  tools: [lookupOrder],
  initial: 'searching',
  states: {
    searching: { tools: ['lookup_order'], next: ['found'], on: { lookup_order: (result: { found: boolean }) => (result.found ? 'found' : undefined) } },
    found: { final: true },
  },
});

const lookupParameters = agent.toolParameters.get('lookup_order')!;

let servers: FakeOpenAIServer[] = [];
let keels: Keel[] = [];

afterEach(async () => {
  await Promise.all(keels.map((keel) => keel.close()));
  await Promise.all(servers.map((server) => server.close()));
  keels = [];
  servers = [];
});

async function startServer(options: FakeOpenAIServerOptions): Promise<FakeOpenAIServer> {
  const server = await startFakeOpenAIServer(options);
  servers.push(server);
  return server;
}

function keelWith(model: LanguageModelV3): Keel {
  const keel = createKeel({ store: openSqliteStore({ path: ':memory:' }), agents: [agent], model });
  keels.push(keel);
  return keel;
}

// First a miss, then the order: the second request must carry the first call and its result.
const twoLookups: FakeOpenAIServerOptions['replies'] = [
  { type: 'tool-call', tool: 'lookup_order', input: { orderId: 'o-1' }, reasoning: 'The customer wrote o-1.', confidence: 0.6, usage: { inputTokens: 310, outputTokens: 42 } },
  { type: 'tool-call', tool: 'lookup_order', input: { orderId: 'o-17' }, reasoning: 'o-1 does not exist; try o-17.', confidence: 0.85, usage: { inputTokens: 455, outputTokens: 47 } },
];

async function decisionsOf(keel: Keel, workflowId: string) {
  const { journal } = await keel.inspect(workflowId);
  return journal.filter((entry) => entry.kind === JournalKind.actionDecided);
}

describe('openai-compatible: over HTTP', () => {
  it('runs a workflow to completion, sending wrapped tools, a required tool choice and the history', async () => {
    const server = await startServer({ replies: twoLookups });
    const model = createModel(parseModelSpec(`openai-compatible:${server.url}#fake-model`), { KEEL_MODEL_API_KEY: 'test' });
    const keel = keelWith(model);

    const workflow = await keel.startAndRun('order-finder', { message: 'Where is my order?' });

    expect(workflow).toMatchObject({ status: 'completed', state: 'found', outcome: 'found', step: 2 });
    expect(server.requests).toHaveLength(2);
    for (const request of server.requests) {
      expect(request.endpoint).toBe('chat-completions');
      expect(request.headers.authorization).toBe('Bearer test');
      expect(request.body).toMatchObject({
        model: 'fake-model',
        tool_choice: 'required',
        tools: [{ type: 'function', function: { name: 'lookup_order', description: 'Looks an order up by id.', parameters: wrappedParameters(lookupParameters) } }],
      });
    }
    const [first, second] = server.requests.map((request) => request.body.messages as Array<Record<string, unknown>>);
    expect(first!.map((message) => message.role)).toEqual(['system', 'user']);
    expect(first![0]!.content).toContain('Find the order the customer means.');
    expect(first![1]!.content).toContain('Where is my order?');
    expect(second!.map((message) => message.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(second![2]).toMatchObject({
      tool_calls: [{ id: 'step-0', type: 'function', function: { name: 'lookup_order', arguments: JSON.stringify({ input: { orderId: 'o-1' } }) } }],
    });
    expect(second![3]).toMatchObject({ tool_call_id: 'step-0', content: JSON.stringify({ found: false, order: null }) });

    const decisions = await decisionsOf(keel, workflow.id);
    expect(decisions.map((entry) => [entry.name, entry.status, entry.tokensIn, entry.tokensOut])).toEqual([
      ['lookup_order', 'model', 310, 42],
      ['lookup_order', 'model', 455, 47],
    ]);
    expect(decisions[1]!.data).toMatchObject({
      decision: { args: { orderId: 'o-17' }, reasoning: 'o-1 does not exist; try o-17.', confidence: 0.85, provider: 'openai-compatible.chat', model: 'fake-model' },
    });
  });

  it('feeds a call of an unknown tool back to the model as an observation and carries on', async () => {
    // Replies chosen from the request: a model that corrects itself once it sees an error.
    const server = await startServer({
      replies: (request) =>
        (request.body.messages as Array<{ role: string }>).some((message) => message.role === 'tool')
          ? { type: 'tool-call', tool: 'lookup_order', input: { orderId: 'o-17' } }
          : { type: 'tool-call', tool: 'cancel_order', input: { orderId: 'o-17' } },
    });
    const keel = keelWith(createModel(parseModelSpec(`openai-compatible:${server.url}#fake-model`), {}));

    const workflow = await keel.startAndRun('order-finder', { message: 'Cancel o-17' });

    expect(workflow.status).toBe('completed');
    const { journal } = await keel.inspect(workflow.id);
    expect(journal.find((entry) => entry.kind === JournalKind.toolCallInvalid)).toMatchObject({ name: 'cancel_order', status: 'invalid-call' });
    const history = server.requests[1]!.body.messages as Array<Record<string, unknown>>;
    expect(history[3]).toMatchObject({ role: 'tool', tool_call_id: 'step-0' });
    expect(String(history[3]!.content)).toContain("The model's call of 'cancel_order' could not be used");
  });

  it('feeds a text answer without a tool call back to the model instead of failing the workflow', async () => {
    const server = await startServer({
      replies: [
        { type: 'text', text: 'Which order do you mean?', usage: { inputTokens: 200, outputTokens: 6 } },
        { type: 'tool-call', tool: 'lookup_order', input: { orderId: 'o-17' } },
      ],
    });
    const keel = keelWith(createModel(parseModelSpec(`openai-compatible:${server.url}#fake-model`), {}));

    const workflow = await keel.startAndRun('order-finder', { message: 'Where is o-17?' });

    expect(workflow.status).toBe('completed');
    const { journal } = await keel.inspect(workflow.id);
    expect(journal.find((entry) => entry.kind === JournalKind.toolCallInvalid)).toMatchObject({ step: 0, status: 'invalid-call' });
    const history = server.requests[1]!.body.messages as Array<Record<string, unknown>>;
    expect(String(history[3]!.content)).toContain('The model answered without calling a tool');
  });

  it('retries a model call that failed with a 500 and records the failure as transient', async () => {
    const server = await startServer({ replies: [{ type: 'error', status: 500, message: 'upstream overloaded' }, ...twoLookups] });
    const keel = keelWith(createModel(parseModelSpec(`openai-compatible:${server.url}#fake-model`), {}));

    const workflow = await keel.startAndRun('order-finder', { message: 'Where is my order?' });

    expect(workflow.status).toBe('completed');
    expect(server.requests).toHaveLength(3);
    const { journal } = await keel.inspect(workflow.id);
    const failures = journal.filter((entry) => entry.kind === JournalKind.modelCallFailed);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ step: 0, status: 'transient', attempt: 1 });
    expect(JSON.stringify(failures[0]!.data)).toContain('upstream overloaded');
  });
});

describe('the decider against provider errors', () => {
  const view: DecisionView = {
    workflowId: 'wf_errors',
    agent: 'order-finder',
    step: 0,
    state: 'searching',
    input: {},
    context: {},
    allowedTools: ['lookup_order'],
    history: [],
  };
  const catalog = [{ name: 'lookup_order', description: 'Looks an order up by id.', parameters: lookupParameters }];

  async function decisionError(server: FakeOpenAIServer): Promise<unknown> {
    const model = createModel(parseModelSpec(`openai-compatible:${server.url}#fake-model`), {});
    return modelDecider({ model })
      .decide(view, catalog, new AbortController().signal)
      .then(
        () => undefined,
        (error: unknown) => error,
      );
  }

  it('reads arguments that are not JSON as an invalid decision, not an error', async () => {
    const server = await startServer({ replies: [{ type: 'tool-call', tool: 'lookup_order', rawArguments: '{"reasoning": "cut off", "input": {' }] });
    const model = createModel(parseModelSpec(`openai-compatible:${server.url}#fake-model`), {});
    const decision = await modelDecider({ model }).decide(view, catalog, new AbortController().signal);
    expect(decision.tool).toBe('lookup_order');
    expect(decision.invalid).toContain("The model's call of 'lookup_order' could not be used");
    expect(decision.usage?.outputTokens).toBeGreaterThan(0);
  });

  it.each([
    [429, 'rate-limited'],
    [500, 'transient'],
    [503, 'transient'],
    [400, 'invalid-input'],
  ])('classifies a %d answer as %s, after exactly one request', async (status, errorClass) => {
    const server = await startServer({ replies: [{ type: 'error', status, message: `scripted ${status}`, headers: { 'retry-after': '1' } }] });
    const error = await decisionError(server);
    expect(error).toMatchObject({ name: 'AI_APICallError', statusCode: status });
    expect(classifyError(error)).toBe(errorClass);
    expect(server.requests).toHaveLength(1);
  });
});

describe('openai: over HTTP (Responses API)', () => {
  it('runs the same workflow through OPENAI_BASE_URL against the Responses endpoint', async () => {
    const server = await startServer({ replies: twoLookups });
    const model = createModel(parseModelSpec('openai:fake-gpt'), { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: 'test' });
    const keel = keelWith(model);

    const workflow = await keel.startAndRun('order-finder', { message: 'Where is my order?' });

    expect(workflow).toMatchObject({ status: 'completed', state: 'found' });
    expect(server.requests.map((request) => request.endpoint)).toEqual(['responses', 'responses']);
    for (const request of server.requests) {
      expect(request.headers.authorization).toBe('Bearer test');
      expect(request.body).toMatchObject({
        model: 'fake-gpt',
        tool_choice: 'required',
        tools: [{ type: 'function', name: 'lookup_order', description: 'Looks an order up by id.', parameters: wrappedParameters(lookupParameters) }],
      });
    }
    const history = server.requests[1]!.body.input as Array<Record<string, unknown>>;
    expect(history).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'function_call', call_id: 'step-0', name: 'lookup_order', arguments: JSON.stringify({ input: { orderId: 'o-1' } }) }),
        expect.objectContaining({ type: 'function_call_output', call_id: 'step-0', output: JSON.stringify({ found: false, order: null }) }),
      ]),
    );
    const decisions = await decisionsOf(keel, workflow.id);
    expect(decisions.map((entry) => [entry.tokensIn, entry.tokensOut])).toEqual([
      [310, 42],
      [455, 47],
    ]);
  });
});
