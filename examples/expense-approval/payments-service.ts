// A small but real HTTP payments service for the expense-approval example.
// The example agent pays approved claims through it, and the crash and
// reliability tests use its fault modes (latency, outages, 503s, rate limits,
// expiring tokens, hanging calls) to check that payments happen exactly once.
// Idempotency keys are the contract that makes retries after a crash safe.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

export interface PaymentsServiceOptions {
  port?: number;
  latencyMs?: number;
  failureRate?: number;
  rateLimit?: { perSecond: number; retryAfterSeconds: number };
  tokenTtlMs?: number;
  hangRate?: number;
  random?: () => number;
  down?: boolean;
}

export interface Payment {
  id: string;
  claimId: string;
  amount: number;
  currency: string;
  payee: string;
  idempotencyKey: string;
  createdAt: string;
}

export interface PaymentsServiceStats {
  requests: number;
  paymentRequests: number;
  created: number;
  replayed: number;
  failed503: number;
  rateLimited: number;
  unauthorized: number;
  hung: number;
  tokensIssued: number;
  maxPerSecond: number;
}

export interface PaymentsService {
  url: string;
  ledger(): Payment[];
  stats(): PaymentsServiceStats;
  setOptions(patch: Partial<PaymentsServiceOptions>): void;
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export const PaymentsError = {
  missingIdempotencyKey: 'missing_idempotency_key',
  unavailable: 'unavailable',
  rateLimited: 'rate_limited',
  tokenExpired: 'token_expired',
  invalidToken: 'invalid_token',
  invalidRequest: 'invalid_request',
  idempotencyKeyReused: 'idempotency_key_reused',
  duplicateClaim: 'duplicate_claim',
  malformedJson: 'malformed_json',
  notFound: 'not_found',
  internal: 'internal_error',
} as const;

type PaymentRequestBody = Pick<Payment, 'claimId' | 'amount' | 'currency' | 'payee'>;

// The first request with a key owns `payment`; later requests with the same key
// wait on it, so two concurrent calls can never both create a payment.
interface KeyRecord {
  fingerprint: string;
  payment: Promise<Payment>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.error));
  }
}

const ONE_SECOND_MS = 1000;

export async function startPaymentsService(initialOptions: PaymentsServiceOptions = {}): Promise<PaymentsService> {
  const options: PaymentsServiceOptions = { ...initialOptions };
  const payments: Payment[] = [];
  const paymentsById = new Map<string, Payment>();
  const keys = new Map<string, KeyRecord>();
  const keysByClaim = new Map<string, string>();
  const tokens = new Map<string, number>();
  const arrivals: number[] = [];
  let rateWindow = { startedAt: 0, count: 0 };
  const counters: PaymentsServiceStats = {
    requests: 0, paymentRequests: 0, created: 0, replayed: 0, failed503: 0,
    rateLimited: 0, unauthorized: 0, hung: 0, tokensIssued: 0, maxPerSecond: 0,
  };

  // Only consult randomness when a rate is set, so an injected sequence is
  // consumed by the fault modes the test actually enabled.
  const chance = (rate: number | undefined): boolean =>
    rate !== undefined && rate > 0 && (options.random ?? Math.random)() < rate;

  function recordArrival(now: number): void {
    arrivals.push(now);
    while (arrivals.length > 0 && arrivals[0]! <= now - ONE_SECOND_MS) arrivals.shift();
    counters.maxPerSecond = Math.max(counters.maxPerSecond, arrivals.length);
  }

  function enforceRateLimit(now: number): void {
    const limit = options.rateLimit;
    if (!limit) return;
    if (now - rateWindow.startedAt >= ONE_SECOND_MS) rateWindow = { startedAt: now, count: 0 };
    rateWindow.count += 1;
    if (rateWindow.count > limit.perSecond) {
      counters.rateLimited += 1;
      throw new HttpError(429, { error: PaymentsError.rateLimited }, { 'Retry-After': String(limit.retryAfterSeconds) });
    }
  }

  function ensureUp(): void {
    if (options.down) {
      counters.failed503 += 1;
      throw new HttpError(503, { error: PaymentsError.unavailable });
    }
  }

  function authorize(request: IncomingMessage): void {
    if (options.tokenTtlMs === undefined) return;
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
    const expiresAt = match ? tokens.get(match[1]!) : undefined;
    if (expiresAt === undefined) {
      counters.unauthorized += 1;
      throw new HttpError(401, { error: PaymentsError.invalidToken });
    }
    if (Date.now() >= expiresAt) {
      counters.unauthorized += 1;
      throw new HttpError(401, { error: PaymentsError.tokenExpired });
    }
  }

  async function createOrReplay(
    idempotencyKey: string,
    body: PaymentRequestBody,
    response: ServerResponse,
  ): Promise<void> {
    const fingerprint = JSON.stringify([body.claimId, body.amount, body.currency, body.payee]);
    const existing = keys.get(idempotencyKey);
    if (existing) {
      await sleep(options.latencyMs);
      const payment = await existing.payment;
      if (existing.fingerprint !== fingerprint) {
        throw new HttpError(409, { error: PaymentsError.idempotencyKeyReused });
      }
      counters.replayed += 1;
      sendJson(response, 200, { payment }, { 'Idempotent-Replayed': 'true' });
      return;
    }

    // A claim is paid once whatever key a client sends: a resubmitted claim is refused.
    const claimKey = keysByClaim.get(body.claimId);
    if (claimKey !== undefined) {
      throw new HttpError(409, { error: PaymentsError.duplicateClaim, claimId: body.claimId });
    }

    // Claim the key before the latency await; claiming it afterwards would let a
    // concurrent duplicate slip through while this request is still sleeping.
    const pending = deferred<Payment>();
    keys.set(idempotencyKey, { fingerprint, payment: pending.promise });
    keysByClaim.set(body.claimId, idempotencyKey);
    await sleep(options.latencyMs);

    const payment: Payment = {
      id: `pay_${randomUUID()}`,
      ...body,
      idempotencyKey,
      createdAt: new Date().toISOString(),
    };
    payments.push(payment);
    paymentsById.set(payment.id, payment);
    counters.created += 1;
    pending.resolve(payment);
    sendJson(response, 201, { payment });
  }

  async function postPayment(request: IncomingMessage, response: ServerResponse, rawBody: string): Promise<void> {
    const now = Date.now();
    counters.paymentRequests += 1;
    recordArrival(now);
    ensureUp();
    enforceRateLimit(now);
    if (chance(options.failureRate)) {
      counters.failed503 += 1;
      throw new HttpError(503, { error: PaymentsError.unavailable });
    }
    if (chance(options.hangRate)) {
      // Never answer: the client must time out, which is the point of this mode.
      counters.hung += 1;
      return;
    }
    authorize(request);
    const idempotencyKey = request.headers['idempotency-key'];
    if (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0) {
      throw new HttpError(400, { error: PaymentsError.missingIdempotencyKey });
    }
    const body = validatePaymentBody(parseJson(rawBody));
    await createOrReplay(idempotencyKey, body, response);
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    counters.requests += 1;
    const method = request.method ?? 'GET';
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const rawBody = await readBody(request);

    if (method === 'GET' && path === '/health') return sendJson(response, 200, { ok: true });

    if (method === 'POST' && path === '/token') {
      const token = randomUUID();
      const expiresInMs = options.tokenTtlMs ?? 0;
      tokens.set(token, Date.now() + expiresInMs);
      counters.tokensIssued += 1;
      return sendJson(response, 200, { token, expiresInMs });
    }

    if (method === 'POST' && path === '/payments') return postPayment(request, response, rawBody);

    const paymentMatch = /^\/payments\/([^/]+)$/.exec(path);
    if (method === 'GET' && (path === '/payments' || paymentMatch)) {
      ensureUp();
      await sleep(options.latencyMs);
      if (!paymentMatch) return sendJson(response, 200, { payments: [...payments] });
      const payment = paymentsById.get(decodeURIComponent(paymentMatch[1]!));
      if (!payment) throw new HttpError(404, { error: PaymentsError.notFound });
      return sendJson(response, 200, payment);
    }

    throw new HttpError(404, { error: PaymentsError.notFound });
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      if (response.headersSent || response.destroyed) return;
      if (error instanceof HttpError) sendJson(response, error.status, error.body, error.headers);
      else sendJson(response, 500, { error: PaymentsError.internal });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}`,
    ledger: () => payments.map((payment) => ({ ...payment })),
    stats: () => ({ ...counters }),
    setOptions: (patch) => Object.assign(options, patch),
    setDown: (down) => {
      options.down = down;
    },
    close: () => {
      // Idempotent, so tests and crash harnesses can close from several places.
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Hung requests keep their sockets busy; close() alone would wait on them forever.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function validatePaymentBody(value: unknown): PaymentRequestBody {
  const invalid = (detail: string): HttpError => new HttpError(400, { error: PaymentsError.invalidRequest, detail });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('body must be a JSON object');
  const body = value as Record<string, unknown>;
  if (typeof body.claimId !== 'string' || body.claimId.length === 0) throw invalid('claimId must be a non-empty string');
  if (typeof body.amount !== 'number' || !Number.isFinite(body.amount) || body.amount <= 0) {
    throw invalid('amount must be a positive number');
  }
  if (typeof body.currency !== 'string' || !/^[A-Za-z]{3}$/.test(body.currency)) {
    throw invalid('currency must be a 3-letter code');
  }
  if (typeof body.payee !== 'string' || body.payee.length === 0) throw invalid('payee must be a non-empty string');
  return { claimId: body.claimId, amount: body.amount, currency: body.currency, payee: body.payee };
}

function parseJson(rawBody: string): unknown {
  try {
    return JSON.parse(rawBody);
  } catch {
    throw new HttpError(400, { error: PaymentsError.malformedJson });
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

function sleep(ms: number | undefined): Promise<void> {
  if (!ms || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function numberFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got "${raw}"`);
  return value;
}

function optionsFromEnv(): PaymentsServiceOptions {
  const perSecond = numberFromEnv('PAYMENTS_RATE_LIMIT_PER_SECOND');
  return {
    port: numberFromEnv('PAYMENTS_PORT'),
    latencyMs: numberFromEnv('PAYMENTS_LATENCY_MS'),
    failureRate: numberFromEnv('PAYMENTS_FAILURE_RATE'),
    rateLimit:
      perSecond === undefined
        ? undefined
        : { perSecond, retryAfterSeconds: numberFromEnv('PAYMENTS_RETRY_AFTER_SECONDS') ?? 1 },
    tokenTtlMs: numberFromEnv('PAYMENTS_TOKEN_TTL_MS'),
    hangRate: numberFromEnv('PAYMENTS_HANG_RATE'),
  };
}

const runDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (runDirectly) {
  const service = await startPaymentsService(optionsFromEnv());
  console.log(service.url);
  const shutdown = (): void => void service.close().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
