// Several processes writing to one SQLite file extend one audit chain: each reads the chain's
// head inside its own write transaction, so no two writers ever seal an entry on the same head.
// Three real node processes (the compiled store, as `keel worker` processes use it) append
// entries and create workflows at the same time; the chain must come out whole.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/verify.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const compiledStore = join(root, 'dist', 'src', 'store', 'sqlite', 'sqlite-store.js');
const writers = 3;
const rounds = 150;

let directory: string;

beforeAll(() => {
  if (!existsSync(compiledStore)) {
    throw new Error(`This test runs the compiled store in child processes, and ${compiledStore} is missing. Run \`npm run build\` first (npm test does).`);
  }
  directory = mkdtempSync(join(tmpdir(), 'keel-audit-writers-'));
});

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

const writerSource = `
import { openSqliteStore } from ${JSON.stringify(pathToFileURL(compiledStore).href)};
const [path, name, rounds] = process.argv.slice(2);
const store = openSqliteStore({ path, busyTimeoutMs: 30000 });
for (let round = 0; round < Number(rounds); round++) {
  await store.appendAudit([
    { kind: 'grant.added', actor: name, subject: 'payments:write', data: { round } },
    { kind: 'grant.revoked', actor: name, subject: 'payments:write', data: { round } },
  ]);
  const id = 'wf_' + name + '_' + round;
  await store.createWorkflow(
    { id, agent: 'a', agentVersion: '1#x', agentModule: null, principal: { id: name }, input: {}, state: 's' },
    [],
    [{ kind: 'workflow.started', actor: name, workflowId: id, step: 0 }],
  );
}
await store.close();
`;

function runWriter(script: string, path: string, name: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [script, path, name, String(rounds)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolvePromise) => child.on('exit', (code) => resolvePromise({ code, stderr })));
}

describe('the audit chain under concurrent writers', () => {
  it('stays one unbroken chain when three processes write to the file at once', async () => {
    const path = join(directory, 'shared.db');
    await openSqliteStore({ path }).close();
    const script = join(directory, 'writer.mjs');
    writeFileSync(script, writerSource);

    const results = await Promise.all(Array.from({ length: writers }, (_, index) => runWriter(script, path, `writer-${index}`)));
    expect(results).toEqual(Array.from({ length: writers }, () => ({ code: 0, stderr: '' })));

    const store = openSqliteStore({ path });
    try {
      const verification = await verifyAuditChain(store.iterateAudit());
      expect(verification).toMatchObject({ ok: true, count: writers * rounds * 3 });
      for (let index = 0; index < writers; index++) {
        expect(await store.readAudit({ actor: `writer-${index}`, limit: 10_000 })).toHaveLength(rounds * 3);
      }
    } finally {
      await store.close();
    }
  });
});
