// Runs the keel command in-process for tests: main() with captured output, in a temporary
// folder that holds the database, with the environment variables that would change what the
// CLI does (a real model, another database, a payments service) cleared for every test.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, vi } from 'vitest';
import { memoryIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';

export interface KeelRun {
  code: number;
  out: string;
  err: string;
}

export interface RunOptions {
  stdin?: string;
  isTTY?: boolean;
  rows?: number;
}

export interface CliWorkspace {
  /** The temporary folder: the working folder of every run. */
  readonly dir: string;
  /** A database path inside it. */
  readonly db: string;
  run(args: string[], options?: RunOptions): Promise<KeelRun>;
}

/** Call at the top of a test file: a fresh folder per test, removed afterwards, and a clean environment. */
export function useCliWorkspace(): CliWorkspace {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-cli-'));
    for (const name of ['KEEL_MODEL', 'KEEL_DB', 'KEEL_LEASE_MS', 'KEEL_MAX_RECOVERIES', 'KEEL_DURABILITY', 'KEEL_DEBUG', 'KEEL_PERMISSIONS', 'KEEL_POLICIES', 'EXPENSE_PAYMENTS_URL']) {
      vi.stubEnv(name, undefined);
    }
    vi.stubEnv('KEEL_LOG_LEVEL', 'silent');
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    get db() {
      return join(dir, 'keel.db');
    },
    run: (args, options = {}) => runKeel(args, { ...options, cwd: dir }),
  };
}

export async function runKeel(args: string[], options: RunOptions & { cwd: string }): Promise<KeelRun> {
  const io = memoryIo(options);
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** Keel's source entry, for agent modules written by tests (vitest compiles it on import). */
export const keelSourceUrl = new URL('../../src/index.ts', import.meta.url).href;

/**
 * An agent module that decides in code: 'quote' stores a quote in the context, then 'charge'
 * charges it. The charge fails fatally unless CARD_SERVICE_UP is set when it runs, so a test can
 * fail a workflow, "fix" the service, and resume it.
 */
export function chargerAgentSource(): string {
  return `
import { z } from 'zod';
import { defineAgent, defineTool, ToolError } from '${keelSourceUrl}';

const quote = defineTool({
  name: 'quote',
  description: 'Quotes the amount to charge.',
  input: z.object({ amount: z.number() }),
  execute: async ({ amount }, context) => {
    context.set('quote', { amount, currency: 'EUR' });
    return { amount };
  },
});

const charge = defineTool({
  name: 'charge',
  description: 'Charges the quoted amount.',
  input: z.object({ amount: z.number() }),
  sideEffect: true,
  execute: async ({ amount }) => {
    if (!process.env.CARD_SERVICE_UP) throw new ToolError('fatal', 'the card service refused the charge: service closed');
    return { charged: amount };
  },
});

export const agent = defineAgent({
  name: 'charger',
  input: z.object({ amount: z.number() }),
  tools: [quote, charge],
  initial: 'quoting',
  states: {
    quoting: { tools: ['quote'], next: ['charging'], on: { quote: 'charging' } },
    charging: { tools: ['charge'], next: ['charged'], on: { charge: 'charged' } },
    charged: { final: true },
  },
  decide: (view) =>
    view.state === 'quoting'
      ? { tool: 'quote', args: { amount: view.input.amount }, reasoning: 'Quote first.', confidence: 0.9 }
      : { tool: 'charge', args: { amount: view.input.amount }, reasoning: 'Charge the quote.', confidence: 0.8 },
});
`;
}
