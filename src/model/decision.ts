// What a decider sees and what it proposes. A decider proposes exactly one next action; Keel
// validates it, runs it and records it. Observations are data: a failed, refused or invalid
// call comes back to the decider as a typed observation, never as an exception.

import type { CallCost } from '../cost/prices.js';

export interface Decision {
  tool: string;
  args: unknown;
  reasoning?: string;
  /** How sure the decider is, in [0, 1]. Approval policies use it. */
  confidence?: number;
}

export interface ModelUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
}

/** A decision as recorded in the journal: what was proposed and what it cost. */
export interface DecisionRecord extends Decision {
  source: 'code' | 'model';
  provider?: string;
  model?: string;
  usage?: ModelUsage;
  finishReason?: string;
  durationMs?: number;
  /** Set when the decider's proposal could not be read as a call (unknown tool, unparsable arguments). */
  invalid?: string;
  /** What the call cost and from which prices (src/cost); absent when its model has no known price. */
  cost?: CallCost;
}

export type Observation =
  | { type: 'tool-result'; step: number; tool: string; args: unknown; result: unknown }
  | { type: 'tool-error'; step: number; tool: string; args: unknown; errorClass: string; message: string };

export interface DecisionView {
  workflowId: string;
  agent: string;
  step: number;
  state: string;
  input: unknown;
  context: Readonly<Record<string, unknown>>;
  allowedTools: readonly string[];
  /** Earlier observations, oldest first (a bounded window for long workflows). */
  history: readonly Observation[];
  lastObservation?: Observation;
}

export interface Decider {
  readonly kind: 'code' | 'model';
  /** The model a model decider asks and its provider, known before the call (for its span and budget estimate). */
  readonly model?: string;
  readonly provider?: string;
  decide(view: DecisionView, tools: ToolCatalog, signal: AbortSignal): Promise<DecisionRecord>;
}

/** What a decider may know of the tools allowed now. */
export interface ToolCatalogEntry {
  name: string;
  description: string;
  /** JSON Schema of the tool's arguments. */
  parameters: Record<string, unknown>;
}
export type ToolCatalog = readonly ToolCatalogEntry[];
