import { afterEach, describe, expect, it } from 'vitest';
import { startPaymentsService, type PaymentsService, type PaymentsServiceOptions } from './payments-service.js';

const claim = { claimId: 'claim-1', amount: 42.5, currency: 'EUR', payee: 'alice@example.com' };

// A claim is paid once whatever the key, so tests that make several payments use distinct claims.
const claimNumbered = (number: number) => ({ ...claim, claimId: `claim-${number}` });

let services: PaymentsService[] = [];

afterEach(async () => {
  await Promise.all(services.map((service) => service.close()));
  services = [];
});

async function start(options: PaymentsServiceOptions = {}): Promise<PaymentsService> {
  const service = await startPaymentsService(options);
  services.push(service);
  return service;
}

interface PayOptions {
  key?: string | null;
  token?: string;
  signal?: AbortSignal;
  rawBody?: string;
}

function pay(service: PaymentsService, body: object = claim, options: PayOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  const key = options.key === undefined ? 'key-1' : options.key;
  if (key !== null) headers['Idempotency-Key'] = key;
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  return fetch(`${service.url}/payments`, {
    method: 'POST',
    headers,
    body: options.rawBody ?? JSON.stringify(body),
    signal: options.signal,
  });
}

async function issueToken(service: PaymentsService): Promise<string> {
  const response = await fetch(`${service.url}/token`, { method: 'POST' });
  const body = (await response.json()) as { token: string };
  return body.token;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('payments service', () => {
  it('creates a payment and serves it back', async () => {
    const service = await start();
    const response = await pay(service);
    expect(response.status).toBe(201);
    const { payment } = (await response.json()) as { payment: { id: string } };
    expect(payment).toMatchObject({ ...claim, idempotencyKey: 'key-1' });
    expect(service.ledger()).toEqual([payment]);

    const byId = await fetch(`${service.url}/payments/${payment.id}`);
    expect(await byId.json()).toEqual(payment);
    const list = await fetch(`${service.url}/payments`);
    expect(await list.json()).toEqual({ payments: [payment] });
    expect((await fetch(`${service.url}/payments/nope`)).status).toBe(404);
    expect((await fetch(`${service.url}/health`)).status).toBe(200);
    expect((await fetch(`${service.url}/elsewhere`)).status).toBe(404);
  });

  it('replays a repeated key with the same payment and keeps one ledger entry', async () => {
    const service = await start();
    const first = (await (await pay(service)).json()) as { payment: { id: string } };
    const replay = await pay(service);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    const second = (await replay.json()) as { payment: { id: string } };
    expect(second.payment).toEqual(first.payment);
    expect(service.ledger()).toHaveLength(1);
    expect(service.stats()).toMatchObject({ created: 1, replayed: 1 });
  });

  it('creates one payment for concurrent requests with the same key', async () => {
    const service = await start({ latencyMs: 20 });
    const responses = await Promise.all([pay(service), pay(service), pay(service)]);
    expect(responses.map((response) => response.status).sort()).toEqual([200, 200, 201]);
    const bodies = (await Promise.all(responses.map((response) => response.json()))) as Array<{
      payment: { id: string };
    }>;
    expect(new Set(bodies.map((body) => body.payment.id)).size).toBe(1);
    expect(service.ledger()).toHaveLength(1);
  });

  it('rejects a key reused with a different body', async () => {
    const service = await start();
    await pay(service);
    const response = await pay(service, { ...claim, amount: 99 });
    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({ error: 'idempotency_key_reused' });
    expect(service.ledger()).toHaveLength(1);
  });

  it('refuses a second payment for the same claim under a different key', async () => {
    const service = await start();
    expect((await pay(service, claim, { key: 'key-1' })).status).toBe(201);
    const resubmitted = await pay(service, claim, { key: 'key-2' });
    expect(resubmitted.status).toBe(409);
    expect(await resubmitted.json()).toEqual({ error: 'duplicate_claim', claimId: 'claim-1' });
    // Even with different payment details the claim stays paid once.
    const altered = await pay(service, { ...claim, amount: 10 }, { key: 'key-3' });
    expect(altered.status).toBe(409);
    expect(service.ledger()).toHaveLength(1);
    expect(service.ledger()[0]).toMatchObject({ claimId: 'claim-1', idempotencyKey: 'key-1' });
    // The original key still replays the original payment.
    expect((await pay(service, claim, { key: 'key-1' })).status).toBe(200);
  });

  it('requires an idempotency key', async () => {
    const service = await start();
    const response = await pay(service, claim, { key: null });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'missing_idempotency_key' });
  });

  it('rejects malformed JSON and invalid bodies', async () => {
    const service = await start();
    const malformed = await pay(service, claim, { rawBody: '{"claimId":' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: 'malformed_json' });

    const invalid = await pay(service, { ...claim, currency: 'EURO' }, { key: 'key-2' });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ error: 'invalid_request' });
    expect(service.ledger()).toHaveLength(0);
  });

  it('answers 503 when failureRate is 1', async () => {
    const service = await start({ failureRate: 1, random: () => 0.5 });
    const response = await pay(service);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: 'unavailable' });
    expect(service.ledger()).toHaveLength(0);
    expect(service.stats().failed503).toBe(1);
  });

  it('rate limits with 429 and Retry-After', async () => {
    const service = await start({ rateLimit: { perSecond: 2, retryAfterSeconds: 7 } });
    expect((await pay(service, claimNumbered(1), { key: 'a' })).status).toBe(201);
    expect((await pay(service, claimNumbered(2), { key: 'b' })).status).toBe(201);
    const limited = await pay(service, claimNumbered(3), { key: 'c' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(service.stats()).toMatchObject({ rateLimited: 1, maxPerSecond: 3, paymentRequests: 3 });
  });

  it('expires tokens after tokenTtlMs', async () => {
    const service = await start({ tokenTtlMs: 50 });
    const missing = await pay(service, claim, { key: 'a' });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: 'invalid_token' });

    const token = await issueToken(service);
    expect((await pay(service, claim, { key: 'a', token })).status).toBe(201);

    await delay(80);
    const expired = await pay(service, claimNumbered(2), { key: 'b', token });
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual({ error: 'token_expired' });

    const fresh = await issueToken(service);
    expect((await pay(service, claimNumbered(2), { key: 'b', token: fresh })).status).toBe(201);
    expect(service.stats()).toMatchObject({ tokensIssued: 2, unauthorized: 2 });
  });

  it('answers every Nth payment request with 429 and Retry-After (periodicRateLimit)', async () => {
    const service = await start({ periodicRateLimit: { every: 3, retryAfterSeconds: 2 } });
    const statuses: number[] = [];
    const retryAfter: (string | null)[] = [];
    for (let number = 1; number <= 6; number++) {
      const response = await pay(service, claimNumbered(number), { key: `k-${number}` });
      statuses.push(response.status);
      retryAfter.push(response.headers.get('retry-after'));
    }
    expect(statuses).toEqual([201, 201, 429, 201, 201, 429]);
    expect(retryAfter.filter((value) => value !== null)).toEqual(['2', '2']);
    expect(service.stats()).toMatchObject({ rateLimited: 2, created: 4 });
  });

  it('makes the payment but loses the answer (lostResponseRate); a retry with the key replays it', async () => {
    const draws = [0];
    const service = await start({ lostResponseRate: 0.5, random: () => draws.shift() ?? 0.99 });
    await expect(pay(service, claim, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect(service.ledger()).toHaveLength(1);
    const retry = await pay(service);
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as { payment: { id: string } }).payment.id).toBe(service.ledger()[0]!.id);
    expect(service.stats()).toMatchObject({ lostResponses: 1, created: 1, replayed: 1 });
  });

  it('says how long a token lasts only when tokens expire and hideTokenTtl is off', async () => {
    const tokenBody = async (service: PaymentsService) => (await (await fetch(`${service.url}/token`, { method: 'POST' })).json()) as Record<string, unknown>;
    expect(Object.keys(await tokenBody(await start()))).toEqual(['token']);
    expect(await tokenBody(await start({ tokenTtlMs: 500 }))).toMatchObject({ expiresInMs: 500 });
    expect(Object.keys(await tokenBody(await start({ tokenTtlMs: 500, hideTokenTtl: true })))).toEqual(['token']);
  });

  it('needs a token for reads too, and counts each expired token once however often it is refused', async () => {
    const service = await start({ tokenTtlMs: 30 });
    expect((await fetch(`${service.url}/payments`)).status).toBe(401);
    const token = await issueToken(service);
    const list = () => fetch(`${service.url}/payments`, { headers: { Authorization: `Bearer ${token}` } });
    expect((await list()).status).toBe(200);
    await delay(50);
    expect((await list()).status).toBe(401);
    expect((await pay(service, claim, { token })).status).toBe(401);
    expect(service.stats()).toMatchObject({ tokensIssued: 1, tokensExpired: 1, unauthorized: 3 });
    expect(service.issuedTokens()).toEqual([token]);
  });

  it('counts the calls to /payments per second, reads and payments alike, but not token requests', async () => {
    const service = await start();
    await issueToken(service);
    await fetch(`${service.url}/payments`);
    await pay(service);
    expect(service.stats()).toMatchObject({ requests: 3, calls: 2, paymentRequests: 1, maxPerSecond: 2 });
  });

  it('hangs until the client aborts, and close() still returns promptly', async () => {
    const service = await start({ hangRate: 1, random: () => 0 });
    await expect(pay(service, claim, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect(service.stats().hung).toBe(1);
    expect(service.ledger()).toHaveLength(0);

    // A request still hanging when the server closes must not block close().
    const pending = pay(service, claim, { key: 'still-hanging' }).catch((error: unknown) => error);
    await delay(20);
    const startedAt = Date.now();
    await service.close();
    expect(Date.now() - startedAt).toBeLessThan(500);
    expect(await pending).toBeInstanceOf(Error);
  });

  it('answers 503 while down and recovers after setDown(false)', async () => {
    const service = await start({ down: true });
    expect((await pay(service)).status).toBe(503);
    service.setDown(false);
    expect((await pay(service)).status).toBe(201);
    service.setOptions({ down: true });
    expect((await fetch(`${service.url}/payments`)).status).toBe(503);
    // The token endpoint shares the outage.
    expect((await fetch(`${service.url}/token`, { method: 'POST' })).status).toBe(503);
    expect(service.stats().tokensIssued).toBe(0);
  });
});
