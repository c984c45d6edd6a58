// The scripted model: deterministic decisions through the same AI SDK path a real provider
// takes, with a call count and token usage, and only when Keel drives it.

import type { LanguageModelV3CallOptions } from '@ai-sdk/provider';
import { describe, expect, it } from 'vitest';
import type { DecisionView, ToolCatalog } from './decision.js';
import { modelDecider } from './model-decider.js';
import { scriptedModel, type Script } from './scripted-model.js';

const catalog: ToolCatalog = [
  { name: 'fetch_invoice', description: 'Fetches an invoice.', parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
  { name: 'approve', description: 'Approves the invoice.', parameters: { type: 'object', properties: {} } },
];

function view(step: number, history: DecisionView['history'] = []): DecisionView {
  return {
    workflowId: 'wf_scripted',
    agent: 'invoices',
    step,
    state: 'review',
    input: { invoiceId: 'inv-9' },
    context: {},
    allowedTools: ['fetch_invoice', 'approve'],
    history,
  };
}

// Fetch first, approve once the invoice is in the history.
const script: Script = (seen) =>
  seen.history.length === 0
    ? { tool: 'fetch_invoice', input: { id: (seen.input as { invoiceId: string }).invoiceId }, reasoning: 'Read the invoice first.', confidence: 0.9 }
    : { tool: 'approve', input: {} };

const signal = new AbortController().signal;

describe('scriptedModel', () => {
  it('decides the same way every time for the same view', async () => {
    const decider = modelDecider({ model: scriptedModel(script) });
    const first = await decider.decide(view(0), catalog, signal);
    const second = await decider.decide(view(0), catalog, signal);
    const { durationMs: firstDuration, ...firstDecision } = first;
    const { durationMs: secondDuration, ...secondDecision } = second;
    expect(firstDuration).toBeTypeOf('number');
    expect(secondDuration).toBeTypeOf('number');
    expect(secondDecision).toEqual(firstDecision);
    expect(first).toMatchObject({
      source: 'model',
      provider: 'keel.scripted',
      model: 'scripted',
      tool: 'fetch_invoice',
      args: { id: 'inv-9' },
      reasoning: 'Read the invoice first.',
      confidence: 0.9,
    });
  });

  it('follows the script through the history and fills in default reasoning and confidence', async () => {
    const decider = modelDecider({ model: scriptedModel(script, { modelId: 'scripted-v2', provider: 'test.scripted' }) });
    const history: DecisionView['history'] = [{ type: 'tool-result', step: 0, tool: 'fetch_invoice', args: { id: 'inv-9' }, result: { total: 40 } }];
    const decision = await decider.decide(view(1, history), catalog, signal);
    expect(decision).toMatchObject({
      provider: 'test.scripted',
      model: 'scripted-v2',
      tool: 'approve',
      args: {},
      reasoning: 'Scripted step 1: approve.',
      confidence: 0.95,
    });
  });

  it('counts its calls, so a test can prove a decision was not paid for twice', async () => {
    const model = scriptedModel(script);
    const decider = modelDecider({ model });
    expect(model.calls).toBe(0);
    await decider.decide(view(0), catalog, signal);
    await decider.decide(view(1), catalog, signal);
    expect(model.calls).toBe(2);
  });

  it('reports token usage that grows with the prompt', async () => {
    const decider = modelDecider({ model: scriptedModel(script) });
    const short = await decider.decide(view(0), catalog, signal);
    const longHistory: DecisionView['history'] = Array.from({ length: 10 }, (_, step) => ({
      type: 'tool-result' as const,
      step,
      tool: 'fetch_invoice',
      args: { id: `inv-${step}` },
      result: { lines: ['consulting', 'travel', 'hardware'] },
    }));
    const long = await decider.decide(view(10, longHistory), catalog, signal);
    expect(short.usage?.inputTokens).toBeGreaterThan(0);
    expect(short.usage?.outputTokens).toBeGreaterThan(0);
    expect(long.usage!.inputTokens).toBeGreaterThan(short.usage!.inputTokens);
  });

  it('answers with text when the script returns a string, which the decider reports as invalid', async () => {
    const model = scriptedModel(() => 'I would rather not call a tool.');
    const decision = await modelDecider({ model }).decide(view(0), catalog, signal);
    expect(decision.reasoning).toBe('I would rather not call a tool.');
    expect(decision.invalid).toContain('without calling a tool');
    expect(model.calls).toBe(1);
  });

  it('refuses to run without the decision view Keel passes', async () => {
    const model = scriptedModel(script);
    const call: LanguageModelV3CallOptions = { prompt: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }] };
    await expect(model.doGenerate(call)).rejects.toThrow(/needs the decision view Keel passes in providerOptions\.keel/);
    await expect(model.doGenerate({ ...call, providerOptions: { keel: {} } })).rejects.toThrow(/decision view/);
  });

  it('does not stream', async () => {
    const model = scriptedModel(script);
    await expect(model.doStream({ prompt: [] })).rejects.toThrow(/does not stream/);
  });
});
