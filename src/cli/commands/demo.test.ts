// keel demo, in-process: a small batch of sample claims through the expense-approval example,
// scored against the samples, with plain progress lines off a terminal and lines redrawn in
// place on one; --chaos riding out injected faults with counts that match the journal; and the
// demo leaving a database that already holds workflows alone.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sampleClaims } from '../../../examples/expense-approval/claims.js';
import { useCliWorkspace } from '../../../test/support/cli-harness.js';

const cli = useCliWorkspace();

interface ListedWorkflow {
  id: string;
  status: string;
  outcome: string | null;
}

async function listed(db: string): Promise<ListedWorkflow[]> {
  return JSON.parse((await cli.run(['list', '--json', '--db', db])).out);
}

/** A chaos summary line such as "retries  5: transient 3, auth-expired 2" (or "none") as counts by name. */
function countsOn(out: string, label: string): Record<string, number> {
  const value = new RegExp(`\\n  ${label} +(.+)\\n`).exec(out)?.[1];
  expect(value, `the ${label} line`).toBeDefined();
  if (value === 'none') return {};
  const [, total, parts] = /^(\d+): (.+)$/.exec(value!)!;
  const counts = Object.fromEntries(parts!.split(', ').map((part) => [part.split(' ')[0]!, Number(part.split(' ')[1])]));
  expect(Object.values(counts).reduce((sum, count) => sum + count, 0)).toBe(Number(total));
  return counts;
}

describe('keel demo', () => {
  it("runs on its own .keel/demo.db when no database is named, so its grants never touch the user's .keel/keel.db", async () => {
    const result = await cli.run(['demo', '--claims', '4']);
    expect(result.code, result.out + result.err).toBe(0);
    expect(readdirSync(join(cli.dir, '.keel'))).toContain('demo.db');
    expect(readdirSync(join(cli.dir, '.keel'))).not.toContain('keel.db');
    expect(result.out).toContain('keel list --db .keel/demo.db');
    expect(await listed(join(cli.dir, '.keel', 'demo.db'))).toHaveLength(4);
  });

  it('runs the sample claims to the outcomes the samples expect', async () => {
    const result = await cli.run(['demo', '--claims', '8', '--db', cli.db]);
    expect(result.code, result.out + result.err).toBe(0);
    expect(result.out).toContain("Keel demo: 8 expense claims through agent 'expense-approval', 4 at a time");
    expect(result.out).toMatch(/ model +scripted \(set KEEL_MODEL to use a real model\)/);
    expect(result.out).toContain('All 8 claims ended as expected.');
    expect(result.out).not.toContain('MISMATCH');
    // Without --chaos, no faults and no chaos summary.
    expect(result.out).not.toMatch(/chaos/i);

    const samples = sampleClaims(8, 1);
    const held = samples.filter((sample) => sample.needsApproval).length;
    const paid = samples.filter((sample) => sample.expected === 'paid' && !sample.needsApproval).length;
    // The batch must leave some claims waiting, or the approval part of the demo is not shown.
    expect(held).toBeGreaterThan(0);
    expect(result.out).toMatch(new RegExp(` workflows +8: ${8 - held} completed, 0 failed, ${held} waiting`));
    expect(result.out).toMatch(new RegExp(` outcomes +${paid} paid, ${8 - paid - held} rejected, ${held} waiting for approval`));
    expect(result.out).toMatch(new RegExp(` payments +${paid} made \\(payments service ledger\\), exactly one per paid claim`));

    // Off a terminal: one plain line per finished workflow, no cursor movement.
    expect(result.out).not.toContain('\u001b[');
    const progress = result.out.split('\n').filter((line) => /^\[[ \d]\/8\] /.test(line));
    expect(progress).toHaveLength(8);
    for (const sample of samples) {
      const ended = sample.needsApproval ? 'waiting' : sample.expected;
      expect(progress).toContainEqual(expect.stringMatching(new RegExp(`${sample.input.claimId} +${sample.kind} +${ended} +\\d+ steps +as expected$`)));
    }

    // Outcomes as stored, claim by claim (the workflow ids follow the batch order).
    const workflows = await listed(cli.db);
    expect(workflows.map((workflow) => workflow.outcome ?? workflow.status)).toEqual(samples.map((sample) => (sample.needsApproval ? 'waiting' : sample.expected)));
    const someId = workflows[0]!.id;
    expect(result.out).toContain(`keel list --db ${cli.db}\n`);
    expect(result.out).toContain(`keel inspect ${someId} --db ${cli.db}\n`);
    expect(result.out).toContain(`keel run expense-approval --input `);
  });

  it('leaves the held payments waiting and prints how to decide them; the suggested approver may, and the claim is then paid once', async () => {
    const result = await cli.run(['demo', '--claims', '8', '--db', cli.db]);
    expect(result.code, result.out + result.err).toBe(0);
    const held = sampleClaims(8, 1).filter((sample) => sample.needsApproval);
    const listedRequests = JSON.parse((await cli.run(['approvals', '--json', '--db', cli.db])).out) as { id: string; workflowId: string; approvers: string; requester: string }[];
    expect(listedRequests).toHaveLength(held.length);
    expect(listedRequests.every((request) => request.approvers === 'finance' && request.requester === 'keel-demo')).toBe(true);
    const [first] = listedRequests;
    expect(result.out).toContain(`${held.length === 1 ? '1 claim waits' : `${held.length} claims wait`} for the finance group's approval; fiona@finance (role finance) may decide`);
    expect(result.out).toContain(`  keel approvals --db ${cli.db}\n`);
    expect(result.out).toContain(`  keel approve ${first!.id} --by fiona@finance --db ${cli.db}\n`);
    expect(result.out).toContain(`  keel resume ${first!.workflowId} --db ${cli.db}\n`);
    expect(result.out).toMatch(new RegExp(`  keel reject apr_\\w+ --by fiona@finance --reason 'not pre-approved' --db ${cli.db}\n`));

    // The printed commands work as printed: fiona is in finance, and the claim is paid on resume.
    const approved = await cli.run(['approve', first!.id, '--by', 'fiona@finance', '--db', cli.db]);
    expect(approved.code, approved.err).toBe(0);
    const resumed = await cli.run(['resume', first!.workflowId, '--db', cli.db]);
    expect(resumed.code, resumed.err).toBe(0);
    const inspection = JSON.parse((await cli.run(['inspect', first!.workflowId, '--json', '--db', cli.db])).out);
    expect(inspection).toMatchObject({ id: first!.workflowId, status: 'completed', outcome: 'paid' });
  });

  it('rides out injected faults with --chaos, counts what Keel did from the journal, and still pays every claim exactly once', async () => {
    const result = await cli.run(['demo', '--chaos', '--claims', '8', '--db', cli.db]);

    expect(result.code, result.out + result.err).toBe(0);
    expect(result.out).toMatch(/ chaos +30% of payment calls answer 503, every 7th answers 429 \(Retry-After 1 s\), tokens expire every 2 s unannounced, 2% of calls hang\n/);
    expect(result.out).toContain('All 8 claims ended as expected.');
    const paid = sampleClaims(8, 1).filter((sample) => sample.expected === 'paid' && !sample.needsApproval).length;
    expect(result.out).toContain(`\n  exactly once      every paid claim was still paid exactly once (${paid} payments in the ledger for ${paid} paid claims)\n`);
    expect(result.out).toMatch(/\n  faults injected   \d+ × 503, \d+ × 429, \d+ × 401 \(\d+ tokens? expired in use\), \d+ hung calls?\n/);
    expect(result.out).toMatch(/\n  token refreshes   [1-9]\d* tokens? fetched from the token endpoint, single-flight\n/);
    expect(result.out).toMatch(/\n  breaker opens     \d+/);

    // Retries, waits, parks and fallbacks are the journal's counts.
    const journal: { kind: string; name: string | null; status: string | null; data: Record<string, unknown> }[] = [];
    for (const workflow of await listed(cli.db)) {
      journal.push(...JSON.parse((await cli.run(['inspect', workflow.id, '--json', '--db', cli.db])).out).journal);
    }
    const retries: Record<string, number> = {};
    for (const entry of journal.filter((entry) => entry.kind === 'tool-call-failed' && entry.data.final === false)) retries[entry.status!] = (retries[entry.status!] ?? 0) + 1;
    expect(countsOn(result.out, 'retries')).toEqual(retries);
    const parkedWaits = journal.filter((entry) => entry.kind === 'tool-call-deferred' && entry.status === 'rate-limit' && entry.data.parked === true).length;
    const workerWaits = journal.reduce((sum, entry) => sum + ((entry.data.waits as Record<string, { count: number }> | undefined)?.['rate-limit']?.count ?? 0), 0);
    expect(result.out).toContain(`\n  rate-limit waits  ${workerWaits + parkedWaits} (${workerWaits} in the worker, ${parkedWaits} parked)\n`);
    const parks: Record<string, number> = {};
    // The runner's parks; a payment held for approval is parked by the approval gate, not the runner.
    for (const entry of journal.filter((entry) => entry.kind === 'workflow-parked' && entry.name !== 'approval')) parks[entry.name!] = (parks[entry.name!] ?? 0) + 1;
    expect(countsOn(result.out, 'parks')).toEqual(parks);
    expect(result.out).toContain('\n  fallbacks         0\n');
  });

  it('redraws one line per claim in place on a terminal tall enough', async () => {
    const result = await cli.run(['demo', '--claims', '4', '--db', cli.db], { isTTY: true, rows: 40 });
    expect(result.code).toBe(0);
    expect(result.out).toContain('\u001b[');
    expect(result.out).not.toMatch(/^\[\d\/4\] /m);
    expect(result.out).toContain('waiting for a worker');
    expect(result.out).toMatch(/C-1-0001 +\S+ +(paid|rejected|waiting) +\d+ steps +as expected/);
  });

  it('falls back to plain lines on a terminal too short for the batch', async () => {
    const result = await cli.run(['demo', '--claims', '4', '--db', cli.db], { isTTY: true, rows: 4 });
    expect(result.code).toBe(0);
    expect(result.out).not.toContain('\u001b[');
    expect(result.out.split('\n').filter((line) => /^\[\d\/4\] /.test(line))).toHaveLength(4);
  });

  it('leaves a database that holds workflows alone and runs on a new file beside it', async () => {
    expect((await cli.run(['demo', '--claims', '2', '--db', cli.db])).code).toBe(0);
    const second = await cli.run(['demo', '--claims', '3', '--db', cli.db]);
    expect(second.code).toBe(0);
    const fresh = readdirSync(cli.dir).find((name) => /^demo-\d{8}-\d{6}\.db$/.test(name));
    expect(fresh).toBeDefined();
    const freshPath = join(cli.dir, fresh!);
    // Paths inside the working folder are shown relative to it.
    expect(second.out).toContain(`Note: keel.db already holds 2 workflows: the demo leaves it alone and runs on a new file, ${fresh}.`);
    expect(second.out).toContain(`keel list --db ${fresh}\n`);
    expect(await listed(cli.db)).toHaveLength(2);
    expect(await listed(freshPath)).toHaveLength(3);
  });
});
