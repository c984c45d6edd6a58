// No secret in anything Keel writes or prints (docs/security.md). A workflow handles three planted
// secrets the ways real ones leak: a credential token from a service's credential provider (a tool
// echoes it in its result and in error messages), an API key given to createKeel({ secrets }) (a
// tool returns it, the decider copies it into its reasoning and into a denied call's arguments,
// and a tool failure's message carries it), and a configured sensitive field (`taxId`) in results
// and arguments. Then every byte Keel stored (every table, read row by row, and the raw database
// and WAL files), every log line, and the output of `keel inspect`, `keel audit`, `keel audit
// export` and `keel list` is searched for them.

import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { z } from 'zod';
import { createCredentialProvider, createKeel, defineAgent, defineTool, openSqliteStore, ToolError, type DecisionView } from '../src/index.js';
import { addGrant } from '../src/security/grants.js';
import { runKeel } from './support/cli-harness.js';

const apiKey = 'sk-live-PLANTED-api-key-7f3a9c2e41';
const taxId = 'TAX-PLANTED-99-887766';
const issued: string[] = [];

let directory: string;
beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-secrets-'));
  issued.length = 0;
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

function secretAgent() {
  const vault = createCredentialProvider({
    service: 'vault',
    fetchToken: async () => {
      const token = `tok_PLANTED_credential_${issued.length + 1}_b81f0c`;
      issued.push(token);
      return { token };
    },
  });
  let rejectedOnce = false;
  const fetchRecord = defineTool({
    name: 'fetch_record',
    description: 'Reads a record from the vault service.',
    input: z.object({ id: z.string() }),
    service: 'vault',
    permission: 'vault:read',
    async execute(_args, context) {
      const token = await context.credentials();
      if (!rejectedOnce) {
        rejectedOnce = true;
        vault.invalidate(token);
        throw new ToolError('auth-expired', `vault refused token ${token} for key ${apiKey}`);
      }
      return { echo: `called with key=${apiKey} and token=${token}`, taxId, profile: { apiKey, authorization: `Bearer ${token}` }, note: 'record 7' };
    },
  });
  const exportRecord = defineTool({
    name: 'export_record',
    description: 'Exports a record elsewhere.',
    input: z.object({ payload: z.string(), taxId: z.string() }),
    permission: 'vault:export',
    execute: () => ({ exported: true }),
  });
  const submitRecord = defineTool({
    name: 'submit_record',
    description: 'Writes a record to the vault service.',
    input: z.object({ body: z.string(), taxId: z.string(), note: z.string() }),
    sideEffect: true,
    service: 'vault',
    permission: 'vault:write',
    async execute(args, context) {
      const token = await context.credentials();
      throw new ToolError('fatal', `vault rejected ${args.body} (token ${token}, key ${apiKey}, Authorization: Bearer ${token})`, { details: { token, apiKey } });
    },
  });
  const decide = (view: DecisionView) => {
    const tried = new Set(view.history.map((observation) => observation.tool));
    const fetched = view.history.find((observation) => observation.type === 'tool-result');
    const copied = fetched ? JSON.stringify(fetched.result) : '';
    if (!tried.has('fetch_record')) return { tool: 'fetch_record', args: { id: 'rec-7' } };
    if (!tried.has('export_record')) return { tool: 'export_record', args: { payload: `key ${apiKey}`, taxId }, reasoning: `The record said: ${copied}` };
    const note = (fetched?.result as { note?: string } | undefined)?.note ?? '';
    return { tool: 'submit_record', args: { body: `record with key ${apiKey}`, taxId, note }, reasoning: `Copying ${copied}` };
  };
  return defineAgent({
    name: 'vault-clerk',
    tools: [fetchRecord, exportRecord, submitRecord],
    services: { vault: { credentials: vault, breaker: false } },
    permissions: ['vault:read', 'vault:write', 'vault:export'],
    decide,
    initial: 'working',
    states: { working: { tools: ['fetch_record', 'export_record', 'submit_record'], next: ['done'], on: { submit_record: 'done' } }, done: { final: true } },
  });
}

it('keeps planted secrets out of the store, the audit, the journal, the logs and the CLI output', async () => {
  const path = join(directory, 'keel.db');
  const store = openSqliteStore({ path });
  let logs = '';
  const logger = pino({ level: 'debug' }, { write: (line: string) => void (logs += line) });
  const keel = createKeel({ store, agents: [secretAgent()], secrets: () => [apiKey], sensitiveKeys: ['taxId'], logger, security: {} });
  for (const permission of ['vault:read', 'vault:write']) await addGrant(store, { principalId: 'carol', permission, by: 'ops' }, Date.now());

  // submit_record's note comes from fetch_record's output only: the call waits for a person's
  // approval first, and the request (arguments, reasoning) is stored too.
  const parked = await keel.startAndRun('vault-clerk', {}, { principal: { id: 'carol' } });
  expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'approval' });
  const [request] = await keel.approvals({ status: 'pending' });
  await keel.approve(request!.id, { by: 'ops' });
  const workflow = await keel.run(parked.id);
  await keel.close();

  // The secrets were really handled: tokens issued and refreshed, the tool failed, the denial happened.
  expect(issued.length).toBeGreaterThanOrEqual(2);
  expect(workflow).toMatchObject({ status: 'failed', failure: { code: 'TOOL_FAILED', tool: 'submit_record' } });
  const planted = [apiKey, taxId, ...issued];

  const cli = await Promise.all(
    [['inspect', workflow.id, '--json'], ['inspect', workflow.id], ['audit', '--json'], ['audit', 'export'], ['list', '--json']].map((args) => runKeel([...args, '--db', path], { cwd: directory })),
  );
  for (const run of cli) expect(run.code).toBe(0);

  const stored = everyStoredValue(path);
  const rawFiles = [path, `${path}-wal`].filter(existsSync).map((file) => readFileSync(file).toString('latin1'));
  const printed = cli.map((run) => run.out + run.err);
  for (const [where, texts] of Object.entries({ stored, rawFiles, printed, logs: [logs] })) {
    for (const secret of planted) {
      expect(
        texts.filter((text) => text.includes(secret)).map((text) => text.slice(Math.max(0, text.indexOf(secret) - 80), text.indexOf(secret) + secret.length + 20)),
        `${where} holds ${secret}`,
      ).toEqual([]);
    }
  }
  // What carried them is still recorded, redacted: the result, the reasoning, the denied call, the failure.
  const journal = stored.filter((text) => text.includes('[REDACTED]'));
  expect(journal.some((text) => text.includes('called with key=[REDACTED] and token=[REDACTED]'))).toBe(true);
  expect(journal.some((text) => text.includes('"taxId":"[REDACTED]"'))).toBe(true);
  expect(stored.some((text) => text.includes('permission.decided') || text.includes('permission-decided'))).toBe(true);
  expect(logs).toContain('[REDACTED]');
});

/** Every value of every row of every table, as text. */
function everyStoredValue(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((table) => table.name);
    expect(tables).toEqual(expect.arrayContaining(['workflows', 'journal', 'context', 'audit', 'grants', 'principals']));
    return tables.flatMap((table) => (db.prepare(`SELECT * FROM "${table}"`).all() as Record<string, unknown>[]).flatMap((row) => Object.values(row).map((value) => (Buffer.isBuffer(value) ? value.toString('latin1') : String(value)))));
  } finally {
    db.close();
  }
}
