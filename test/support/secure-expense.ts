// The expense-approval example with permissions enforced, for the security tests: a temporary
// SQLite store and a Keel instance sharing one ManualClock (grant expiry and sessions move only
// when a test says so), the example's payments service on 127.0.0.1, and helpers to grant what the
// example's tools need. Call close() in afterEach: it stops the service and deletes the folder.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeel, defineAgent, defineTool, openSqliteStore, type Agent, type AnyTool, type Keel, type KeelOptions, type SqliteStore } from '../../src/index.js';
import { addGrant, type GrantRequest } from '../../src/security/grants.js';
import type { Grant } from '../../src/store/types.js';
import { ManualClock, scriptedModel, type Script } from '../../src/testing.js';
import { expenseApprovalUnattended, script } from '../../examples/expense-approval/agent.js';
import { formatClaimDocument, type ClaimTask, type ExpenseClaim } from '../../examples/expense-approval/claim-document.js';
import { startPaymentsService, type PaymentsService } from '../../examples/expense-approval/payments-service.js';

const paymentsUrlVariable = 'EXPENSE_PAYMENTS_URL';

/** The permission each example tool declares. */
export const toolPermissions = {
  extract_claim: 'claims:read',
  check_policy: 'payments:read',
  pay_claim: 'payments:write',
  generate_report: 'reports:write',
  reject_claim: 'claims:reject',
} as const;
export type ExampleTool = keyof typeof toolPermissions;

export interface SecureExpenseWorld {
  readonly dir: string;
  readonly store: SqliteStore;
  readonly clock: ManualClock;
  readonly keel: Keel;
  readonly payments: PaymentsService;
  /** Grants `principal` every permission of the example for its task type, except those listed. */
  grantAll(principal: string, except?: readonly string[]): Promise<Record<string, Grant>>;
  grant(request: Omit<GrantRequest, 'by'> & { by?: string }): Promise<Grant>;
  close(): Promise<void>;
}

export interface WorldOptions {
  agent?: Agent;
  script?: Script;
  keel?: Partial<KeelOptions>;
}

export async function openSecureExpenseWorld(options: WorldOptions = {}): Promise<SecureExpenseWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-security-'));
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 9, 0, 0));
  const store = openSqliteStore({ path: join(dir, 'keel.db'), clock });
  const payments = await startPaymentsService();
  const previousUrl = process.env[paymentsUrlVariable];
  process.env[paymentsUrlVariable] = payments.url;
  const restore = async () => {
    if (previousUrl === undefined) delete process.env[paymentsUrlVariable];
    else process.env[paymentsUrlVariable] = previousUrl;
    await payments.close();
    rmSync(dir, { recursive: true, force: true });
  };
  let keel: Keel;
  try {
    keel = createKeel({ store, clock, agents: [options.agent ?? expenseApprovalUnattended], model: scriptedModel(options.script ?? script), security: {}, ...options.keel });
  } catch (error) {
    await store.close();
    await restore();
    throw error;
  }
  const grant = (request: Omit<GrantRequest, 'by'> & { by?: string }) => addGrant(store, { by: 'ops-admin', ...request }, clock.now());
  return {
    dir,
    store,
    clock,
    keel,
    payments,
    grant,
    async grantAll(principal, except = []) {
      const grants: Record<string, Grant> = {};
      for (const permission of expenseApprovalUnattended.permissions ?? []) {
        if (!except.includes(permission)) grants[permission] = await grant({ principalId: principal, permission, taskTypes: [expenseApprovalUnattended.name] });
      }
      return grants;
    },
    async close() {
      await keel.close();
      await restore();
    },
  };
}

/** A claim the example pays: within the travel limit, with a receipt. */
export function cleanClaim(claimId: string, changes: Partial<ExpenseClaim> = {}): ClaimTask {
  const claim: ExpenseClaim = {
    claimId,
    employee: 'alice@example.com',
    category: 'travel',
    amount: 412.5,
    currency: 'EUR',
    date: '2026-05-12',
    receipt: true,
    payee: 'DE89370400440532013000',
    description: 'Train to Berlin for the customer workshop',
    ...changes,
  };
  return { claimId, document: formatClaimDocument(claim) };
}

/** A claim whose document the parser refuses, so the clerk calls reject_claim. */
export function malformedClaim(claimId: string): ClaimTask {
  return { claimId, document: cleanClaim(claimId).document.replace(/^Amount:.*$/m, 'Amount: twelve euros') };
}

/** The agent with `after` run when tool `name` has returned: to change grants between two calls. */
export function afterTool(agent: Agent, name: string, after: () => Promise<void>): Agent {
  const tools = agent.tools.map((tool): AnyTool => {
    if (tool.name !== name) return tool;
    return defineTool({
      ...tool,
      execute: async (args: unknown, context) => {
        try {
          return await tool.execute(args, context);
        } finally {
          await after();
        }
      },
    });
  });
  return defineAgent({ ...agent, tools });
}
