// keel approvals, keel approve and keel reject, in-process, on a database where three claims wait
// for the finance group: listing, deciding, and the clear refusals (unknown id, already decided,
// self-approval, a decider outside the finance group, malformed JSON).

import { describe, expect, it } from 'vitest';
import { approvalAgent, paymentLedger } from '../../../test/support/approval-agent.js';
import { useCliWorkspace } from '../../../test/support/cli-harness.js';
import { createKeel } from '../../agent/keel.js';
import { openSqliteStore } from '../../store/sqlite/sqlite-store.js';

const cli = useCliWorkspace();

/** Three claims over the limit, parked for approval, on alice's behalf; fin-1 and fin-2 are in finance. */
async function parkedClaims(): Promise<string[]> {
  const keel = createKeel({ store: openSqliteStore({ path: cli.db }), agents: [approvalAgent(paymentLedger())] });
  try {
    for (const id of ['fin-1', 'fin-2']) await keel.store.savePrincipal({ id, roles: ['finance'] }, 'test-setup');
    for (const amount of [1500, 2500, 3500]) await keel.startAndRun('approval-payer', { amount, payee: 'DE89 3704' }, { principal: { id: 'alice' } });
    return (await keel.approvals()).map((request) => request.id);
  } finally {
    await keel.close();
  }
}

describe('keel approvals / approve / reject', () => {
  it('lists pending requests with why they wait, decides them, and lists the decisions', async () => {
    const [first, second] = await parkedClaims();
    const listed = await cli.run(['approvals', '--db', cli.db]);
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out).toMatch(new RegExp(`${first} +wf_\\w+ +pay +\\{"amount":1500,"payee":"DE89 3704"\\} +0.95 +amount over 1000 +finance +pending`));
    expect(listed.out).toContain('Decide one with `keel approve <request> --by <user> --db');

    const approved = await cli.run(['approve', first!, '--by', 'fin-1', '--comment', 'ok', '--db', cli.db]);
    expect(approved.code, approved.err).toBe(0);
    expect(approved.out).toContain(`Approved ${first} (workflow wf_`);
    expect(approved.out).toContain('is runnable again');
    const rejected = await cli.run(['reject', second!, '--by', 'fin-1', '--reason', 'no receipt', '--db', cli.db]);
    expect(rejected.code, rejected.err).toBe(0);
    expect(rejected.out).toContain(`Rejected ${second}`);

    const decided = JSON.parse((await cli.run(['approvals', '--status', 'decided', '--json', '--db', cli.db])).out) as { id: string; status: string; decidedBy: string; comment: string }[];
    expect(decided.map(({ id, status, decidedBy, comment }) => ({ id, status, decidedBy, comment }))).toEqual([
      { id: first, status: 'approved', decidedBy: 'fin-1', comment: 'ok' },
      { id: second, status: 'rejected', decidedBy: 'fin-1', comment: 'no receipt' },
    ]);
    expect(JSON.parse((await cli.run(['approvals', '--status', 'all', '--json', '--db', cli.db])).out)).toHaveLength(3);
  });

  it('keel inspect shows the proposed action, its reasoning and confidence, the rules that fired and the decision in one timeline', async () => {
    const [first] = await parkedClaims();
    expect((await cli.run(['approve', first!, '--by', 'fin-1', '--comment', 'receipt checked', '--db', cli.db])).code).toBe(0);
    const keel = createKeel({ store: openSqliteStore({ path: cli.db }), agents: [approvalAgent(paymentLedger())] });
    const request = (await keel.store.getApproval(first!))!;
    await keel.run(request.workflowId);
    await keel.close();
    const inspected = await cli.run(['inspect', request.workflowId, '--db', cli.db]);
    expect(inspected.code, inspected.err).toBe(0);
    const lines = inspected.out.split('\n');
    const order = ['action-decided', 'approval-requested', 'workflow-parked', 'approval-decided', 'tool-call-completed'].map((kind) => lines.findIndex((line) => line.includes(kind)));
    expect(order.every((index, position) => index >= 0 && (position === 0 || index > order[position - 1]!)), inspected.out).toBe(true);
    expect(inspected.out).toContain('Claim of 1500 is within policy.');
    expect(inspected.out).toContain('0.95');
    expect(inspected.out).toContain(`request ${first} to finance: amount over 1000`);
    expect(inspected.out).toContain(`approved by fin-1: receipt checked (request ${first})`);
  });

  it('refuses an unknown id, a second decision, self-approval, a decider without the role and malformed JSON with exit 2 and a message', async () => {
    const [first, second] = await parkedClaims();
    const unknown = await cli.run(['approve', 'apr_nope', '--by', 'fin-1', '--db', cli.db]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("There is no approval request 'apr_nope'");

    expect((await cli.run(['reject', first!, '--by', 'fin-1', '--reason', 'duplicate', '--db', cli.db])).code).toBe(0);
    const again = await cli.run(['approve', first!, '--by', 'fin-2', '--db', cli.db]);
    expect(again.code).toBe(2);
    expect(again.err).toContain('is already rejected by fin-1');

    const self = await cli.run(['approve', second!, '--by', 'alice', '--db', cli.db]);
    expect(self.code).toBe(2);
    expect(self.err).toContain('alice cannot approve request');

    const outsider = await cli.run(['approve', second!, '--by', 'mallory', '--db', cli.db]);
    expect(outsider.code).toBe(2);
    expect(outsider.err).toContain("mallory cannot decide request");
    expect(outsider.err).toContain("only finance may, and there is no principal 'mallory'");

    const malformed = await cli.run(['approve', second!, '--by', 'fin-1', '--args', '{amount: 5}', '--db', cli.db]);
    expect(malformed.code).toBe(2);
    expect(malformed.err).toContain('--args for request');
    expect(malformed.err).toContain('is not valid JSON');

    const noReason = await cli.run(['reject', second!, '--by', 'fin-1', '--db', cli.db]);
    expect(noReason.code).toBe(2);
    expect(noReason.err).toContain("required option '--reason <text>' not specified");
  });
});
