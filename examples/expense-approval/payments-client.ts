// The payments service as the expense-approval tools call it. Its address comes from
// EXPENSE_PAYMENTS_URL, read on every call rather than at import, so a demo or a test can start
// the service after the agent module is loaded. Each HTTP answer maps to a tool error class,
// because the class alone decides what Keel does next: retry, wait, refresh, tell the decider, or
// fail. Network errors are left as they are: Keel's runner classifies them as transient.
// Every call carries a bearer token from the service's token endpoint (Keel's credential provider
// fetches and refreshes it); the token goes in the header only, never into a message or details.

import { ToolError, type IssuedToken } from '../../src/index.js';

export interface PaymentRequest {
  claimId: string;
  amount: number;
  currency: string;
  payee: string;
}

export interface PaymentReceipt {
  paymentId: string;
  /** The service had already made this payment for this idempotency key and answered with it again. */
  replayed: boolean;
}

interface PaymentRecord {
  id: string;
  claimId: string;
}

/** How one call reaches the service: its cancellation signal and the bearer token to send. */
export interface CallOptions {
  signal: AbortSignal;
  token: string;
}

export function paymentsUrl(): string {
  const url = process.env.EXPENSE_PAYMENTS_URL;
  if (!url) {
    throw new ToolError('fatal', 'EXPENSE_PAYMENTS_URL is not set: start the example payments service (keel demo does) and set it to its URL');
  }
  return url.replace(/\/+$/, '');
}

/** Whether the service already holds a payment for this claim. */
export async function isClaimPaid(claimId: string, call: CallOptions): Promise<boolean> {
  const url = `${paymentsUrl()}/payments`;
  const response = await fetch(url, { signal: call.signal, headers: { Accept: 'application/json', Authorization: `Bearer ${call.token}` } });
  const body = await readJson(response);
  if (!response.ok) throw errorForResponse(response, body, `Listing payments (GET ${url}) to check claim ${claimId}`);
  const payments = (body as { payments?: PaymentRecord[] } | undefined)?.payments;
  if (!Array.isArray(payments)) {
    throw new ToolError('fatal', `GET ${url} answered ${response.status} without a 'payments' list; check that EXPENSE_PAYMENTS_URL points at the example payments service.`);
  }
  return payments.some((payment) => payment.claimId === claimId);
}

/** Pays a claim once: the idempotency key makes a repeated call return the first payment. */
export async function createPayment(request: PaymentRequest, idempotencyKey: string, call: CallOptions): Promise<PaymentReceipt> {
  const url = `${paymentsUrl()}/payments`;
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'Idempotency-Key': idempotencyKey,
      Authorization: `Bearer ${call.token}`,
    },
    body: JSON.stringify(request),
    signal: call.signal,
  });
  const body = await readJson(response);
  if (response.status !== 200 && response.status !== 201) {
    throw errorForResponse(response, body, `Paying claim ${request.claimId} (POST ${url}, Idempotency-Key ${idempotencyKey})`);
  }
  const payment = (body as { payment?: PaymentRecord } | undefined)?.payment;
  if (typeof payment?.id !== 'string') {
    throw new ToolError('fatal', `POST ${url} answered ${response.status} without a payment id for claim ${request.claimId}; check the payments service before retrying, the claim may be paid.`);
  }
  return { paymentId: payment.id, replayed: response.status === 200 || response.headers.get('idempotent-replayed') === 'true' };
}

/**
 * Asks the service's token endpoint for a token (Keel's credential provider calls this). The
 * endpoint may say how long the token lasts; if it does not, the token is used until a 401.
 */
export async function fetchPaymentsToken(signal: AbortSignal): Promise<IssuedToken> {
  const url = `${paymentsUrl()}/token`;
  const response = await fetch(url, { method: 'POST', signal, headers: { Accept: 'application/json' } });
  const body = await readJson(response);
  if (response.status === 401 || response.status === 403) {
    // The token endpoint refusing us is a configuration problem, not an expired token.
    throw new ToolError('permission-denied', `POST ${url} refused to issue a token (HTTP ${response.status}); check the client credentials of the payments service.`, {
      details: { status: response.status },
    });
  }
  if (!response.ok) throw errorForResponse(response, body, `Fetching a token (POST ${url})`);
  const { token, expiresInMs } = (body ?? {}) as { token?: unknown; expiresInMs?: unknown };
  if (typeof token !== 'string' || token === '') {
    throw new ToolError('fatal', `POST ${url} answered ${response.status} without a token; check that EXPENSE_PAYMENTS_URL points at the example payments service.`);
  }
  return { token, expiresAt: typeof expiresInMs === 'number' ? Date.now() + expiresInMs : undefined };
}

function errorForResponse(response: Response, body: unknown, action: string): ToolError {
  const code = (body as { error?: unknown } | undefined)?.error;
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  const said = `${action} failed with HTTP ${response.status}${typeof code === 'string' ? ` (${code}${typeof detail === 'string' ? `: ${detail}` : ''})` : ''}`;
  const details = { status: response.status, body };
  switch (response.status) {
    case 409:
      if (code === 'duplicate_claim') {
        return new ToolError('invalid-input', `${said}: this claim was already paid under another request, so this is a duplicate resubmission. Do not pay it again; reject it as a duplicate.`, { details });
      }
      // The same key with other details means the step's arguments changed between attempts: a bug, not something to retry.
      return new ToolError('fatal', `${said}: the idempotency key was already used for a different payment. Compare the journal's pay_claim arguments with the ledger before resuming.`, { details });
    case 400:
    case 422:
      return new ToolError('invalid-input', `${said}: the service refused the payment details; correct them or reject the claim.`, { details });
    case 401:
      return new ToolError('auth-expired', `${said}: the service needs fresh credentials.`, { details });
    case 403:
      return new ToolError('permission-denied', `${said}: this agent may not make this payment.`, { details });
    case 429: {
      const retryAfterMs = retryAfterMsOf(response.headers.get('retry-after'));
      return new ToolError('rate-limited', `${said}: rate limited${retryAfterMs === undefined ? '' : `, retry after ${retryAfterMs} ms`}.`, { details, retryAfterMs });
    }
    default:
      if (response.status >= 500 || response.status === 408) return new ToolError('transient', `${said}: the service is unavailable for now.`, { details });
      return new ToolError('fatal', `${said}: unexpected answer; check that EXPENSE_PAYMENTS_URL points at the example payments service.`, { details });
  }
}

/** Retry-After is either delay seconds or an HTTP date. */
export function retryAfterMsOf(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000));
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { error: 'unreadable_body', detail: text.slice(0, 200) };
  }
}
