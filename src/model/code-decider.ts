// A decider in plain code, for deterministic states: no model call, no tokens.

import type { Decider, DecisionRecord, DecisionView } from './decision.js';

export type DecideFunction = (view: DecisionView) => { tool: string; args: unknown; reasoning?: string; confidence?: number };

export function codeDecider(decide: DecideFunction): Decider {
  return {
    kind: 'code',
    async decide(view: DecisionView): Promise<DecisionRecord> {
      const decision = decide(view);
      return { source: 'code', confidence: 1, ...decision };
    },
  };
}
