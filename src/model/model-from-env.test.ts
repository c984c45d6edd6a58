// KEEL_MODEL parsing and provider construction: every accepted form, every refusal, and the
// message a person sees when the variable is wrong.

import { describe, expect, it } from 'vitest';
import { KeelError } from '../errors.js';
import { createModel, modelFromEnv, parseModelSpec } from './model-from-env.js';

function refusal(text: string): KeelError {
  try {
    parseModelSpec(text);
  } catch (error) {
    if (KeelError.isInstance(error)) return error;
    throw error;
  }
  throw new Error(`parseModelSpec('${text}') was expected to refuse the text but accepted it.`);
}

describe('parseModelSpec', () => {
  it('reads openai:<model>', () => {
    expect(parseModelSpec('openai:gpt-4.1-mini')).toEqual({ provider: 'openai', model: 'gpt-4.1-mini' });
  });

  it('reads anthropic:<model>', () => {
    expect(parseModelSpec('anthropic:claude-sonnet-4-5')).toEqual({ provider: 'anthropic', model: 'claude-sonnet-4-5' });
  });

  it('reads openai-compatible:<baseURL>#<model>, keeping the colons of the URL', () => {
    expect(parseModelSpec('openai-compatible:http://127.0.0.1:11434/v1#llama3.1')).toEqual({
      provider: 'openai-compatible',
      baseURL: 'http://127.0.0.1:11434/v1',
      model: 'llama3.1',
    });
    expect(parseModelSpec('openai-compatible:https://models.example.test/v1#org/model:7b')).toEqual({
      provider: 'openai-compatible',
      baseURL: 'https://models.example.test/v1',
      model: 'org/model:7b',
    });
  });

  it.each([
    ['an empty model', 'openai:'],
    ['a blank model', 'anthropic:   '],
    ['no provider', 'gpt-4.1-mini'],
    ['an unknown provider', 'mistral:mistral-large'],
    ['a missing #', 'openai-compatible:http://127.0.0.1:11434/v1'],
    ['an empty model after #', 'openai-compatible:http://127.0.0.1:11434/v1#'],
    ['a base URL that is not http(s)', 'openai-compatible:ftp://127.0.0.1/v1#llama3.1'],
    ['a base URL without a scheme', 'openai-compatible:127.0.0.1:11434/v1#llama3.1'],
  ])('refuses %s with MODEL_CONFIG and lists the accepted forms', (_case, text) => {
    const error = refusal(text);
    expect(error.code).toBe('MODEL_CONFIG');
    expect(error.source).toBe('user');
    expect(error.message).toContain(`KEEL_MODEL='${text}'`);
    expect(error.message).toContain('`openai:<model>`');
    expect(error.message).toContain('`anthropic:<model>`');
    expect(error.message).toContain('`openai-compatible:<baseURL>#<model>`');
    expect(error.message).toContain('unset it to use the scripted model');
  });
});

describe('modelFromEnv', () => {
  it('returns undefined when KEEL_MODEL is unset or blank', () => {
    expect(modelFromEnv({})).toBeUndefined();
    expect(modelFromEnv({ KEEL_MODEL: '  ' })).toBeUndefined();
  });

  it('builds the provider named by KEEL_MODEL', () => {
    const chosen = modelFromEnv({ KEEL_MODEL: ' openai-compatible:http://127.0.0.1:8000/v1#local-model ', KEEL_MODEL_API_KEY: 'test' });
    expect(chosen?.spec).toEqual({ provider: 'openai-compatible', baseURL: 'http://127.0.0.1:8000/v1', model: 'local-model' });
    expect(chosen?.model.modelId).toBe('local-model');
    expect(chosen?.model.provider).toBe('openai-compatible.chat');
  });

  it('throws MODEL_CONFIG for a KEEL_MODEL it cannot use rather than falling back silently', () => {
    expect(() => modelFromEnv({ KEEL_MODEL: 'gpt-4.1-mini' })).toThrow(expect.objectContaining({ code: 'MODEL_CONFIG' }));
  });
});

describe('createModel', () => {
  it('builds an OpenAI model and an Anthropic model by id, without a network call', () => {
    const openai = createModel({ provider: 'openai', model: 'gpt-4.1-mini' }, { OPENAI_API_KEY: 'test' });
    expect(openai.modelId).toBe('gpt-4.1-mini');
    expect(openai.provider).toMatch(/^openai\./);
    const anthropic = createModel({ provider: 'anthropic', model: 'claude-sonnet-4-5' }, { ANTHROPIC_API_KEY: 'test' });
    expect(anthropic.modelId).toBe('claude-sonnet-4-5');
    expect(anthropic.provider).toMatch(/^anthropic\./);
  });
});
