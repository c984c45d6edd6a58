// How Keel treats the payments service the expense-approval tools call: one circuit breaker per
// worker process, one rate budget shared by every worker on the store, and one credential
// provider per process that fetches bearer tokens from the service's token endpoint and
// refreshes them (single-flight) when they are about to expire or the service rejects one.
// The tools only name the service (`service: 'payments'`) and ask `ctx.credentials()`.

import { createCredentialProvider, type ServiceConfig } from '../../src/index.js';
import { fetchPaymentsToken } from './payments-client.js';

export const paymentsServiceName = 'payments';

/** Calls per second all workers together may make to the payments service, unless EXPENSE_PAYMENTS_RATE says otherwise. */
export const defaultPaymentsRate = 20;

export const paymentsRateVariable = 'EXPENSE_PAYMENTS_RATE';

/** The budget in calls per second: EXPENSE_PAYMENTS_RATE when set, else the default. Read once, when the agent is defined. */
export function paymentsRate(environment: NodeJS.ProcessEnv = process.env): number {
  const raw = environment[paymentsRateVariable];
  if (raw === undefined || raw.trim() === '') return defaultPaymentsRate;
  const rate = Number(raw);
  if (!Number.isFinite(rate) || rate <= 0) {
    throw new Error(`${paymentsRateVariable} must be a positive number of calls per second (got '${raw}'); unset it to use ${defaultPaymentsRate}.`);
  }
  return rate;
}

/** One per process: every workflow this worker runs shares the token, and one refresh serves them all. */
export const paymentsCredentials = createCredentialProvider({
  service: paymentsServiceName,
  fetchToken: fetchPaymentsToken,
  // The example service answers at once; a token endpoint that hangs this long is down.
  refreshTimeoutMs: 5_000,
  // After three failed refreshes in a row, wait as long as the breaker waits before a probe.
  maxFailures: 3,
  failureCooldownMs: 5_000,
});

export const paymentsService: ServiceConfig = {
  // Five failures in a row (503s, 429s, timeouts; not 401s or refused payments) open the
  // breaker; one probe call goes through 5 s later.
  breaker: { consecutiveFailures: 5, halfOpenAfterMs: 5_000 },
  rateLimit: { perSecond: paymentsRate() },
  credentials: paymentsCredentials,
};
