// The scripted model: a deterministic decision function behind the AI SDK's LanguageModel
// interface, so tests and the demo exercise exactly the code path a real provider takes
// (generateText, tool-call parsing, usage) without any network.

import type { LanguageModelV3, LanguageModelV3CallOptions, LanguageModelV3GenerateResult } from '@ai-sdk/provider';
import type { DecisionView } from './decision.js';

export interface ScriptedAction {
  tool: string;
  input: unknown;
  reasoning?: string;
  confidence?: number;
}

/** Returns the next action, or a string to answer with text and no tool call. */
export type Script = (view: DecisionView, call: LanguageModelV3CallOptions) => ScriptedAction | string;

export interface ScriptedModelOptions {
  modelId?: string;
  provider?: string;
}

export interface ScriptedModel extends LanguageModelV3 {
  /** How many times the model was called: lets tests prove a decision was not paid for twice. */
  readonly calls: number;
}

export function scriptedModel(script: Script, options: ScriptedModelOptions = {}): ScriptedModel {
  let calls = 0;
  let callIds = 0;
  return {
    specificationVersion: 'v3',
    provider: options.provider ?? 'keel.scripted',
    modelId: options.modelId ?? 'scripted',
    supportedUrls: {},
    get calls() {
      return calls;
    },
    async doGenerate(call: LanguageModelV3CallOptions): Promise<LanguageModelV3GenerateResult> {
      calls++;
      const view = (call.providerOptions?.keel as { view?: DecisionView } | undefined)?.view;
      if (!view) {
        throw new Error('The scripted model is driven by Keel: it needs the decision view Keel passes in providerOptions.keel.');
      }
      const action = script(view, call);
      const inputTokens = estimateTokens(call.prompt);
      if (typeof action === 'string') {
        return {
          content: [{ type: 'text', text: action }],
          finishReason: { unified: 'stop', raw: 'stop' },
          usage: usage(inputTokens, estimateTokens(action)),
          warnings: [],
          response: { modelId: options.modelId ?? 'scripted' },
        };
      }
      const input = JSON.stringify({
        reasoning: action.reasoning ?? `Scripted step ${view.step}: ${action.tool}.`,
        confidence: action.confidence ?? 0.95,
        input: action.input,
      });
      return {
        content: [{ type: 'tool-call', toolCallId: `scripted-${++callIds}`, toolName: action.tool, input }],
        finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
        usage: usage(inputTokens, estimateTokens(input)),
        warnings: [],
        response: { modelId: options.modelId ?? 'scripted' },
      };
    },
    async doStream() {
      throw new Error('The scripted model does not stream: Keel decides one step at a time with generateText.');
    },
  };
}

// Deterministic stand-in for a tokenizer: about four characters a token.
function estimateTokens(value: unknown): number {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return Math.max(1, Math.ceil(text.length / 4));
}

function usage(input: number, output: number): LanguageModelV3GenerateResult['usage'] {
  return {
    inputTokens: { total: input, noCache: input, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: output, text: output, reasoning: 0 },
  };
}
