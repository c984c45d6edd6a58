// keel prune: deletes the journals and context of finished workflows older than a time, keeps
// their records, and says how much it removed.

import { describe, expect, it } from 'vitest';
import { useCliWorkspace } from '../../../test/support/cli-harness.js';
import { repositoryFilePath } from '../package-files.js';

const cli = useCliWorkspace();

async function runCleanClaim(): Promise<string> {
  const input = repositoryFilePath('examples/expense-approval/claims/clean-claim.json')!;
  return JSON.parse((await cli.run(['run', 'expense-approval', '--input', input, '--json', '--db', cli.db])).out).id;
}

describe('keel prune', () => {
  it('keeps workflows that finished after the time', async () => {
    await runCleanClaim();
    const result = await cli.run(['prune', '--completed-before', '7d', '--db', cli.db]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^Nothing to prune: no workflow finished before \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ that still has its journal\.\n$/);
  });

  it('removes the journals of workflows finished before the time and keeps their records', async () => {
    const id = await runCleanClaim();
    const journal = JSON.parse((await cli.run(['inspect', id, '--json', '--db', cli.db])).out).journal;
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString();

    const result = await cli.run(['prune', '--completed-before', tomorrow, '--json', '--db', cli.db]);
    expect(result.code).toBe(0);
    const pruned = JSON.parse(result.out);
    expect(pruned).toMatchObject({ before: tomorrow, workflows: 1, journalEntries: journal.length });
    expect(pruned.contextRows).toBeGreaterThan(0);

    const inspected = JSON.parse((await cli.run(['inspect', id, '--json', '--db', cli.db])).out);
    expect(inspected).toMatchObject({ id, status: 'completed', outcome: 'paid', journal: [] });
    expect(inspected.prunedAt).not.toBeNull();
    expect((await cli.run(['inspect', id, '--db', cli.db])).out).toContain("Timeline: pruned on ");

    const again = await cli.run(['prune', '--completed-before', tomorrow, '--db', cli.db]);
    expect(again.out).toContain('Nothing to prune');
  });

  it('says what it removed, for people', async () => {
    await runCleanClaim();
    await runCleanClaim();
    const result = await cli.run(['prune', '--completed-before', new Date(Date.now() + 60_000).toISOString(), '--db', cli.db]);
    expect(result.out).toMatch(/^Pruned 2 workflows that finished before .*: removed \d+ journal entries and \d+ context rows\. Their records stay/);
  });

  it('refuses a time it cannot read', async () => {
    const result = await cli.run(['prune', '--completed-before', 'last week', '--db', cli.db]);
    expect(result.code).toBe(2);
    expect(result.err).toContain("a duration ago such as 7d, 12h, 30m, 45s or 2w; got 'last week'");
  });
});
