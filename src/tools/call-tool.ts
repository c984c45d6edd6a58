// Runs one attempt of a tool call: a per-attempt timeout whose AbortSignal reaches the tool, so
// the underlying request is cancelled, and a bounded, jittered delay before the next attempt.

import { backoffDelayMs, defaultBackoffPolicy } from './backoff.js';
import { ToolError } from './tool-error.js';
import type { AnyTool, ToolContext } from './tool.js';

const defaultTimeoutMs = 30_000;

export function callTool(tool: AnyTool, args: unknown, context: ToolContext): Promise<unknown> {
  const timeoutMs = tool.timeoutMs ?? defaultTimeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const settle = () => {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      attempt.abort(context.signal.reason);
      settle();
      reject(context.signal.reason);
    };
    if (context.signal.aborted) return onAbort();
    context.signal.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => {
      const error = new ToolError(
        'transient',
        `Tool '${tool.name}' timed out after ${timeoutMs} ms (attempt ${context.attempt}, workflow ${context.workflowId}, step ${context.step})`,
      );
      attempt.abort(error);
      settle();
      reject(error);
    }, timeoutMs);
    Promise.resolve()
      .then(() => tool.execute(args, { ...context, signal: attempt.signal }))
      .then(
        (value) => {
          settle();
          resolve(value);
        },
        (error) => {
          settle();
          reject(error);
        },
      );
  });
}

/** Exponential backoff with full jitter; a service's own Retry-After wins when it is longer. */
export function retryDelayMs(attempt: number, error: unknown, random: () => number = Math.random): number {
  const retryAfter = ToolError.isInstance(error) ? error.retryAfterMs : undefined;
  return backoffDelayMs(defaultBackoffPolicy, attempt, retryAfter, random);
}
