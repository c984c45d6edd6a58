// What a model call costs, from its token counts and a price table. Prices come from
// @pydantic/genai-prices (its data is bundled in the package: Keel never calls its updatePrices,
// so no network is used at run time), overridden per model by configuration for negotiated rates
// or models the package lacks. Every cost carries its price source and that source's version, so
// it can be recomputed and audited later.
//
// Token semantics follow the AI SDK and genai-prices alike: input tokens include cache reads and
// cache writes; those are charged at their own rates, the rest at the input rate.

import { calcPrice } from '@pydantic/genai-prices';
import type { ModelUsage } from '../model/decision.js';

/** The package version whose bundled data prices calls; a test checks it against the installed package. */
export const genaiPricesVersion = '0.1.8';

/** Model ids come from provider answers, so the memory of unpriced ones is bounded. */
const maxUnpricedModels = 256;

/** A per-model price in USD per million tokens (the unit providers publish). */
export interface ModelPriceOverride {
  inputPerMTok: number;
  outputPerMTok: number;
  cacheReadPerMTok?: number;
  cacheWritePerMTok?: number;
  /** A label for the audit: where the rate comes from (e.g. 'contract 2026-03'). */
  version?: string;
}

export interface PriceOptions {
  /** Overrides keyed by model id ('gpt-4o-mini') or provider/model ('openai/gpt-4o-mini'); they win over the package data. */
  overrides?: Record<string, ModelPriceOverride>;
}

/** What one call cost, and from which prices: enough to recompute it. */
export interface CallCost {
  usd: number;
  inputUsd: number;
  outputUsd: number;
  /** 'genai-prices' or 'config'. */
  source: 'genai-prices' | 'config';
  /** The package version, or the override's label. */
  sourceVersion: string;
  /** The model the price table matched (the package's id, or the override key). */
  pricedModel: string;
}

export interface PriceTable {
  /** The cost of a call, or undefined when no price is known for its model. */
  costOf(call: { provider?: string; model?: string; usage?: ModelUsage; at?: Date }): CallCost | undefined;
  /** The cost a call would have with these token counts (budget estimates). */
  estimate(call: { provider?: string; model?: string; inputTokens: number; outputTokens: number }): number | undefined;
}

export function priceTable(options: PriceOptions = {}): PriceTable {
  const overrides = options.overrides ?? {};
  const overrideFor = (provider: string | undefined, model: string): [string, ModelPriceOverride] | undefined => {
    const family = providerFamily(provider);
    const key = family && `${family}/${model}` in overrides ? `${family}/${model}` : model in overrides ? model : undefined;
    return key === undefined ? undefined : [key, overrides[key]!];
  };
  // Models the bundled data does not know, so that a step of an unpriced model (a local server,
  // the scripted model) does not search the whole table again. Matching a model does not depend on
  // the time of the call (only picking its price does) and the data never changes at run time.
  const unpriced = new Set<string>();
  const table: PriceTable = {
    costOf({ provider, model, usage, at }) {
      if (!model || !usage) return undefined;
      const override = overrideFor(provider, model);
      if (override) return costFromOverride(override[0], override[1], usage);
      const family = providerFamily(provider);
      const key = `${family ?? ''}/${model}`;
      if (unpriced.has(key)) return undefined;
      const priced = calcPrice(
        {
          input_tokens: usage.inputTokens,
          output_tokens: usage.outputTokens,
          cache_read_tokens: usage.cacheReadTokens,
          cache_write_tokens: usage.cacheWriteTokens,
        },
        model,
        { ...(family ? { providerId: family } : {}), ...(at ? { timestamp: at } : {}) },
      );
      if (!priced) {
        if (unpriced.size < maxUnpricedModels) unpriced.add(key);
        return undefined;
      }
      return {
        usd: priced.total_price,
        inputUsd: priced.input_price,
        outputUsd: priced.output_price,
        source: 'genai-prices',
        sourceVersion: genaiPricesVersion,
        pricedModel: `${priced.provider.id}/${priced.model.id}`,
      };
    },
    estimate({ provider, model, inputTokens, outputTokens }) {
      return table.costOf({ provider, model, usage: { inputTokens, outputTokens } })?.usd;
    },
  };
  return table;
}

function costFromOverride(key: string, price: ModelPriceOverride, usage: ModelUsage): CallCost {
  const cacheRead = usage.cacheReadTokens ?? 0;
  const cacheWrite = usage.cacheWriteTokens ?? 0;
  const plainInput = Math.max(0, usage.inputTokens - cacheRead - cacheWrite);
  const inputUsd =
    (plainInput * price.inputPerMTok + cacheRead * (price.cacheReadPerMTok ?? price.inputPerMTok) + cacheWrite * (price.cacheWritePerMTok ?? price.inputPerMTok)) / 1_000_000;
  const outputUsd = (usage.outputTokens * price.outputPerMTok) / 1_000_000;
  return { usd: inputUsd + outputUsd, inputUsd, outputUsd, source: 'config', sourceVersion: price.version ?? 'config', pricedModel: key };
}

/** The AI SDK names providers 'openai.chat', 'anthropic.messages'; genai-prices knows 'openai', 'anthropic'. */
function providerFamily(provider: string | undefined): string | undefined {
  if (!provider) return undefined;
  return provider.split('.')[0]!.toLowerCase();
}
