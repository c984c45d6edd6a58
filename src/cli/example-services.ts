// The example agents' outside world. The expense-approval agent pays through a payments service
// whose URL its tools read from EXPENSE_PAYMENTS_URL at call time; when that is unset, `keel run`
// and `keel resume` start the example service on 127.0.0.1 for the run, so the example works
// standalone. The variable is set in process.env because that is where the tools read it.

import type { CliIo } from './io.js';
import type { LoadedAgent } from './agent-loader.js';
import { packageModuleUrl } from './package-files.js';

export const paymentsUrlVariable = 'EXPENSE_PAYMENTS_URL';

/** The fault modes the CLI sets (a subset of PaymentsServiceOptions in examples/expense-approval/payments-service.ts). */
export interface ExamplePaymentsOptions {
  latencyMs?: number;
  failureRate?: number;
  periodicRateLimit?: { every: number; retryAfterSeconds: number };
  tokenTtlMs?: number;
  hideTokenTtl?: boolean;
  hangRate?: number;
}

/** What the CLI uses of examples/expense-approval/payments-service.ts. */
export interface ExamplePaymentsService {
  url: string;
  ledger(): { claimId: string; idempotencyKey: string }[];
  stats(): { failed503: number; rateLimited: number; unauthorized: number; hung: number; tokensIssued: number; tokensExpired: number };
  close(): Promise<void>;
}

interface PaymentsServiceModule {
  startPaymentsService(options?: ExamplePaymentsOptions): Promise<ExamplePaymentsService>;
}

export async function startExamplePayments(options: ExamplePaymentsOptions = {}): Promise<ExamplePaymentsService> {
  const module = (await import(packageModuleUrl('examples/expense-approval/payments-service').href)) as PaymentsServiceModule;
  return module.startPaymentsService(options);
}

/** Points the example's tools at `url` until the returned function restores the previous value. */
export function usePaymentsUrl(url: string): () => void {
  const previous = process.env[paymentsUrlVariable];
  process.env[paymentsUrlVariable] = url;
  return () => {
    if (previous === undefined) delete process.env[paymentsUrlVariable];
    else process.env[paymentsUrlVariable] = previous;
  };
}

/** Runs `work`, with the example payments service running if the agent needs it and none is configured. */
export async function withExampleServices<T>(loaded: LoadedAgent, io: CliIo, work: () => Promise<T>): Promise<T> {
  if (loaded.builtin !== 'expense-approval' || process.env[paymentsUrlVariable]) return work();
  const service = await startExamplePayments();
  const restore = usePaymentsUrl(service.url);
  io.stderr.write(`payments: started the example payments service at ${service.url} for this run (set ${paymentsUrlVariable} to use another)\n`);
  try {
    return await work();
  } finally {
    restore();
    await service.close();
  }
}
