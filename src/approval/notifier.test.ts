// Approval notifications: the callback and the webhook hear of a request when it is created,
// escalated and decided, with the request as it is stored then.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { approvalAgent, paymentLedger } from '../../test/support/approval-agent.js';
import { createKeel, type Keel } from '../agent/keel.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { ManualClock } from '../util/clock.js';
import type { ApprovalNotification } from './notifier.js';

let directory: string;
let server: Server;
let keel: Keel | undefined;
const posted: ApprovalNotification[] = [];

beforeEach(async () => {
  directory = mkdtempSync(join(tmpdir(), 'keel-notify-'));
  posted.length = 0;
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      posted.push(JSON.parse(body) as ApprovalNotification);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
});

afterEach(async () => {
  await keel?.close();
  await new Promise((closed) => server.close(closed));
  rmSync(directory, { recursive: true, force: true });
});

describe('approval notifications', () => {
  it('tell the callback and the webhook when a request is created, escalated and decided', async () => {
    const clock = new ManualClock();
    const heard: ApprovalNotification[] = [];
    const webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/approvals`;
    keel = createKeel({
      store: openSqliteStore({ path: join(directory, 'keel.db'), clock }),
      clock,
      agents: [approvalAgent(paymentLedger(), { approvers: 'team-lead', escalation: ['finance'], expiresAfterMs: 60_000 })],
      approvalNotifications: { notify: (notification) => void heard.push(notification), webhookUrl },
    });
    const workflow = await keel.startAndRun('approval-payer', { amount: 5000, payee: 'DE89 3704' }, { principal: { id: 'alice' } });
    await vi.waitFor(() => expect(heard).toHaveLength(1));
    clock.advance(60_001);
    await keel.run(workflow.id);
    await vi.waitFor(() => expect(heard).toHaveLength(2));
    const [request] = await keel.approvals();
    await keel.store.savePrincipal({ id: 'fin-1', roles: ['finance'] }, 'test-setup');
    await keel.approve(request!.id, { by: 'fin-1' });
    expect(heard.map((notification) => [notification.type, notification.request.approvers, notification.request.status])).toEqual([
      ['approval-requested', 'team-lead', 'pending'],
      ['approval-escalated', 'finance', 'pending'],
      ['approval-decided', 'finance', 'approved'],
    ]);
    await vi.waitFor(() => expect(posted).toHaveLength(3));
    expect(posted.map((notification) => notification.type).sort()).toEqual(['approval-decided', 'approval-escalated', 'approval-requested']);
    expect(posted.every((notification) => notification.request.id === request!.id)).toBe(true);
  });
});
