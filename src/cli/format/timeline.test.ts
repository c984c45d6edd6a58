// What `keel inspect` shows of the tool runner's work: each failed attempt with its class, its
// attempt number and what followed (a retry after a delay, a park until a time, the decider, a
// fallback, a failure), calls deferred by an open breaker, fallbacks, and the same entries in full
// in --json. The workflows are made by a real Keel on the database the command then reads.

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAgent, type Agent } from '../../agent/define-agent.js';
import { createKeel, type Keel } from '../../agent/keel.js';
import { openSqliteStore } from '../../store/sqlite/sqlite-store.js';
import { ToolError } from '../../tools/tool-error.js';
import { defineTool, type AnyTool } from '../../tools/tool.js';
import { ManualClock } from '../../util/clock.js';
import { useCliWorkspace } from '../../../test/support/cli-harness.js';
import { HttpError } from '../../../test/support/http-error.js';

const cli = useCliWorkspace();
const noon = Date.UTC(2026, 0, 1, 12, 0, 0);

function payingAgent(pay: AnyTool, extra: AnyTool[] = []): Agent {
  return defineAgent({
    name: 'payer',
    tools: [pay, ...extra],
    initial: 'paying',
    states: { paying: { tools: ['pay'], next: ['done'], on: { pay: 'done' } }, done: { final: true } },
    decide: () => ({ tool: 'pay', args: { claimId: 'c1' }, reasoning: 'Pay the claim.', confidence: 0.9 }),
    services: { payments: { breaker: { consecutiveFailures: 1, halfOpenAfterMs: 10_000 } } },
  });
}

async function withKeel<T>(agent: Agent, clock: ManualClock, work: (keel: Keel) => Promise<T>): Promise<T> {
  const keel = createKeel({ store: openSqliteStore({ path: cli.db, clock }), agents: [agent], clock, parkAfterMs: 1_000 });
  try {
    return await work(keel);
  } finally {
    await keel.close();
  }
}

async function timelineOf(id: string): Promise<string[]> {
  const result = await cli.run(['inspect', id, '--db', cli.db]);
  expect(result.code, result.err).toBe(0);
  return result.out.slice(result.out.indexOf('Timeline')).trimEnd().split('\n').slice(2);
}

function lineOf(lines: string[], ...parts: string[]): string {
  const found = lines.filter((line) => parts.every((part) => line.includes(part)));
  expect(found, `one timeline line with ${parts.join(', ')}`).toHaveLength(1);
  return found[0]!;
}

/** The line of a failed attempt, found by its ATTEMPT column. */
function attemptLine(lines: string[], attempt: number): string {
  const found = lines.filter((line) => new RegExp(`^\\S+ +\\d+ +tool-call-failed +\\S+ +\\S+ +${attempt} `).test(line));
  expect(found, `one tool-call-failed line for attempt ${attempt}`).toHaveLength(1);
  return found[0]!;
}

describe('keel inspect: the tool runner', () => {
  it('shows each attempt with its class and number, the retry delay or the park, and the fallback that answered', async () => {
    const clock = new ManualClock(noon);
    const pay = defineTool({
      name: 'pay',
      description: 'Pays a claim.',
      input: z.object({ claimId: z.string() }),
      retry: { maxAttempts: 3, baseDelayMs: 5 },
      fallback: { value: (args: { claimId: string }) => ({ claimId: args.claimId, queued: true }) },
      execute: (_args, ctx) => {
        if (ctx.attempt === 2) throw new ToolError('rate-limited', 'payments asked us to slow down', { retryAfterMs: 5_000 });
        throw new HttpError(503, 'payments unavailable');
      },
    });
    const id = await withKeel(payingAgent(pay), clock, async (keel) => {
      const parked = await keel.startAndRun('payer', {}, { id: 'wf_attempts' });
      expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'retry' });
      clock.advance(5_000);
      expect(await keel.runNext()).toMatchObject({ status: 'completed' });
      return parked.id;
    });

    const lines = await timelineOf(id);
    expect(attemptLine(lines, 1)).toMatch(/tool-call-failed +pay +transient +1 +\d+ ms +transient, retry in \d+ ms: HTTP 503: payments unavailable$/);
    expect(attemptLine(lines, 2)).toMatch(/tool-call-failed +pay +rate-limited +2 +\d+ ms +rate-limited, parked until 12:00:05Z \(retry\): payments asked us to slow down$/);
    expect(lineOf(lines, 'workflow-parked')).toMatch(/workflow-parked +retry +waiting +parked until 12:00:05Z \(retry\): Tool 'pay' failed \(rate-limited, attempt 2 of 3, /);
    expect(attemptLine(lines, 3)).toMatch(
      /tool-call-failed +pay +transient +3 +\d+ ms +transient, using the fallback \(no attempts left \(attempt 3 of 3\)\): HTTP 503: payments unavailable$/,
    );
    expect(lineOf(lines, 'fallback-used')).toMatch(/fallback-used +pay +value +the fallback's degraded value used instead \(after transient failures\)$/);
    expect(lineOf(lines, 'tool-call-completed')).toMatch(/tool-call-completed +pay +ok +3 +\d+ ms +from the fallback \(value\): result \{"claimId":"c1","queued":true\}$/);

    // --json has every entry in full, these included.
    const json = JSON.parse((await cli.run(['inspect', id, '--json', '--db', cli.db])).out);
    const kinds = json.journal.map((entry: { kind: string }) => entry.kind);
    expect(kinds).toEqual(expect.arrayContaining(['tool-call-failed', 'workflow-parked', 'fallback-used', 'tool-call-completed']));
    expect(json.journal).toHaveLength(lines.length);
    const parkedAttempt = json.journal.find((entry: { kind: string; attempt: number }) => entry.kind === 'tool-call-failed' && entry.attempt === 2);
    expect(parkedAttempt).toMatchObject({ status: 'rate-limited', data: { errorClass: 'rate-limited', delayMs: 5_000, parked: true, wakeAt: noon + 5_000 } });
    expect(json.journal.find((entry: { kind: string }) => entry.kind === 'fallback-used')).toMatchObject({ name: 'pay', status: 'value', data: { instead: 'pay', errorClass: 'transient' } });
  });

  it('shows a call deferred by an open breaker, the park until the probe, and the waiting status in the header', async () => {
    const clock = new ManualClock(noon);
    let calls = 0;
    const pay = defineTool({
      name: 'pay',
      description: 'Pays a claim.',
      input: z.object({ claimId: z.string() }),
      service: 'payments',
      execute: () => {
        calls++;
        return { paid: true };
      },
    });
    const id = await withKeel(payingAgent(pay), clock, async (keel) => {
      await keel.runner.breakers
        .for('payments')
        .run(() => Promise.reject(new HttpError(503, 'down')))
        .catch(() => undefined);
      const parked = await keel.startAndRun('payer', {}, { id: 'wf_breaker' });
      expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'circuit-open' });
      return parked.id;
    });
    expect(calls).toBe(0);

    const result = await cli.run(['inspect', id, '--db', cli.db]);
    expect(result.out).toMatch(/ status +waiting \(waiting for circuit-open until 2026-01-01 12:00:(09|10)Z\)\n/);
    const lines = await timelineOf(id);
    expect(lineOf(lines, 'tool-call-deferred')).toMatch(
      /tool-call-deferred +pay +circuit-open +1 +parked until 12:00:(09|10)Z \(circuit-open\): the circuit breaker of service 'payments' is open; /,
    );
    expect(lineOf(lines, 'workflow-parked')).toMatch(/workflow-parked +circuit-open +waiting +parked until 12:00:(09|10)Z \(circuit-open\): Tool 'pay' cannot run now: /);
    const json = JSON.parse((await cli.run(['inspect', id, '--json', '--db', cli.db])).out);
    expect(json.journal.find((entry: { kind: string }) => entry.kind === 'tool-call-deferred')).toMatchObject({
      name: 'pay',
      status: 'circuit-open',
      attempt: 1,
      data: { service: 'payments', parked: true },
    });
  });

  it('says a refused call went back to the decider, with the why kept whole', async () => {
    const clock = new ManualClock(noon);
    const pay = defineTool({
      name: 'pay',
      description: 'Pays a claim.',
      input: z.object({ claimId: z.string() }),
      execute: (_args, ctx) => {
        if (ctx.attempt === 1 && ctx.step === 0) throw new ToolError('invalid-input', 'claim c1 has no payee; add one');
        return { paid: true };
      },
    });
    const id = await withKeel(payingAgent(pay), clock, async (keel) => (await keel.startAndRun('payer', {}, { id: 'wf_feedback' })).id);

    const lines = await timelineOf(id);
    expect(lineOf(lines, 'tool-call-failed')).toMatch(/tool-call-failed +pay +invalid-input +1 +\d+ ms +invalid-input, back to the decider: claim c1 has no payee; add one$/);
  });
});
