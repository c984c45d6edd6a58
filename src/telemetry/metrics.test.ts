// Keel's metrics scraped from the Prometheus endpoint `keel worker --metrics-port` serves, after
// workflows that succeed, fail, are refused a tool and are parked for a person.

import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAgent, type AgentDefinition } from '../agent/define-agent.js';
import { createKeel, type Keel } from '../agent/keel.js';
import { scriptedModel } from '../model/scripted-model.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { defineTool, ToolError } from '../index.js';
import { errorSource } from './metrics.js';
import { startMetricsEndpoint, type MetricsEndpoint } from './prometheus.js';

let directory: string;
let endpoint: MetricsEndpoint | undefined;
const keels: Keel[] = [];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-metrics-'));
});

afterEach(async () => {
  await Promise.all(keels.splice(0).map((keel) => keel.close()));
  await endpoint?.close();
  endpoint = undefined;
  rmSync(directory, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const lookup = defineTool({ name: 'lookup', description: 'Looks up.', input: z.object({ q: z.string() }), service: 'search', execute: ({ q }) => ({ q }) });
const charge = defineTool({
  name: 'charge',
  description: 'Charges.',
  input: z.object({ q: z.string() }),
  execute: () => {
    throw new ToolError('fatal', 'the card was declined');
  },
});

function definition(version: string): AgentDefinition {
  return {
    name: 'shop',
    version,
    tools: [lookup, charge],
    initial: 'looking',
    states: {
      looking: { tools: ['lookup', 'charge'], next: ['done'], on: { lookup: 'done' } },
      done: { final: true },
    },
  };
}

/** One metric family's sample lines from the exposition text. */
function samples(text: string, name: RegExp): string[] {
  return text.split('\n').filter((line) => !line.startsWith('#') && name.test(line));
}

function value(line: string): number {
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('the Prometheus endpoint', () => {
  it('serves the GenAI client metrics and Keel’s task, error, escalation, cost, latency, tool, breaker and waiting metrics', async () => {
    endpoint = await startMetricsEndpoint(await freePort());
    expect(endpoint.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const path = join(directory, 'keel.db');
    // Each workflow's input says what the model does: look up (success), charge (fails), or call a tool it may not.
    const model = scriptedModel((view) => {
      const plan = (view.input as { plan: string }).plan;
      if (plan === 'refused' && view.step === 0) return { tool: 'refund', input: {} };
      return { tool: plan === 'charge' ? 'charge' : 'lookup', input: { q: 'x' } };
    }, { modelId: 'gpt-4o-mini', provider: 'openai.chat' });
    const keel = createKeel({ store: openSqliteStore({ path }), agents: [defineAgent(definition('1'))], model, meterProvider: endpoint.meterProvider });
    keels.push(keel);
    const ids: string[] = [];
    for (const plan of ['lookup', 'charge', 'refused']) {
      const { id } = await keel.start('shop', { plan });
      await keel.run(id);
      ids.push(id);
    }
    await keel.feedback({ workflowId: ids[0]!, score: 5 });
    await keel.feedback({ workflowId: ids[1]!, score: 2, comment: 'it failed' });
    // A workflow of an older agent version this worker cannot migrate: parked for a person.
    const old = createKeel({ store: openSqliteStore({ path }), agents: [defineAgent(definition('0'))], model });
    keels.push(old);
    const { id: stale } = await old.start('shop', { plan: 'lookup' });
    expect((await keel.run(stale)).waitingFor).toBe('version-mismatch');

    const text = await (await fetch(endpoint.url)).text();

    const tokens = samples(text, /^gen_ai_client_token_usage.*_sum\{/);
    const input = tokens.find((line) => line.includes('gen_ai_token_type="input"'));
    const output = tokens.find((line) => line.includes('gen_ai_token_type="output"'));
    expect(input && value(input)).toBeGreaterThan(0);
    expect(output && value(output)).toBeGreaterThan(0);
    expect(input).toContain('gen_ai_provider_name="openai.chat"');
    const durations = samples(text, /^gen_ai_client_operation_duration.*_count\{/);
    // Four model calls: lookup, charge, the refused call and the lookup after it.
    expect(durations.map(value).reduce((a, b) => a + b, 0)).toBe(4);

    const completions = samples(text, /^keel_task_completions/);
    expect(value(completions.find((line) => line.includes('keel_task_outcome="success"'))!)).toBe(2);
    expect(value(completions.find((line) => line.includes('keel_task_outcome="failure"'))!)).toBe(1);

    const errors = samples(text, /^keel_errors/);
    expect(errors.some((line) => line.includes('error_type="fatal"') && line.includes('keel_error_source="system"'))).toBe(true);
    expect(errors.some((line) => line.includes('error_type="invalid-call"') && line.includes('keel_error_source="agent"'))).toBe(true);
    // The failed workflow's error is the tool's, counted once (not again as TOOL_FAILED).
    expect(errors).toHaveLength(2);
    expect(value(samples(text, /^keel_escalations/).find((line) => line.includes('keel_waiting_for="version-mismatch"'))!)).toBe(1);

    const taskCost = samples(text, /^keel_task_cost.*_sum\{/);
    expect(taskCost.map(value).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(samples(text, /^keel_model_cost/).map(value).reduce((a, b) => a + b, 0)).toBeCloseTo(taskCost.map(value).reduce((a, b) => a + b, 0), 12);
    expect(samples(text, /^keel_task_duration.*_count\{/).map(value).reduce((a, b) => a + b, 0)).toBe(3);
    expect(samples(text, /^keel_tool_duration.*_count\{/).some((line) => line.includes('gen_ai_tool_name="lookup"'))).toBe(true);
    expect(samples(text, /^keel_breaker_state\{/).find((line) => line.includes('keel_service="search"'))).toMatch(/ 0$/);
    const satisfaction = samples(text, /^keel_satisfaction.*_(sum|count)\{/);
    expect(satisfaction.filter((line) => line.includes('_sum{')).map(value)).toEqual([7]);
    expect(satisfaction.filter((line) => line.includes('_count{')).map(value)).toEqual([2]);
    expect(value(samples(text, /^keel_approvals_waiting\{/).find((line) => line.includes('keel_waiting_for="version-mismatch"'))!)).toBe(1);
  });
});

describe('errorSource', () => {
  it('tells agent, user and system errors apart', () => {
    expect(errorSource('not-allowed', 'action-refused')).toBe('agent');
    expect(errorSource('invalid-input', 'tool-call-failed')).toBe('agent');
    expect(errorSource('permission-denied', 'tool-call-failed')).toBe('user');
    expect(errorSource('transient', 'tool-call-failed')).toBe('system');
  });
});
