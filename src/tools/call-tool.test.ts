// callTool runs one attempt under a timeout whose AbortSignal reaches the tool; retryDelayMs is
// the bounded, jittered backoff between attempts, with the service's Retry-After winning.

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { silentLogger } from '../util/logger.js';
import { callTool, retryDelayMs } from './call-tool.js';
import { ToolError } from './tool-error.js';
import { defineTool, type ToolContext } from './tool.js';

function toolContext(signal: AbortSignal = new AbortController().signal): ToolContext {
  const values: Record<string, unknown> = {};
  return {
    workflowId: 'wf_1',
    step: 3,
    idempotencyKey: 'wf_1:3',
    attempt: 2,
    principal: { id: 'alice' },
    signal,
    logger: silentLogger,
    input: null,
    credentials: async () => 'token-for-tests',
    get: (key) => values[key] as never,
    set: (key, value) => void (values[key] = value),
    append: (key, value) => {
      ((values[key] ??= []) as unknown[]).push(value);
    },
  };
}

/** A tool that waits until its signal aborts, and reports the signal it saw. */
function waitingTool(timeoutMs?: number) {
  let seen: AbortSignal | undefined;
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const tool = defineTool({
    name: 'slow_call',
    description: 'Waits for its signal.',
    input: z.object({}),
    timeoutMs,
    execute: (_args, context) =>
      new Promise((_resolve, reject) => {
        seen = context.signal;
        started();
        context.signal.addEventListener('abort', () => reject(new Error('cancelled by signal')), { once: true });
      }),
  });
  return { tool, running, seen: () => seen };
}

describe('callTool', () => {
  it('returns what the tool returns and passes it the context', async () => {
    const tool = defineTool({
      name: 'echo',
      description: 'Echoes.',
      input: z.object({ text: z.string() }),
      execute: (args, context) => ({ text: args.text, key: context.idempotencyKey, attempt: context.attempt }),
    });
    await expect(callTool(tool, { text: 'hi' }, toolContext())).resolves.toEqual({ text: 'hi', key: 'wf_1:3', attempt: 2 });
  });

  it('rejects with what the tool threw, synchronously or not', async () => {
    const boom = new ToolError('fatal', 'no such account');
    const throwing = defineTool({ name: 'throws', description: 'Throws.', input: z.object({}), execute: () => { throw boom; } });
    await expect(callTool(throwing, {}, toolContext())).rejects.toBe(boom);
  });

  it('times out as a transient ToolError and aborts the signal the tool holds', async () => {
    const { tool, seen } = waitingTool(20);
    const call = callTool(tool, {}, toolContext());
    await expect(call).rejects.toSatisfy((error: unknown) => ToolError.isInstance(error) && error.errorClass === 'transient');
    await expect(call).rejects.toThrow("Tool 'slow_call' timed out after 20 ms (attempt 2, workflow wf_1, step 3)");
    expect(seen()?.aborted).toBe(true);
    expect(ToolError.isInstance(seen()?.reason)).toBe(true);
  });

  it('passes an abort of the workflow on to the tool and rejects with its reason', async () => {
    const { tool, running, seen } = waitingTool(60_000);
    const workflow = new AbortController();
    const call = callTool(tool, {}, toolContext(workflow.signal));
    await running;
    const reason = new Error('worker shutting down');
    workflow.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(seen()?.aborted).toBe(true);
  });

  it('does not start the tool when the workflow is already aborted', async () => {
    let ran = false;
    const tool = defineTool({ name: 'never', description: 'Must not run.', input: z.object({}), execute: () => void (ran = true) });
    const workflow = new AbortController();
    workflow.abort(new Error('stopped'));
    await expect(callTool(tool, {}, toolContext(workflow.signal))).rejects.toThrow('stopped');
    expect(ran).toBe(false);
  });
});

describe('retryDelayMs', () => {
  it('grows exponentially from 100 ms and stays within [0, ceiling]', () => {
    const ceilings = [1, 2, 3, 4, 5].map((attempt) => retryDelayMs(attempt, new Error('x'), () => 1));
    expect(ceilings).toEqual([100, 200, 400, 800, 1600]);
    for (let attempt = 1; attempt <= 5; attempt++) expect(retryDelayMs(attempt, new Error('x'), () => 0)).toBe(0);
    expect(retryDelayMs(3, new Error('x'), () => 0.5)).toBe(200);
  });

  it('never waits longer than 10 s of its own accord', () => {
    expect(retryDelayMs(30, new Error('x'), () => 1)).toBe(10_000);
    expect(retryDelayMs(1000, new Error('x'), () => 0.999)).toBeLessThanOrEqual(10_000);
  });

  it("lets a service's Retry-After win when it is longer than the backoff", () => {
    const rateLimited = new ToolError('rate-limited', 'slow down', { retryAfterMs: 1500 });
    expect(retryDelayMs(1, rateLimited, () => 1)).toBe(1500);
    expect(retryDelayMs(30, rateLimited, () => 1)).toBe(10_000);
    expect(retryDelayMs(1, new ToolError('rate-limited', 'slow down', { retryAfterMs: 0 }), () => 0.5)).toBe(50);
  });
});
