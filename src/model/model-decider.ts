// The model decider: one AI SDK generateText call per step. Tools are given to the model
// without `execute`, so the SDK returns the call and Keel runs it under its own policies; the SDK
// never retries (maxRetries: 0) because Keel's runner owns retries.
//
// Each tool is offered to the model wrapped as { reasoning, confidence, input }: the model
// states why and how sure it is with every action, and the tool's own schema stays untouched.

import { generateText, jsonSchema, tool, ToolChoiceViolationError, type LanguageModel, type ModelMessage, type ToolSet } from 'ai';
import type { Decider, DecisionRecord, DecisionView, Observation, ToolCatalog } from './decision.js';

export interface ModelDeciderOptions {
  model: Exclude<LanguageModel, string>;
  instructions?: string;
  /** How many earlier observations go into the prompt. */
  historyWindow?: number;
  temperature?: number;
}

export function wrappedParameters(parameters: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      reasoning: { type: 'string', description: 'Why this action is the right next step, in one or two sentences.' },
      confidence: {
        type: 'number',
        minimum: 0,
        maximum: 1,
        description: 'How confident you are that this action is correct, from 0 to 1.',
      },
      input: parameters,
    },
    required: ['reasoning', 'confidence', 'input'],
    additionalProperties: false,
  };
}

export function modelDecider(options: ModelDeciderOptions): Decider {
  const historyWindow = options.historyWindow ?? 40;
  const toolSets = new WeakMap<ToolCatalog, ToolSet>();
  const toolSetFor = (catalog: ToolCatalog): ToolSet => {
    let set = toolSets.get(catalog);
    if (!set) {
      set = {};
      for (const entry of catalog) {
        set[entry.name] = tool({ description: entry.description, inputSchema: jsonSchema(wrappedParameters(entry.parameters)) });
      }
      toolSets.set(catalog, set);
    }
    return set;
  };

  return {
    kind: 'model',
    model: modelIdOf(options.model),
    provider: providerOf(options.model),
    async decide(view: DecisionView, catalog: ToolCatalog, signal: AbortSignal): Promise<DecisionRecord> {
      const started = performance.now();
      let result;
      try {
        result = await generateText({
          model: options.model,
          system: systemPrompt(options.instructions, view),
          messages: promptMessages(view, historyWindow),
          tools: toolSetFor(catalog),
          toolChoice: 'required',
          maxRetries: 0,
          temperature: options.temperature,
          abortSignal: signal,
          providerOptions: { keel: { view: view as never } },
        });
      } catch (error) {
        // The SDK throws when a required tool call is missing; for Keel that is model misbehaviour
        // the model should see and correct, not a failed call. The error carries no usage.
        if (!ToolChoiceViolationError.isInstance(error)) throw error;
        return {
          source: 'model',
          provider: providerOf(options.model),
          model: error.modelId || modelIdOf(options.model),
          finishReason: error.finishReason,
          durationMs: performance.now() - started,
          ...textOnlyAnswer(error.content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join(''), error.finishReason, view),
        };
      }
      const usage = {
        inputTokens: result.usage.inputTokens ?? 0,
        outputTokens: result.usage.outputTokens ?? 0,
        cacheReadTokens: result.usage.inputTokenDetails?.cacheReadTokens ?? undefined,
        cacheWriteTokens: result.usage.inputTokenDetails?.cacheWriteTokens ?? undefined,
      };
      const base = {
        source: 'model' as const,
        provider: providerOf(options.model),
        model: result.response.modelId || modelIdOf(options.model),
        usage,
        finishReason: result.finishReason,
        durationMs: performance.now() - started,
      };
      const call = result.toolCalls[0];
      if (!call) return { ...base, ...textOnlyAnswer(result.text, result.finishReason, view) };
      if (call.dynamic && call.invalid) {
        return {
          ...base,
          tool: call.toolName,
          args: call.input,
          invalid: `The model's call of '${call.toolName}' could not be used: ${errorText(call.error)}. Allowed tools: ${view.allowedTools.join(', ')}.`,
        };
      }
      const wrapped = (call.input ?? {}) as { reasoning?: unknown; confidence?: unknown; input?: unknown };
      return {
        ...base,
        tool: call.toolName,
        args: wrapped.input,
        reasoning: typeof wrapped.reasoning === 'string' ? wrapped.reasoning : undefined,
        confidence: typeof wrapped.confidence === 'number' ? clamp(wrapped.confidence) : undefined,
      };
    },
  };
}

function textOnlyAnswer(text: string, finishReason: string, view: DecisionView): Pick<DecisionRecord, 'tool' | 'args' | 'reasoning' | 'invalid'> {
  return {
    tool: '',
    args: null,
    reasoning: text,
    invalid: `The model answered without calling a tool (finish reason '${finishReason}'). Exactly one tool call is required; allowed tools: ${view.allowedTools.join(', ')}.`,
  };
}

function systemPrompt(instructions: string | undefined, view: DecisionView): string {
  return [
    instructions ?? `You are the '${view.agent}' agent.`,
    `Current state: ${view.state}. Step ${view.step}.`,
    `Decide only the next action: call exactly one of the allowed tools (${view.allowedTools.join(', ')}).`,
    'Give your reasoning and a confidence between 0 and 1 with the call; put the tool arguments in `input`.',
    'If a previous call failed, read its error and adapt instead of repeating it unchanged.',
  ].join('\n');
}

function promptMessages(view: DecisionView, historyWindow: number): ModelMessage[] {
  const messages: ModelMessage[] = [{ role: 'user', content: `Task input:\n${JSON.stringify(view.input, null, 2)}` }];
  for (const observation of view.history.slice(-historyWindow)) {
    const toolCallId = `step-${observation.step}`;
    messages.push({
      role: 'assistant',
      content: [{ type: 'tool-call', toolCallId, toolName: observation.tool, input: { input: observation.args } }],
    });
    messages.push({
      role: 'tool',
      content: [
        {
          type: 'tool-result',
          toolCallId,
          toolName: observation.tool,
          output: observationOutput(observation),
        },
      ],
    });
  }
  return messages;
}

function observationOutput(observation: Observation) {
  if (observation.type === 'tool-result') return { type: 'json' as const, value: (observation.result ?? null) as never };
  return { type: 'error-text' as const, value: `${observation.errorClass}: ${observation.message}` };
}

function clamp(value: number): number {
  return Math.min(1, Math.max(0, value));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function providerOf(model: Exclude<LanguageModel, string>): string {
  return (model as { provider?: string }).provider ?? 'unknown';
}

function modelIdOf(model: Exclude<LanguageModel, string>): string {
  return (model as { modelId?: string }).modelId ?? 'unknown';
}
