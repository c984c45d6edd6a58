// Notifications about approval requests: a callback, and optionally a webhook that receives each
// notification as JSON. Sent after the change is committed, and never block or fail the workflow:
// a notification that fails is logged, and the request is still in `keel approvals`.

import { errorMessage } from '../errors.js';
import type { ApprovalRequest } from '../store/types.js';
import type { Logger } from '../util/logger.js';

export interface ApprovalNotification {
  type: 'approval-requested' | 'approval-escalated' | 'approval-decided';
  request: ApprovalRequest;
}

export interface ApprovalNotifierOptions {
  /** Called for every notification; may be async. */
  notify?: (notification: ApprovalNotification) => void | Promise<void>;
  /** POSTs each notification as JSON here. */
  webhookUrl?: string;
  webhookTimeoutMs?: number;
}

export type ApprovalNotifier = (notification: ApprovalNotification) => Promise<void>;

export function approvalNotifier(options: ApprovalNotifierOptions, logger: Logger): ApprovalNotifier | undefined {
  if (!options.notify && !options.webhookUrl) return undefined;
  return async (notification) => {
    const sends: Promise<unknown>[] = [];
    if (options.notify) sends.push(Promise.resolve().then(() => options.notify!(notification)));
    if (options.webhookUrl) sends.push(postJson(options.webhookUrl, notification, options.webhookTimeoutMs ?? 5000));
    for (const outcome of await Promise.allSettled(sends)) {
      if (outcome.status === 'rejected') {
        logger.warn({ requestId: notification.request.id, type: notification.type }, `approval notification failed: ${errorMessage(outcome.reason)}`);
      }
    }
  };
}

async function postJson(url: string, body: unknown, timeoutMs: number): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`webhook ${url} answered HTTP ${response.status}`);
}
