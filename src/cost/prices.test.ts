import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { genaiPricesVersion, priceTable } from './prices.js';

// gpt-4o-mini in the bundled data of @pydantic/genai-prices 0.1.8, USD per million tokens.
const gpt4oMini = { input: 0.15, cacheRead: 0.075, output: 0.6 };

afterEach(() => {
  vi.restoreAllMocks();
});

describe('priceTable', () => {
  it('prices a call from the bundled data: the price table times the token counts, cache reads at their own rate', () => {
    const cost = priceTable().costOf({ provider: 'openai.chat', model: 'gpt-4o-mini', usage: { inputTokens: 12_000, outputTokens: 800, cacheReadTokens: 2_000 } });
    const input = (10_000 * gpt4oMini.input + 2_000 * gpt4oMini.cacheRead) / 1e6;
    const output = (800 * gpt4oMini.output) / 1e6;
    expect(cost).toMatchObject({ source: 'genai-prices', sourceVersion: genaiPricesVersion, pricedModel: 'openai/gpt-4o-mini' });
    expect(cost!.inputUsd).toBeCloseTo(input, 12);
    expect(cost!.outputUsd).toBeCloseTo(output, 12);
    expect(cost!.usd).toBeCloseTo(input + output, 12);
  });

  it('lets a configured price win, by provider/model or by model, and prices models the data lacks', () => {
    const table = priceTable({
      overrides: {
        'openai/gpt-4o-mini': { inputPerMTok: 0.1, outputPerMTok: 0.4, version: 'contract 2026-03' },
        'in-house-llm': { inputPerMTok: 1, outputPerMTok: 2, cacheReadPerMTok: 0.5 },
      },
    });
    const negotiated = table.costOf({ provider: 'openai.chat', model: 'gpt-4o-mini', usage: { inputTokens: 1_000_000, outputTokens: 1_000_000 } });
    expect(negotiated).toMatchObject({ source: 'config', sourceVersion: 'contract 2026-03', pricedModel: 'openai/gpt-4o-mini' });
    expect(negotiated!.usd).toBeCloseTo(0.5, 12);
    const own = table.costOf({ provider: 'acme', model: 'in-house-llm', usage: { inputTokens: 3_000_000, outputTokens: 1_000_000, cacheReadTokens: 1_000_000 } });
    expect(own!.usd).toBeCloseTo(2 * 1 + 1 * 0.5 + 1 * 2, 12);
    expect(table.estimate({ provider: 'acme', model: 'in-house-llm', inputTokens: 1_000_000, outputTokens: 0 })).toBeCloseTo(1, 12);
  });

  it('returns no cost for a model without a price or a call without usage', () => {
    const table = priceTable();
    expect(table.costOf({ provider: 'keel.scripted', model: 'scripted', usage: { inputTokens: 10, outputTokens: 5 } })).toBeUndefined();
    expect(table.costOf({ provider: 'openai.chat', model: 'gpt-4o-mini' })).toBeUndefined();
  });

  it('remembers a model it has no price for by provider and model, so the same model id elsewhere is still priced', () => {
    const table = priceTable();
    const usage = { inputTokens: 1_000_000, outputTokens: 0 };
    for (let call = 0; call < 3; call++) expect(table.costOf({ provider: 'acme.chat', model: 'gpt-4o-mini', usage })).toBeUndefined();
    expect(table.costOf({ provider: 'openai.chat', model: 'gpt-4o-mini', usage })!.usd).toBeCloseTo(gpt4oMini.input, 12);
    expect(table.costOf({ provider: 'acme.chat', model: 'gpt-4o-mini', usage })).toBeUndefined();
  });

  it('makes no network call: the bundled data is all it uses', () => {
    const fetch = vi.spyOn(globalThis, 'fetch');
    priceTable().costOf({ provider: 'anthropic.messages', model: 'claude-sonnet-4-5', usage: { inputTokens: 1000, outputTokens: 100 } });
    priceTable().costOf({ provider: 'openai.chat', model: 'gpt-4o-mini', usage: { inputTokens: 1000, outputTokens: 100 } });
    expect(fetch).not.toHaveBeenCalled();
  });

  it('names the installed version of @pydantic/genai-prices as the price source version', () => {
    const entry = createRequire(import.meta.url).resolve('@pydantic/genai-prices');
    const manifest = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
    expect(genaiPricesVersion).toBe(manifest.version);
  });
});
