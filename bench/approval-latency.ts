// The approval scenario of `npm run bench` (issue 4): how soon an approved action runs while many
// other workflows wait for approval in the same SQLite file. One process, one Keel: it starts N
// workflows of a tiny code-decided agent whose only action always needs approval, runs a worker
// until all N are parked waiting for approval, then approves requests one at a time and, for
// each, times keel.approve returning -> the approved tool call starting (the tool's execute is
// entered) -> the step completing (the step-completed event). The other workflows stay parked.
//
// The worker polls for runnable workflows every `pollMs`, and an approval makes a workflow
// runnable without waking it, so the latency includes the rest of the poll interval the approval
// lands in: up to pollMs, about pollMs/2 on average. pollMs is reported with the figures.

import { z } from 'zod';
import { createKeel, defineAgent, defineTool, type Keel, openSqliteStore, toolRequiresApproval } from '../src/index.js';
import type { KeelEvent } from '../src/agent/events.js';
import { summarize, type Summary } from './stats.js';

export interface ApprovalLatencyResult {
  /** Workflows parked waiting for approval when the first approval is made. */
  parked: number;
  /** Approvals timed, one at a time. */
  samples: number;
  concurrency: number;
  /** The worker's idle poll interval: it bounds the latency (an approval waits up to one interval). */
  pollMs: number;
  /** Starting the workflows and parking them all (not part of the figures). */
  parkMs: number;
  /** keel.approve's own time: from the call to its promise settling. */
  approveCall: Summary;
  /** keel.approve returning -> the approved tool's execute entered (negative when a worker ran it before approve returned). */
  toStart: Summary;
  /** keel.approve returning -> the step-completed event of that step. */
  toComplete: Summary;
  /** Workflows still waiting for approval after the last sample (parked minus samples). */
  stillParked: number;
}

const agentName = 'bench-approval-payer';

interface Pending {
  startedAt?: number;
  settle: (timing: { startedAt: number; completedAt: number }) => void;
  fail: (error: Error) => void;
}

export async function runApprovalLatency(options: { path: string; parked: number; samples: number; concurrency: number; pollMs: number; log?: (line: string) => void }): Promise<ApprovalLatencyResult> {
  if (options.samples > options.parked) throw new RangeError(`The approval scenario samples ${options.samples} approvals but parks only ${options.parked} workflows; make samples at most parked.`);
  const pending = new Map<string, Pending>();

  const pay = defineTool({
    name: 'pay',
    description: 'Pays the claim (a no-op in the bench).',
    input: z.object({ amount: z.number().positive() }),
    sideEffect: true,
    requiresApproval: true,
    execute: async (args, context) => {
      const waiting = pending.get(context.workflowId);
      if (waiting) waiting.startedAt = performance.now();
      return { paid: args.amount };
    },
  });
  const agent = defineAgent({
    name: agentName,
    tools: [pay],
    input: z.object({ amount: z.number().positive() }),
    initial: 'review',
    states: { review: { tools: ['pay'], next: ['paid'], on: { pay: 'paid' } }, paid: { final: true, outcome: 'paid' } },
    decide: (view) => ({ tool: 'pay', args: { amount: (view.input as { amount: number }).amount }, reasoning: 'The claim is in order.', confidence: 0.99 }),
    approval: { rules: [toolRequiresApproval()], approvers: 'finance' },
  });

  const onEvent = (event: KeelEvent) => {
    if (event.type !== 'step-completed') return;
    const waiting = pending.get(event.workflowId);
    if (!waiting) return;
    const completedAt = performance.now();
    pending.delete(event.workflowId);
    if (waiting.startedAt === undefined || event.outcome !== 'ok') {
      waiting.fail(new Error(`Workflow ${event.workflowId} completed step ${event.step} (tool '${event.tool}', outcome ${event.outcome}) without the approved call succeeding.`));
      return;
    }
    waiting.settle({ startedAt: waiting.startedAt, completedAt });
  };

  const store = openSqliteStore({ path: options.path });
  const keel = createKeel({ store, agents: [agent], onEvent });
  const stop = new AbortController();
  let worker: Promise<unknown> | undefined;
  try {
    // The approver holds the approvers' role, so keel.approve pays for the check a real approval makes.
    await store.savePrincipal({ id: 'bench-approver', roles: ['finance'] }, 'bench');
    const parkStartedAt = performance.now();
    for (let index = 0; index < options.parked; index++) await keel.start(agentName, { amount: 100 + index });
    worker = keel.work({ concurrency: options.concurrency, pollMs: options.pollMs, signal: stop.signal });
    let requests = await keel.approvals({ status: 'pending', limit: options.parked + 1 });
    while (requests.length < options.parked) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      requests = await keel.approvals({ status: 'pending', limit: options.parked + 1 });
    }
    const parkMs = performance.now() - parkStartedAt;
    options.log?.(`approval: ${requests.length} workflows waiting for approval after ${(parkMs / 1000).toFixed(1)} s; approving ${options.samples}, one at a time`);

    const approveCall: number[] = [];
    const toStart: number[] = [];
    const toComplete: number[] = [];
    for (const request of requests.slice(0, options.samples)) {
      // Approvals arrive at random moments, not right after the worker finished the last one
      // (when it is awake and would claim at once): wait until it is idle again, then a random
      // part of a poll interval, so each approval lands at a random phase of the idle polling.
      await new Promise((resolve) => setTimeout(resolve, options.pollMs + Math.random() * options.pollMs));
      const timing = new Promise<{ startedAt: number; completedAt: number }>((settle, fail) => {
        pending.set(request.workflowId, { settle, fail });
      });
      const calledAt = performance.now();
      await keel.approve(request.id, { by: 'bench-approver' });
      const approvedAt = performance.now();
      approveCall.push(approvedAt - calledAt);
      const { startedAt, completedAt } = await withTimeout(timing, 30_000, `the approved call of workflow ${request.workflowId} (request ${request.id}) did not run within 30 s of the approval`);
      toStart.push(startedAt - approvedAt);
      toComplete.push(completedAt - approvedAt);
      await untilFinished(keel, request.workflowId);
    }
    const stillParked = (await keel.approvals({ status: 'pending', limit: options.parked + 1 })).length;
    return {
      parked: requests.length,
      samples: toStart.length,
      concurrency: options.concurrency,
      pollMs: options.pollMs,
      parkMs,
      approveCall: summarize(approveCall),
      toStart: summarize(toStart),
      toComplete: summarize(toComplete),
      stillParked,
    };
  } finally {
    stop.abort();
    await worker;
    await keel.close();
  }
}

/** Waits until the workflow has completed, so the worker is done with it before the next approval. */
async function untilFinished(keel: Keel, workflowId: string): Promise<void> {
  for (let polls = 0; polls < 3000; polls++) {
    const workflow = await keel.store.getWorkflow(workflowId);
    if (workflow?.status === 'completed') return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`Workflow ${workflowId} did not complete within about 3 s of its approved step; the approval scenario cannot time the next approval fairly.`);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
