// Chooses the model from KEEL_MODEL: `openai:<model>`, `anthropic:<model>` or
// `openai-compatible:<baseURL>#<model>` (Ollama, vLLM, llama.cpp servers). Provider instances
// are always built here; a bare model-id string is never handed to the AI SDK (it would route
// through a gateway Keel does not use).

import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { LanguageModelV3 } from '@ai-sdk/provider';
import { KeelError } from '../errors.js';

export interface ModelSpec {
  provider: 'openai' | 'anthropic' | 'openai-compatible';
  model: string;
  baseURL?: string;
}

const usage =
  'Set KEEL_MODEL to `openai:<model>` (e.g. openai:gpt-4.1-mini), `anthropic:<model>` (e.g. anthropic:claude-sonnet-4-5) ' +
  'or `openai-compatible:<baseURL>#<model>` (e.g. openai-compatible:http://127.0.0.1:11434/v1#llama3.1), or unset it to use the scripted model.';

export function parseModelSpec(text: string): ModelSpec {
  const colon = text.indexOf(':');
  const provider = colon > 0 ? text.slice(0, colon) : '';
  const rest = colon > 0 ? text.slice(colon + 1).trim() : '';
  if (provider === 'openai' || provider === 'anthropic') {
    if (rest) return { provider, model: rest };
  } else if (provider === 'openai-compatible') {
    const hash = rest.lastIndexOf('#');
    const baseURL = hash > 0 ? rest.slice(0, hash) : '';
    const model = hash > 0 ? rest.slice(hash + 1) : '';
    if (baseURL && model && /^https?:\/\//.test(baseURL)) return { provider, model, baseURL };
  }
  throw new KeelError('MODEL_CONFIG', `KEEL_MODEL='${text}' is not a model Keel can use. ${usage}`);
}

/** API keys come from the providers' usual variables (OPENAI_API_KEY, ANTHROPIC_API_KEY, KEEL_MODEL_API_KEY). */
export function createModel(spec: ModelSpec, env: NodeJS.ProcessEnv = process.env): LanguageModelV3 {
  switch (spec.provider) {
    case 'openai':
      return createOpenAI({ apiKey: env.OPENAI_API_KEY, baseURL: env.OPENAI_BASE_URL })(spec.model);
    case 'anthropic':
      return createAnthropic({ apiKey: env.ANTHROPIC_API_KEY, baseURL: env.ANTHROPIC_BASE_URL })(spec.model);
    case 'openai-compatible':
      return createOpenAICompatible({
        name: 'openai-compatible',
        baseURL: spec.baseURL!,
        apiKey: env.KEEL_MODEL_API_KEY,
      }).chatModel(spec.model);
  }
}

export function modelFromEnv(env: NodeJS.ProcessEnv = process.env): { model: LanguageModelV3; spec: ModelSpec } | undefined {
  const text = env.KEEL_MODEL?.trim();
  if (!text) return undefined;
  const spec = parseModelSpec(text);
  return { model: createModel(spec, env), spec };
}
