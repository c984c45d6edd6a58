// A small but real HTTP payments service for the expense-approval example.
// The example agent pays approved claims through it, and the crash and
// reliability tests use its fault modes (latency, outages, 503s, rate limits,
// periodic 429s, expiring tokens, hanging calls, lost answers) to check that
// payments happen exactly once. Idempotency keys are the contract that makes
// retries after a crash or a lost answer safe. Its stats are what the tests
// hold the client to: calls per second, tokens issued and expired in use.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

export interface PaymentsServiceOptions {
  port?: number;
  /** How long every answer takes, refusals included (a hung call never answers). */
  latencyMs?: number;
  /** Share of payment requests answered 503. */
  failureRate?: number;
  /** A fixed window: payment requests beyond perSecond in one second get 429 with Retry-After. */
  rateLimit?: { perSecond: number; retryAfterSeconds: number };
  /** Every `every`-th payment request gets 429 with Retry-After, whatever the rate. */
  periodicRateLimit?: { every: number; retryAfterSeconds: number };
  /** When set, every call to /payments needs a bearer token from POST /token, valid this long. */
  tokenTtlMs?: number;
  /**
   * POST /token does not say when its tokens expire, so a client learns of an expiry only from
   * a 401: every client call in flight at that moment sees one.
   */
  hideTokenTtl?: boolean;
  /** Share of payment requests that never get an answer (before anything is paid). */
  hangRate?: number;
  /** Share of payments that are made but whose answer never arrives: the client must retry with its key. */
  lostResponseRate?: number;
  random?: () => number;
  /** Every endpoint but /health answers 503, the token endpoint included. */
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
  /** Every request, /token and /health included. */
  requests: number;
  /** Requests to /payments (GET and POST): the calls a client's rate budget governs. */
  calls: number;
  /** POST /payments requests. */
  paymentRequests: number;
  created: number;
  replayed: number;
  failed503: number;
  rateLimited: number;
  unauthorized: number;
  hung: number;
  lostResponses: number;
  tokensIssued: number;
  /** Distinct tokens refused because their time was up: each is one expiry a client ran into. */
  tokensExpired: number;
  /** The most calls to /payments received within any one second. */
  maxPerSecond: number;
}

export interface PaymentsService {
  url: string;
  ledger(): Payment[];
  stats(): PaymentsServiceStats;
  /** Every token POST /token handed out, so a test can check that none leaked anywhere. */
  issuedTokens(): string[];
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
  const tokens = new Map<string, { expiresAt: number; expirySeen: boolean }>();
  const arrivals: number[] = [];
  let rateWindow = { startedAt: 0, count: 0 };
  const counters: PaymentsServiceStats = {
    requests: 0, calls: 0, paymentRequests: 0, created: 0, replayed: 0, failed503: 0, rateLimited: 0,
    unauthorized: 0, hung: 0, lostResponses: 0, tokensIssued: 0, tokensExpired: 0, maxPerSecond: 0,
  };

  // Only consult randomness when a rate is set, so an injected sequence is
  // consumed by the fault modes the test actually enabled.
  const chance = (rate: number | undefined): boolean =>
    rate !== undefined && rate > 0 && (options.random ?? Math.random)() < rate;

  function recordArrival(now: number): void {
    counters.calls += 1;
    arrivals.push(now);
    while (arrivals.length > 0 && arrivals[0]! <= now - ONE_SECOND_MS) arrivals.shift();
    counters.maxPerSecond = Math.max(counters.maxPerSecond, arrivals.length);
  }

  function enforceRateLimit(now: number): void {
    const limit = options.rateLimit;
    if (!limit) return;
    if (now - rateWindow.startedAt >= ONE_SECOND_MS) rateWindow = { startedAt: now, count: 0 };
    rateWindow.count += 1;
    if (rateWindow.count > limit.perSecond) throw rateLimited(limit.retryAfterSeconds);
  }

  function enforcePeriodicRateLimit(): void {
    const periodic = options.periodicRateLimit;
    if (periodic && counters.paymentRequests % periodic.every === 0) throw rateLimited(periodic.retryAfterSeconds);
  }

  function rateLimited(retryAfterSeconds: number): HttpError {
    counters.rateLimited += 1;
    return new HttpError(429, { error: PaymentsError.rateLimited }, { 'Retry-After': String(retryAfterSeconds) });
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
    const token = match ? tokens.get(match[1]!) : undefined;
    if (token === undefined) {
      counters.unauthorized += 1;
      throw new HttpError(401, { error: PaymentsError.invalidToken });
    }
    if (Date.now() >= token.expiresAt) {
      counters.unauthorized += 1;
      if (!token.expirySeen) counters.tokensExpired += 1;
      token.expirySeen = true;
      throw new HttpError(401, { error: PaymentsError.tokenExpired });
    }
  }

  /** The checks before a call is served; a refusal takes latencyMs to arrive, like any answer. */
  async function refuseSlowly(checks: () => void): Promise<void> {
    try {
      checks();
    } catch (error) {
      await sleep(options.latencyMs);
      throw error;
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
    if (chance(options.lostResponseRate)) {
      // Paid, but the answer is lost: only a retry with the same key tells the client so.
      counters.lostResponses += 1;
      return;
    }
    sendJson(response, 201, { payment });
  }

  async function postPayment(request: IncomingMessage, response: ServerResponse, rawBody: string): Promise<void> {
    const now = Date.now();
    counters.paymentRequests += 1;
    recordArrival(now);
    let hangs = false;
    let body: PaymentRequestBody | undefined;
    let idempotencyKey: string | undefined;
    await refuseSlowly(() => {
      ensureUp();
      enforceRateLimit(now);
      enforcePeriodicRateLimit();
      if (chance(options.failureRate)) {
        counters.failed503 += 1;
        throw new HttpError(503, { error: PaymentsError.unavailable });
      }
      hangs = chance(options.hangRate);
      if (hangs) return;
      authorize(request);
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string' || key.length === 0) {
        throw new HttpError(400, { error: PaymentsError.missingIdempotencyKey });
      }
      idempotencyKey = key;
      body = validatePaymentBody(parseJson(rawBody));
    });
    if (hangs) {
      // Never answer: the client must time out, which is the point of this mode.
      counters.hung += 1;
      return;
    }
    await createOrReplay(idempotencyKey!, body!, response);
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    counters.requests += 1;
    const method = request.method ?? 'GET';
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const rawBody = await readBody(request);

    if (method === 'GET' && path === '/health') return sendJson(response, 200, { ok: true });

    if (method === 'POST' && path === '/token') {
      await refuseSlowly(ensureUp);
      const token = `tok_${randomUUID()}`;
      const ttlMs = options.tokenTtlMs;
      tokens.set(token, { expiresAt: ttlMs === undefined ? Infinity : Date.now() + ttlMs, expirySeen: false });
      counters.tokensIssued += 1;
      // Without a TTL a token never expires, and saying nothing tells the client so.
      return sendJson(response, 200, ttlMs === undefined || options.hideTokenTtl ? { token } : { token, expiresInMs: ttlMs });
    }

    if (method === 'POST' && path === '/payments') return postPayment(request, response, rawBody);

    const paymentMatch = /^\/payments\/([^/]+)$/.exec(path);
    if (method === 'GET' && (path === '/payments' || paymentMatch)) {
      recordArrival(Date.now());
      await refuseSlowly(() => {
        ensureUp();
        authorize(request);
      });
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
    issuedTokens: () => [...tokens.keys()],
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
  const every = numberFromEnv('PAYMENTS_429_EVERY');
  const retryAfterSeconds = numberFromEnv('PAYMENTS_RETRY_AFTER_SECONDS') ?? 1;
  return {
    port: numberFromEnv('PAYMENTS_PORT'),
    latencyMs: numberFromEnv('PAYMENTS_LATENCY_MS'),
    failureRate: numberFromEnv('PAYMENTS_FAILURE_RATE'),
    rateLimit: perSecond === undefined ? undefined : { perSecond, retryAfterSeconds },
    periodicRateLimit: every === undefined ? undefined : { every, retryAfterSeconds },
    tokenTtlMs: numberFromEnv('PAYMENTS_TOKEN_TTL_MS'),
    hideTokenTtl: process.env.PAYMENTS_HIDE_TOKEN_TTL === '1',
    hangRate: numberFromEnv('PAYMENTS_HANG_RATE'),
    lostResponseRate: numberFromEnv('PAYMENTS_LOST_RESPONSE_RATE'),
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
