// Tamper tests of the audit log, end to end: a few workflows run (a tiny agent that decides in
// code), then the SQLite file is changed directly, as someone with access to the file could:
// one byte of each field of an entry, an entry deleted, two swapped, one forged and inserted.
// Each case works on a fresh copy of the database, and `keel audit verify` (the real command,
// in-process) must exit non-zero naming the entry, while the untouched log verifies with exit
// 0. Exports must verify on their own, and a changed or cut export must not.

import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sealAuditEntry } from '../src/audit/chain.js';
import { memoryIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { createKeel, defineAgent, defineTool, openSqliteStore, ToolError } from '../src/index.js';
import { ManualClock } from '../src/util/clock.js';

const startedAt = Date.UTC(2026, 0, 5, 9);
const hour = 3_600_000;

let directory: string;
/** The database the workflows ran in; every test works on a copy. */
let original: string;
let copies = 0;
/** The ids of the workflows run, in order. */
let workflows: string[];

const quote = defineTool({
  name: 'quote',
  description: 'Quotes the amount to charge.',
  input: z.object({ amount: z.number() }),
  execute: async ({ amount }, context) => {
    context.set('quote', { amount });
    return { amount, currency: 'EUR' };
  },
});

const charge = defineTool({
  name: 'charge',
  description: 'Charges the quoted amount.',
  input: z.object({ amount: z.number() }),
  sideEffect: true,
  execute: async ({ amount }) => {
    if (amount > 1000) throw new ToolError('fatal', `the card service refused a charge of ${amount}`);
    return { charged: amount };
  },
});

const charger = defineAgent({
  name: 'charger',
  input: z.object({ amount: z.number() }),
  tools: [quote, charge],
  initial: 'quoting',
  states: {
    quoting: { tools: ['quote'], next: ['charging'], on: { quote: 'charging' } },
    charging: { tools: ['charge'], next: ['charged'], on: { charge: 'charged' } },
    charged: { final: true },
  },
  decide: (view) => ({
    tool: view.state === 'quoting' ? 'quote' : 'charge',
    args: { amount: (view.input as { amount: number }).amount },
    reasoning: view.state === 'quoting' ? 'Quote first.' : 'Charge the quote.',
    confidence: 0.9,
  }),
});

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'keel-audit-tamper-'));
  original = join(directory, 'keel.db');
  const clock = new ManualClock(startedAt);
  const keel = createKeel({ store: openSqliteStore({ path: original, clock }), clock, agents: [charger], workerId: 'tamper-test' });
  workflows = [];
  try {
    for (const [principal, amount] of [['alice', 120], ['bob', 5000], ['alice', 40]] as const) {
      const workflow = await keel.startAndRun('charger', { amount }, { principal: { id: principal } });
      workflows.push(workflow.id);
      clock.advance(hour);
    }
    const cancelled = await keel.start('charger', { amount: 1 }, { principal: { id: 'carol' } });
    await keel.cancel(cancelled.id, 'duplicate request');
    workflows.push(cancelled.id);
  } finally {
    await keel.close();
  }
});

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

/** A fresh copy of the database, changed by `tamper` through a plain SQLite connection. */
function tamperedCopy(tamper: (database: Database.Database) => void): string {
  const path = join(directory, `copy-${++copies}.db`);
  for (const suffix of ['', '-wal', '-shm']) if (existsSync(original + suffix)) copyFileSync(original + suffix, path + suffix);
  const database = new Database(path);
  try {
    tamper(database);
  } finally {
    database.close();
  }
  return path;
}

async function keel(args: string[]) {
  const io = memoryIo({ cwd: directory });
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

type AuditRow = { seq: number; at: number; kind: string; actor: string; workflow_id: string | null; step: number | null; subject: string | null; outcome: string | null; data: string; prev_hash: string; hash: string };

function row(database: Database.Database, seq: number): AuditRow {
  return database.prepare('SELECT * FROM audit WHERE seq = ?').get(seq) as AuditRow;
}

/** The first tool call of the log: an entry where every field has a value. */
function targetEntry(): AuditRow {
  const database = new Database(original, { readonly: true });
  try {
    return database.prepare("SELECT * FROM audit WHERE kind = 'tool.called' ORDER BY seq LIMIT 1").get() as AuditRow;
  } finally {
    database.close();
  }
}

/** One byte changed: a text gets one character replaced; an integer gets one bit of its second byte flipped. */
function changeOneByte(value: string | number): string | number {
  if (typeof value === 'number') return value ^ 0x100;
  const index = [...value].findIndex((character, position) => position >= value.length / 2 && /[0-9a-z]/i.test(character));
  const replaced = value[index] === 'x' ? 'y' : 'x';
  return value.slice(0, index) + replaced + value.slice(index + 1);
}

describe('keel audit verify', () => {
  it('verifies the intact log with exit 0 and prints its head', async () => {
    const result = await keel(['audit', 'verify', '--db', original]);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^Intact: the audit log in .* holds \d+ entries \(1-\d+\), every hash and link checks out\.\nHead: entry \d+, hash [0-9a-f]{64}\./);
    const json = JSON.parse((await keel(['audit', 'verify', '--json', '--db', original])).out);
    expect(json).toMatchObject({ ok: true, last: { seq: json.count } });
    expect(json.count).toBeGreaterThan(15);
  });

  for (const field of ['seq', 'at', 'kind', 'actor', 'workflow_id', 'step', 'subject', 'outcome', 'data', 'prev_hash', 'hash'] as const) {
    it(`finds one byte changed in the ${field} of an entry, names it and exits 1`, async () => {
      const target = targetEntry();
      const path = tamperedCopy((database) => {
        const changed = changeOneByte(target[field] as string | number);
        expect(changed).not.toEqual(target[field]);
        database.prepare(`UPDATE audit SET ${field} = ? WHERE seq = ?`).run(changed, target.seq);
      });
      const result = await keel(['audit', 'verify', '--db', path]);
      expect(result.code).toBe(1);
      if (field === 'seq') {
        // The entry has left its place: the log now lacks an entry with its number.
        expect(result.out).toContain(`seq gap: entry ${target.seq} is missing before it`);
      } else {
        expect(result.out).toContain(`Broken: the audit log in ${path} fails at entry ${target.seq} (`);
        expect(result.out).toContain(field === 'prev_hash' ? ': broken link:' : ': hash mismatch:');
        // The entry is named as it now reads (a changed kind, workflow id or step shows changed).
        if (field !== 'kind' && field !== 'workflow_id' && field !== 'step') expect(result.out).toContain(`(tool.called, workflow ${workflows[0]}, step ${target.step})`);
      }
      expect(result.out).toContain(`Entries 1-${target.seq - 1} before it verified.`);
      expect(result.out).toContain('What to do: treat entry');
    });
  }

  it('finds a deleted entry, naming the missing seq', async () => {
    const path = tamperedCopy((database) => database.prepare('DELETE FROM audit WHERE seq = 5').run());
    const result = await keel(['audit', 'verify', '--db', path]);
    expect(result.code).toBe(1);
    expect(result.out).toContain('fails at entry 6');
    expect(result.out).toContain('seq gap: entry 5 is missing before it');
  });

  it('finds two entries swapped', async () => {
    const path = tamperedCopy((database) => {
      const [fifth, sixth] = [row(database, 5), row(database, 6)];
      const put = database.prepare('UPDATE audit SET at = @at, kind = @kind, actor = @actor, workflow_id = @workflow_id, step = @step, subject = @subject, outcome = @outcome, data = @data, prev_hash = @prev_hash, hash = @hash WHERE seq = @seq');
      put.run({ ...sixth, seq: 5 });
      put.run({ ...fifth, seq: 6 });
    });
    const result = await keel(['audit', 'verify', '--json', '--db', path]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.out)).toMatchObject({ ok: false, count: 4, firstBad: { seq: 5, reason: 'reordered' } });
  });

  it('finds an entry forged with a correct hash and inserted, the entries after it renumbered', async () => {
    const path = tamperedCopy((database) => {
      const fourth = row(database, 4);
      database.exec('UPDATE audit SET seq = -seq WHERE seq >= 5; UPDATE audit SET seq = 1 - seq WHERE seq < 0');
      const forged = sealAuditEntry(
        { kind: 'tool.called', actor: 'alice', workflowId: fourth.workflow_id, step: 1, subject: 'charge', outcome: 'ok', data: { args: { amount: 120 } } },
        5,
        fourth.at,
        fourth.hash,
      );
      database
        .prepare('INSERT INTO audit (seq, at, kind, actor, workflow_id, step, subject, outcome, data, prev_hash, hash) VALUES (@seq, @at, @kind, @actor, @workflowId, @step, @subject, @outcome, @dataJson, @prevHash, @hash)')
        .run(forged);
    });
    const result = await keel(['audit', 'verify', '--db', path]);
    expect(result.code).toBe(1);
    expect(result.out).toContain('fails at entry 5 (tool.called');
    expect(result.out).toContain(': inserted: the entry after it (6) links to the entry before it: entry 5 was added to the chain');
  });

  it('with --anchor, finds entries cut off the end of the log', async () => {
    const head = JSON.parse((await keel(['audit', 'verify', '--json', '--db', original])).out).last;
    const path = tamperedCopy((database) => database.prepare('DELETE FROM audit WHERE seq >= ?').run(head.seq - 1));
    expect((await keel(['audit', 'verify', '--db', path])).code).toBe(0);
    const anchored = await keel(['audit', 'verify', '--anchor', `${head.seq}:${head.hash}`, '--db', path]);
    expect(anchored.code).toBe(1);
    expect(anchored.out).toContain(`fails at entry ${head.seq}: truncated: the log ends at entry ${head.seq - 2}`);
    expect((await keel(['audit', 'verify', '--anchor', 'nonsense', '--db', path])).err).toContain('Expected <seq>:<hash>');
  });
});

describe('keel audit export and verify-export', () => {
  it('round-trips: an export of the whole log verifies on its own', async () => {
    const exported = await keel(['audit', 'export', '--out', 'all.jsonl', '--db', original]);
    expect(exported.code).toBe(0);
    expect(exported.out).toMatch(/^Exported \d+ entries \(1-\d+\) to .*all\.jsonl\./);
    const lines = readFileSync(join(directory, 'all.jsonl'), 'utf8').trim().split('\n');
    const header = JSON.parse(lines[0]!);
    expect(header).toMatchObject({ format: 'keel-audit-v1', fromSeq: 1, count: lines.length - 1, prevHash: '0'.repeat(64), since: null });
    expect(Object.keys(JSON.parse(lines[1]!))).toEqual(['seq', 'at', 'kind', 'actor', 'workflowId', 'step', 'subject', 'outcome', 'data', 'prevHash', 'hash']);

    const verified = await keel(['audit', 'verify-export', 'all.jsonl']);
    expect(verified.code).toBe(0);
    expect(verified.out).toContain(`Intact: the export ${join(directory, 'all.jsonl')} holds ${header.count} entries (1-${header.toSeq})`);

    const toStdout = await keel(['audit', 'export', '--db', original]);
    expect(toStdout.out.split('\n').slice(1)).toEqual(lines.slice(1).concat(''));
  });

  it('exports from a time: the part starts mid-chain and still verifies on its own', async () => {
    const since = new Date(startedAt + hour).toISOString();
    const exported = await keel(['audit', 'export', '--since', since, '--out', 'part.jsonl', '--db', original]);
    expect(exported.code).toBe(0);
    const lines = readFileSync(join(directory, 'part.jsonl'), 'utf8').trim().split('\n');
    const [header, first] = [JSON.parse(lines[0]!), JSON.parse(lines[1]!)];
    expect(header.fromSeq).toBeGreaterThan(1);
    expect(first).toMatchObject({ seq: header.fromSeq, workflowId: workflows[1], kind: 'workflow.started', prevHash: header.prevHash });
    expect(first.at).toBeGreaterThanOrEqual(startedAt + hour);
    expect((await keel(['audit', 'verify-export', 'part.jsonl'])).code).toBe(0);
  });

  it('finds a changed byte, a missing line and a cut-off end in an export', async () => {
    await keel(['audit', 'export', '--out', 'all.jsonl', '--db', original]);
    const lines = readFileSync(join(directory, 'all.jsonl'), 'utf8').trim().split('\n');
    const write = (name: string, content: string[]) => writeFileSync(join(directory, name), `${content.join('\n')}\n`);

    const changed = [...lines];
    changed[4] = changed[4]!.replace('"actor":"alice"', '"actor":"alicf"');
    expect(changed[4]).not.toBe(lines[4]);
    write('changed.jsonl', changed);
    const changedResult = await keel(['audit', 'verify-export', 'changed.jsonl', '--json']);
    expect(changedResult.code).toBe(1);
    expect(JSON.parse(changedResult.out)).toMatchObject({ ok: false, count: 3, firstBad: { seq: 4, reason: 'hash mismatch' } });

    write('missing.jsonl', [...lines.slice(0, 6), ...lines.slice(7)]);
    expect(JSON.parse((await keel(['audit', 'verify-export', 'missing.jsonl', '--json'])).out).firstBad).toMatchObject({ seq: 7, reason: 'seq gap' });

    write('cut.jsonl', lines.slice(0, -2));
    const cut = await keel(['audit', 'verify-export', 'cut.jsonl']);
    expect(cut.code).toBe(1);
    expect(cut.out).toContain(`truncated: the log ends at entry ${lines.length - 3}`);

    write('garbage.jsonl', [lines[0]!, lines[1]!, '{"seq": 2, "oops": true']);
    expect(JSON.parse((await keel(['audit', 'verify-export', 'garbage.jsonl', '--json'])).out).firstBad).toMatchObject({ seq: 2, reason: 'unreadable' });
  });

  it('exports nothing, and a file that still verifies, when nothing was written since the time', async () => {
    const exported = await keel(['audit', 'export', '--since', new Date(Date.now() + hour).toISOString(), '--out', 'empty.jsonl', '--db', original]);
    expect(exported.out).toContain('Exported no entries to');
    const [header] = readFileSync(join(directory, 'empty.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(header).toMatchObject({ count: 0, fromSeq: header.toSeq + 1, prevHash: header.lastHash });
    const verified = await keel(['audit', 'verify-export', 'empty.jsonl']);
    expect(verified).toMatchObject({ code: 0, out: `The export ${join(directory, 'empty.jsonl')} holds no audit entries: nothing to verify.\n` });
  });

  it('can be verified without Keel, by the Node and Python scripts of docs/audit.md', async () => {
    await keel(['audit', 'export', '--out', 'all.jsonl', '--db', original]);
    const lines = readFileSync(join(directory, 'all.jsonl'), 'utf8').trim().split('\n');
    writeFileSync(join(directory, 'changed.jsonl'), `${[...lines.slice(0, 3), lines[3]!.replace('"step":', '"step":1'), ...lines.slice(4)].join('\n')}\n`);
    const doc = readFileSync(new URL('../docs/audit.md', import.meta.url), 'utf8');
    const scripts = [
      { file: 'verify.mjs', run: process.execPath, code: /```js\n([\s\S]*?)```/.exec(doc)![1]! },
      { file: 'verify.py', run: 'python3', code: /```python\n([\s\S]*?)```/.exec(doc)![1]! },
    ];
    for (const script of scripts) {
      writeFileSync(join(directory, script.file), script.code);
      const run = (file: string) => execFileSync(script.run, [script.file, file], { cwd: directory, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(run('all.jsonl')).toMatch(new RegExp(`^ok: entries 1-${lines.length - 1}, last hash [0-9a-f]{64}\n$`));
      expect(() => run('changed.jsonl')).toThrow(/entry 3 is bad/);
    }
  });

  it('refuses to export a broken log and leaves no file behind', async () => {
    const path = tamperedCopy((database) => database.prepare("UPDATE audit SET actor = 'mallory' WHERE seq = 3").run());
    const result = await keel(['audit', 'export', '--out', 'broken.jsonl', '--db', path]);
    expect(result.code).toBe(1);
    expect(result.err).toContain('the export stopped: Broken: the audit log');
    expect(result.err).toContain('fails at entry 3');
    expect(existsSync(join(directory, 'broken.jsonl'))).toBe(false);
  });

  it('says what is wrong with a missing export file', async () => {
    const result = await keel(['audit', 'verify-export', 'nowhere.jsonl']);
    expect(result.code).toBe(2);
    expect(result.err).toContain(`There is no export file at ${join(directory, 'nowhere.jsonl')}`);
  });
});

describe('keel audit (query)', () => {
  it("shows a workflow's decisions, tool calls and lifecycle, and filters by user", async () => {
    const entries = JSON.parse((await keel(['audit', '--workflow', workflows[0]!, '--json', '--db', original])).out);
    expect(entries.map((entry: { kind: string; subject: string | null }) => `${entry.kind} ${entry.subject ?? ''}`.trim())).toEqual([
      'workflow.started charger',
      'decision.made quote',
      'tool.called quote',
      'state.changed charging',
      'decision.made charge',
      'tool.called charge',
      'state.changed charged',
      'workflow.completed charged',
    ]);
    expect(entries[1]).toMatchObject({ actor: 'alice', step: 0, data: { reasoning: 'Quote first.', confidence: 0.9, args: { amount: 120 }, source: 'code' } });
    expect(entries[2].data.result).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: 31 });

    const failed = JSON.parse((await keel(['audit', '--workflow', workflows[1]!, '--json', '--db', original])).out);
    expect(failed.map((entry: { kind: string; outcome: string }) => `${entry.kind}:${entry.outcome}`).slice(-2)).toEqual(['tool.failed:fatal', 'workflow.failed:failed']);

    const byCarol = await keel(['audit', '--user', 'operator', '--db', original]);
    expect(byCarol.out).toMatch(/^SEQ +TIME +ACTOR +KIND +WORKFLOW +STEP +SUBJECT +OUTCOME\n/);
    expect(byCarol.out).toContain(`operator  workflow.cancelled  ${workflows[3]}`);
    expect((await keel(['audit', '--user', 'nobody', '--db', original])).out).toBe(`No audit entries by nobody in ${original}.\n`);
  });
});
