// Signed decision tokens through Keel: a genuine token decides once; a forged, altered, expired or
// replayed token is refused, the request is left as it was, and the refusal is in the audit log.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { approvalAgent, paymentLedger } from '../../test/support/approval-agent.js';
import { createKeel, type Keel } from '../agent/keel.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { ManualClock } from '../util/clock.js';
import { createDecisionToken } from './decision-token.js';

const secret = 'test-secret-0123456789abcdef0123456789';
let directory: string;
let clock: ManualClock;
let keel: Keel;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-token-'));
  clock = new ManualClock();
  keel = createKeel({ store: openSqliteStore({ path: join(directory, 'keel.db'), clock }), clock, agents: [approvalAgent(paymentLedger())], approvalTokenSecret: secret });
});

afterEach(async () => {
  await keel.close();
  rmSync(directory, { recursive: true, force: true });
});

async function pendingRequest(): Promise<string> {
  await keel.store.savePrincipal({ id: 'fin-1', roles: ['finance'] }, 'test-setup');
  const workflow = await keel.startAndRun('approval-payer', { amount: 5000, payee: 'DE89 3704' }, { principal: { id: 'alice' } });
  return (await keel.approvals({ workflowId: workflow.id }))[0]!.id;
}

async function refusals(): Promise<{ outcome: string | null; actor: string; subject: string | null }[]> {
  return (await keel.store.readAudit()).filter((entry) => entry.kind === 'approval.token-refused').map(({ outcome, actor, subject }) => ({ outcome, actor, subject }));
}

describe('signed decision tokens', () => {
  it('decide once; a replay is refused and audited', async () => {
    const id = await pendingRequest();
    const token = keel.decisionToken(id, 'approve', 'fin-1', 60_000);
    expect(await keel.decideWithToken(token, { comment: 'via link' })).toMatchObject({ status: 'approved', decidedBy: 'fin-1', comment: 'via link' });
    await expect(keel.decideWithToken(token)).rejects.toMatchObject({ code: 'APPROVAL_DECIDED' });
    expect(await refusals()).toEqual([{ outcome: 'replayed', actor: 'fin-1', subject: id }]);
  });

  it('refuse forged, altered and expired tokens, leaving the request pending', async () => {
    const id = await pendingRequest();
    const forged = createDecisionToken({ requestId: id, decision: 'approve', approver: 'mallory', expiresAt: clock.now() + 60_000 }, 'another secret');
    await expect(keel.decideWithToken(forged)).rejects.toThrow('forged or altered');

    const genuine = keel.decisionToken(id, 'reject', 'fin-1', 60_000);
    const [body, signature] = genuine.split('.');
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const altered = `${Buffer.from(JSON.stringify({ ...payload, decision: 'approve' })).toString('base64url')}.${signature}`;
    await expect(keel.decideWithToken(altered)).rejects.toThrow('forged or altered');

    clock.advance(60_001);
    await expect(keel.decideWithToken(genuine, { reason: 'late' })).rejects.toThrow('expired at');
    expect((await keel.store.getApproval(id))!.status).toBe('pending');
    expect(await refusals()).toEqual([
      { outcome: 'forged', actor: 'unknown', subject: null },
      { outcome: 'forged', actor: 'unknown', subject: null },
      { outcome: 'expired', actor: 'unknown', subject: null },
    ]);
  });
});
