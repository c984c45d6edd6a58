// The model decider against the AI SDK's mock language model: what it sends (wrapped tool
// schemas, required tool choice, history as tool messages), what it reads back (unwrapped
// arguments, clamped confidence, usage), and how it reports a proposal it cannot use.

import { APICallError } from '@ai-sdk/provider';
import type { LanguageModelV3GenerateResult } from '@ai-sdk/provider';
import { MockLanguageModelV3 } from 'ai/test';
import { describe, expect, it } from 'vitest';
import { classifyError } from '../tools/tool-error.js';
import type { DecisionView, ToolCatalog } from './decision.js';
import { modelDecider, wrappedParameters } from './model-decider.js';

const catalog: ToolCatalog = [
  {
    name: 'lookup_order',
    description: 'Looks an order up by id.',
    parameters: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'], additionalProperties: false },
  },
  {
    name: 'refund_order',
    description: 'Refunds an order.',
    parameters: { type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' } }, required: ['orderId', 'amount'] },
  },
];

function view(overrides: Partial<DecisionView> = {}): DecisionView {
  return {
    workflowId: 'wf_test',
    agent: 'support',
    step: 0,
    state: 'triage',
    input: { orderId: 'o-17', complaint: 'arrived broken' },
    context: {},
    allowedTools: ['lookup_order', 'refund_order'],
    history: [],
    ...overrides,
  };
}

function toolCallResult(toolName: string, input: string, usage = { input: 120, output: 30 }): LanguageModelV3GenerateResult {
  return {
    content: [{ type: 'tool-call', toolCallId: 'call-1', toolName, input }],
    finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
    usage: {
      inputTokens: { total: usage.input, noCache: usage.input - 20, cacheRead: 20, cacheWrite: 0 },
      outputTokens: { total: usage.output, text: usage.output, reasoning: 0 },
    },
    warnings: [],
    response: { modelId: 'mock-model-2026' },
  };
}

function wrapped(input: unknown, reasoning: string, confidence: number): string {
  return JSON.stringify({ reasoning, confidence, input });
}

const signal = new AbortController().signal;

describe('modelDecider', () => {
  it('unwraps the tool call into args, reasoning and confidence, and records usage', async () => {
    const model = new MockLanguageModelV3({
      provider: 'mock-provider',
      modelId: 'mock-model',
      doGenerate: toolCallResult('lookup_order', wrapped({ orderId: 'o-17' }, 'Need the order before deciding.', 0.8)),
    });
    const decision = await modelDecider({ model }).decide(view(), catalog, signal);
    expect(decision).toMatchObject({
      source: 'model',
      tool: 'lookup_order',
      args: { orderId: 'o-17' },
      reasoning: 'Need the order before deciding.',
      confidence: 0.8,
      provider: 'mock-provider',
      model: 'mock-model-2026',
      finishReason: 'tool-calls',
      usage: { inputTokens: 120, outputTokens: 30, cacheReadTokens: 20, cacheWriteTokens: 0 },
    });
    expect(decision.invalid).toBeUndefined();
    expect(model.doGenerateCalls).toHaveLength(1);
  });

  it.each([
    [1.7, 1],
    [-0.25, 0],
    [0, 0],
    [1, 1],
  ])('clamps a confidence of %d to %d', async (given, expected) => {
    const model = new MockLanguageModelV3({ doGenerate: toolCallResult('lookup_order', wrapped({ orderId: 'o-17' }, 'Checking.', given)) });
    const decision = await modelDecider({ model }).decide(view(), catalog, signal);
    expect(decision.confidence).toBe(expected);
  });

  it('leaves confidence and reasoning unset when the model omits them', async () => {
    const model = new MockLanguageModelV3({ doGenerate: toolCallResult('lookup_order', JSON.stringify({ input: { orderId: 'o-17' } })) });
    const decision = await modelDecider({ model }).decide(view(), catalog, signal);
    expect(decision).toMatchObject({ tool: 'lookup_order', args: { orderId: 'o-17' } });
    expect(decision.confidence).toBeUndefined();
    expect(decision.reasoning).toBeUndefined();
  });

  it('offers every tool with its parameters wrapped, requires a tool call, and never lets the SDK retry', async () => {
    const model = new MockLanguageModelV3({ doGenerate: toolCallResult('lookup_order', wrapped({ orderId: 'o-17' }, 'Checking.', 0.9)) });
    await modelDecider({ model, instructions: 'You handle refunds.', temperature: 0 }).decide(view(), catalog, signal);
    const call = model.doGenerateCalls[0]!;
    expect(call.toolChoice).toEqual({ type: 'required' });
    expect(call.temperature).toBe(0);
    expect(call.tools).toEqual(
      catalog.map((entry) => expect.objectContaining({ type: 'function', name: entry.name, description: entry.description, inputSchema: wrappedParameters(entry.parameters) })),
    );
    const schema = wrappedParameters(catalog[0]!.parameters);
    expect(schema).toMatchObject({ required: ['reasoning', 'confidence', 'input'], properties: { input: catalog[0]!.parameters } });
    const system = call.prompt[0]!;
    expect(system.role).toBe('system');
    expect(system.content).toContain('You handle refunds.');
    expect(system.content).toContain('Current state: triage. Step 0.');
    expect(system.content).toContain('lookup_order, refund_order');
  });

  it('passes the history to the model as tool-call and tool-result messages', async () => {
    const model = new MockLanguageModelV3({ doGenerate: toolCallResult('refund_order', wrapped({ orderId: 'o-17', amount: 20 }, 'Broken on arrival.', 0.7)) });
    const history: DecisionView['history'] = [
      { type: 'tool-result', step: 0, tool: 'lookup_order', args: { orderId: 'o-17' }, result: { total: 20, status: 'delivered' } },
      { type: 'tool-error', step: 1, tool: 'refund_order', args: { orderId: 'o-17', amount: 200 }, errorClass: 'invalid-input', message: 'amount exceeds the order total' },
    ];
    await modelDecider({ model }).decide(view({ step: 2, history, lastObservation: history[1] }), catalog, signal);
    const prompt = model.doGenerateCalls[0]!.prompt;
    expect(prompt.map((message) => message.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'tool']);
    expect(prompt[1]).toMatchObject({ role: 'user', content: [{ type: 'text', text: expect.stringContaining('"complaint": "arrived broken"') }] });
    expect(prompt[2]).toMatchObject({
      role: 'assistant',
      content: [{ type: 'tool-call', toolCallId: 'step-0', toolName: 'lookup_order', input: { input: { orderId: 'o-17' } } }],
    });
    expect(prompt[3]).toMatchObject({
      role: 'tool',
      content: [{ type: 'tool-result', toolCallId: 'step-0', toolName: 'lookup_order', output: { type: 'json', value: { total: 20, status: 'delivered' } } }],
    });
    expect(prompt[4]).toMatchObject({ role: 'assistant', content: [{ type: 'tool-call', toolCallId: 'step-1', toolName: 'refund_order' }] });
    expect(prompt[5]).toMatchObject({
      role: 'tool',
      content: [{ type: 'tool-result', toolCallId: 'step-1', output: { type: 'error-text', value: 'invalid-input: amount exceeds the order total' } }],
    });
  });

  it('keeps only the last historyWindow observations in the prompt', async () => {
    const model = new MockLanguageModelV3({ doGenerate: toolCallResult('lookup_order', wrapped({ orderId: 'o-17' }, 'Again.', 0.5)) });
    const history: DecisionView['history'] = [0, 1, 2, 3].map((step) => ({ type: 'tool-result', step, tool: 'lookup_order', args: { orderId: `o-${step}` }, result: step }));
    await modelDecider({ model, historyWindow: 2 }).decide(view({ step: 4, history }), catalog, signal);
    const callIds = model.doGenerateCalls[0]!.prompt.flatMap((message) =>
      message.role === 'assistant' ? message.content.flatMap((part) => (part.type === 'tool-call' ? [part.toolCallId] : [])) : [],
    );
    expect(callIds).toEqual(['step-2', 'step-3']);
  });

  it('returns a call of a tool it was not offered as an invalid decision, not a throw', async () => {
    const model = new MockLanguageModelV3({ doGenerate: toolCallResult('delete_everything', wrapped({}, 'Start over.', 0.99)) });
    const decision = await modelDecider({ model }).decide(view(), catalog, signal);
    expect(decision.tool).toBe('delete_everything');
    expect(decision.invalid).toContain("The model's call of 'delete_everything' could not be used");
    expect(decision.invalid).toContain('Allowed tools: lookup_order, refund_order.');
    expect(decision.usage).toEqual(expect.objectContaining({ inputTokens: 120, outputTokens: 30 }));
  });

  it('returns arguments that are not JSON as an invalid decision', async () => {
    const model = new MockLanguageModelV3({ doGenerate: toolCallResult('lookup_order', '{"reasoning": "cut off", "input": {') });
    const decision = await modelDecider({ model }).decide(view(), catalog, signal);
    expect(decision.tool).toBe('lookup_order');
    expect(decision.invalid).toContain("The model's call of 'lookup_order' could not be used");
  });

  it('returns a text-only answer as an invalid decision that names the allowed tools', async () => {
    const model = new MockLanguageModelV3({
      doGenerate: {
        content: [{ type: 'text', text: 'I think the order should be refunded.' }],
        finishReason: { unified: 'stop', raw: 'stop' },
        usage: { inputTokens: { total: 50, noCache: 50, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 9, text: 9, reasoning: 0 } },
        warnings: [],
      },
    });
    const decision = await modelDecider({ model }).decide(view(), catalog, signal);
    expect(decision).toMatchObject({ source: 'model', tool: '', args: null, reasoning: 'I think the order should be refunded.', finishReason: 'stop' });
    expect(decision.invalid).toContain("The model answered without calling a tool (finish reason 'stop')");
    expect(decision.invalid).toContain('allowed tools: lookup_order, refund_order');
    // The AI SDK reports a missing required call as a ToolChoiceViolationError, which carries no usage.
    expect(decision.usage).toBeUndefined();
    expect(model.doGenerateCalls).toHaveLength(1);
  });

  it('calls the model once when it fails with a retryable error: retries belong to Keel, not the SDK', async () => {
    const failure = new APICallError({
      message: 'Service Unavailable',
      url: 'http://127.0.0.1/v1/chat/completions',
      requestBodyValues: {},
      statusCode: 503,
      isRetryable: true,
    });
    const model = new MockLanguageModelV3({
      doGenerate: async () => {
        throw failure;
      },
    });
    const decided = modelDecider({ model }).decide(view(), catalog, signal);
    const error = await decided.then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    expect(error).toBe(failure);
    expect(classifyError(error)).toBe('transient');
    expect(model.doGenerateCalls).toHaveLength(1);
  });

  it('hands the decision view to the model in providerOptions.keel, for the scripted model', async () => {
    const model = new MockLanguageModelV3({ doGenerate: toolCallResult('lookup_order', wrapped({ orderId: 'o-17' }, 'Checking.', 0.9)) });
    const seen = view({ step: 3 });
    await modelDecider({ model }).decide(seen, catalog, signal);
    expect(model.doGenerateCalls[0]!.providerOptions?.keel).toEqual({ view: seen });
  });
});
