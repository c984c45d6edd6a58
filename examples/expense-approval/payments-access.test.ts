// How the example reaches the payments service: the rate budget read from EXPENSE_PAYMENTS_RATE,
// and the token fetch behind the credential provider, against the real example service.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ToolError } from '../../src/index.js';
import { defaultPaymentsRate, paymentsRate, paymentsService } from './payments-access.js';
import { fetchPaymentsToken } from './payments-client.js';
import { startPaymentsService, type PaymentsService } from './payments-service.js';

let service: PaymentsService | undefined;

afterEach(async () => {
  vi.unstubAllEnvs();
  await service?.close();
  service = undefined;
});

describe('payments access', () => {
  it('budgets the default rate unless EXPENSE_PAYMENTS_RATE says otherwise, and refuses a rate that is not one', () => {
    expect(paymentsRate({})).toBe(defaultPaymentsRate);
    expect(paymentsRate({ EXPENSE_PAYMENTS_RATE: '' })).toBe(defaultPaymentsRate);
    expect(paymentsRate({ EXPENSE_PAYMENTS_RATE: '7.5' })).toBe(7.5);
    expect(() => paymentsRate({ EXPENSE_PAYMENTS_RATE: 'fast' })).toThrow("EXPENSE_PAYMENTS_RATE must be a positive number of calls per second (got 'fast')");
    expect(() => paymentsRate({ EXPENSE_PAYMENTS_RATE: '0' })).toThrow(/positive number/);
    expect(paymentsService.rateLimit).toEqual({ perSecond: paymentsRate() });
    expect(paymentsService.breaker).toMatchObject({ consecutiveFailures: 5 });
    expect(paymentsService.credentials?.service).toBe('payments');
  });

  it('fetches a token with its expiry when the service says it, and without when it does not', async () => {
    service = await startPaymentsService({ tokenTtlMs: 1_000 });
    vi.stubEnv('EXPENSE_PAYMENTS_URL', service.url);
    const before = Date.now();
    const issued = await fetchPaymentsToken(AbortSignal.timeout(1_000));
    expect(service.issuedTokens()).toEqual([issued.token]);
    expect(issued.expiresAt).toBeGreaterThanOrEqual(before + 1_000);
    service.setOptions({ hideTokenTtl: true });
    expect((await fetchPaymentsToken(AbortSignal.timeout(1_000))).expiresAt).toBeUndefined();
  });

  it('reports a token endpoint that is down as transient, so the call backs off', async () => {
    service = await startPaymentsService({ down: true });
    vi.stubEnv('EXPENSE_PAYMENTS_URL', service.url);
    const error = await fetchPaymentsToken(AbortSignal.timeout(1_000)).catch((failure: unknown) => failure);
    expect(ToolError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ errorClass: 'transient' });
    expect((error as Error).message).toContain(`Fetching a token (POST ${service.url}/token) failed with HTTP 503`);
  });
});
