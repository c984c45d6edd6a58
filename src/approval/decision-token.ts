// Signed decision tokens: how a decision made outside Keel's process (a link in a notification, a
// webhook callback) proves it was issued for this request, this decision and this approver, and
// is still fresh. HMAC-SHA256 over the payload with a secret only Keel holds. A token is refused
// when forged, altered or expired; a replayed one finds its request already decided. Keel.decideWithToken
// audits every refusal.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { KeelError } from '../errors.js';

export interface DecisionTokenPayload {
  /** Format version of the token. */
  v: 1;
  requestId: string;
  decision: 'approve' | 'reject';
  approver: string;
  /** Epoch ms after which the token is refused. */
  expiresAt: number;
}

export type TokenRefusal = 'malformed' | 'forged' | 'expired';

export class DecisionTokenError extends KeelError {
  constructor(
    readonly refusal: TokenRefusal,
    message: string,
  ) {
    super('BAD_INPUT', message);
  }
}

export function createDecisionToken(payload: Omit<DecisionTokenPayload, 'v'>, secret: string): string {
  const body = Buffer.from(JSON.stringify({ v: 1, ...payload })).toString('base64url');
  return `${body}.${sign(body, secret)}`;
}

/** The payload of a genuine, unexpired token; throws DecisionTokenError otherwise. */
export function verifyDecisionToken(token: string, secret: string, now: number): DecisionTokenPayload {
  const [body, signature, extra] = token.split('.');
  if (!body || !signature || extra !== undefined) throw new DecisionTokenError('malformed', 'The decision token is malformed: expected <payload>.<signature>. Use the link or token exactly as it was sent.');
  const expected = Buffer.from(sign(body, secret));
  const given = Buffer.from(signature);
  // A token altered anywhere, or signed with another secret, fails here.
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new DecisionTokenError('forged', 'The decision token was not signed by this Keel (forged or altered); it is refused and the attempt is audited.');
  }
  let payload: DecisionTokenPayload;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as DecisionTokenPayload;
  } catch {
    throw new DecisionTokenError('malformed', 'The decision token carries no readable payload.');
  }
  if (payload.v !== 1 || typeof payload.requestId !== 'string' || (payload.decision !== 'approve' && payload.decision !== 'reject') || typeof payload.approver !== 'string') {
    throw new DecisionTokenError('malformed', 'The decision token carries an unknown payload.');
  }
  if (!(payload.expiresAt > now)) {
    throw new DecisionTokenError(
      'expired',
      `The decision token for request ${payload.requestId} expired at ${new Date(payload.expiresAt).toISOString()}; ask for a new one or decide with \`keel approve\` / \`keel reject\`.`,
    );
  }
  return payload;
}

function sign(body: string, secret: string): string {
  return createHmac('sha256', secret).update(`keel-decision-v1.${body}`).digest('base64url');
}
