// defineTool: a typed tool the agent may call. Arguments are checked against the zod schema
// before the tool runs; a tool with a side effect gets a checkpoint before it runs and a stable
// idempotency key, so a step re-run after a crash can be recognised downstream.

import type { z } from 'zod';
import type { Logger } from '../util/logger.js';
import type { Principal } from '../store/types.js';
import type { BackoffPolicy } from './backoff.js';
import type { ErrorClass } from './tool-error.js';

export interface ToolContext {
  workflowId: string;
  step: number;
  /** Same value every time this step runs, including after a crash: `<workflowId>:<step>`. */
  idempotencyKey: string;
  /** 1 on the first attempt of this step's call. */
  attempt: number;
  principal: Principal;
  signal: AbortSignal;
  logger: Logger;
  /** The workflow's task input. */
  input: unknown;
  /** Reads a context value (the last committed value, or one written earlier in this call). */
  get<T = unknown>(key: string): T | undefined;
  /** Writes a context value; committed with the step's result, discarded if the call fails. */
  set(key: string, value: unknown): void;
  /** Appends to a context list; stored item by item so long lists stay cheap to grow. */
  append(key: string, value: unknown): void;
  /**
   * A current access token for the tool's service, from the service's credential provider:
   * refreshed before expiry, and after the service rejects it (an auth-expired error).
   */
  credentials(): Promise<string>;
}

/** What a tool falls back to when its retries are exhausted; the journal records the use. */
export type ToolFallback =
  /** Another tool of the agent, called with the same arguments (its own fallback is not used). */
  | { tool: string }
  /** The last result this worker got from the tool for the same arguments, if not older than maxAgeMs. */
  | { cached: true; maxAgeMs?: number }
  /** A degraded value computed from the arguments and the failure. */
  | { value: (args: never, failure: { errorClass: string; message: string }) => unknown };

export interface ToolDefinition<Schema extends z.ZodType = z.ZodType, Result = unknown> {
  name: string;
  description: string;
  input: Schema;
  /** True when the tool changes the world (pays, sends, deletes): checkpointed, never run twice. */
  sideEffect?: boolean;
  /** Every call waits for a person's approval first (src/approval). */
  requiresApproval?: boolean;
  /** Attempts for a transient failure, including the first (default 3; `retry.maxAttempts` wins). */
  maxAttempts?: number;
  /** The downstream service the tool calls: its circuit breaker, rate budget and credentials apply. */
  service?: string;
  /** Backoff: attempts, base and largest delay, and the cap on total time for one call. */
  retry?: Partial<BackoffPolicy>;
  fallback?: ToolFallback;
  /** Per-attempt timeout in ms (default 30 s). */
  timeoutMs?: number;
  /**
   * This tool's own reading of a failure, consulted before the default classifier (docs/errors.md).
   * Return undefined to use the default. E.g. a payment API whose 409 means "a request with this
   * idempotency key is still in flight" can call that 'transient' instead of 'invalid-input'.
   */
  classify?(error: unknown): ErrorClass | undefined;
  /**
   * The permission a call needs (e.g. 'payments:write') when permissions are enforced
   * (docs/security.md). A tool without one cannot run there: deny by default.
   */
  permission?: string;
  /**
   * The resources a call touches, named from its arguments (e.g. `payee:<iban>`, `claim:<id>`):
   * each must fall within a grant's resource patterns. Without it a call is checked as `tool:<name>`.
   */
  resource?(args: z.infer<Schema>, call: { input: unknown }): string | readonly string[];
  /**
   * Its results are trusted sources for provenance: values it returns may flow into a
   * side-effecting call's arguments without a person's approval. Default false: tool output is data
   * that may carry injected instructions.
   */
  trusted?: boolean;
  execute(args: z.infer<Schema>, context: ToolContext): Promise<Result> | Result;
}

export interface Tool<Schema extends z.ZodType = z.ZodType, Result = unknown> extends ToolDefinition<Schema, Result> {
  readonly kind: 'keel.tool';
}

const toolName = /^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/;

export function defineTool<Schema extends z.ZodType, Result>(
  definition: ToolDefinition<Schema, Result>,
): Tool<Schema, Result> {
  if (!toolName.test(definition.name)) {
    throw new TypeError(
      `Tool name '${definition.name}' is not valid: use letters, digits, '_' or '-', starting with a letter, at most 64 characters.`,
    );
  }
  return { ...definition, kind: 'keel.tool' };
}

// Tools of any schema, as they sit in an agent's registry.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTool = Tool<any, any>;
