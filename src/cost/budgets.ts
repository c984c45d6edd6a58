// Spend budgets, checked before each model call with the call's estimated cost: per workflow, per
// user per day, per department per month, per agent per hour. A call that would take a budget
// over its limit does not happen: the workflow is parked (waiting for 'budget', resumable with
// `keel resume` once the window has passed or the limit was raised) or failed, per policy, and the
// park or failure is journaled and audited with the reason.
//
// Counters live in the store's database (rate-limiter-flexible, table keel_rate_spend), so every
// worker on the store shares them; in memory when the store offers no backend. Windows are fixed
// from a key's first charge (a "day" is 24 h from the user's first priced call in it), not
// calendar days. A call is charged when its decision comes back, before that decision is
// committed: a crash in between charges it twice, erring on the side of spending less.

import { RateLimiterMemory, RateLimiterSQLite, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Principal, RateLimiterBackend, Store } from '../store/types.js';

export interface BudgetLimits {
  perWorkflowUsd?: number;
  perUserPerDayUsd?: number;
  perDepartmentPerMonthUsd?: number;
  perAgentPerHourUsd?: number;
  /** What an exceeded budget does to the workflow (default 'park'). */
  onExceeded?: 'park' | 'fail';
  /** Tokens assumed for a call before a workflow has made one (default 2000 in, 500 out). */
  estimateTokens?: { inputTokens: number; outputTokens: number };
}

export interface BudgetCall {
  workflowId: string;
  agent: string;
  principal: Principal;
  /** What the workflow has spent so far, over all its runs. */
  workflowSpentUsd: number;
  estimateUsd: number;
}

export interface BudgetRefusal {
  budget: 'workflow' | 'user-day' | 'department-month' | 'agent-hour';
  limitUsd: number;
  spentUsd: number;
  estimateUsd: number;
  message: string;
}

const microsPerUsd = 1_000_000;
const spendTable = 'keel_rate_spend';
type WindowBudget = { budget: Exclude<BudgetRefusal['budget'], 'workflow'>; limitUsd: number; seconds: number; key: (call: BudgetCall) => string | undefined; what: (call: BudgetCall) => string };

export class SpendBudgets {
  readonly onExceeded: 'park' | 'fail';
  readonly estimateTokens: { inputTokens: number; outputTokens: number };
  private readonly windows: WindowBudget[] = [];
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private readonly ready: Promise<void>;

  constructor(
    private readonly limits: BudgetLimits,
    store?: Pick<Store, 'rateLimiterBackend'>,
  ) {
    this.onExceeded = limits.onExceeded ?? 'park';
    this.estimateTokens = limits.estimateTokens ?? { inputTokens: 2000, outputTokens: 500 };
    if (limits.perUserPerDayUsd !== undefined) {
      this.windows.push({ budget: 'user-day', limitUsd: limits.perUserPerDayUsd, seconds: 86_400, key: (call) => call.principal.id, what: (call) => `user '${call.principal.id}' per day` });
    }
    if (limits.perDepartmentPerMonthUsd !== undefined) {
      this.windows.push({
        budget: 'department-month',
        limitUsd: limits.perDepartmentPerMonthUsd,
        seconds: 30 * 86_400,
        key: (call) => call.principal.department,
        what: (call) => `department '${call.principal.department}' per month (30 days)`,
      });
    }
    if (limits.perAgentPerHourUsd !== undefined) {
      this.windows.push({ budget: 'agent-hour', limitUsd: limits.perAgentPerHourUsd, seconds: 3600, key: (call) => call.agent, what: (call) => `agent '${call.agent}' per hour` });
    }
    const backend: RateLimiterBackend = store?.rateLimiterBackend?.() ?? { kind: 'memory' };
    this.ready = this.createLimiters(backend);
    this.ready.catch(() => undefined);
  }

  /** Why this call may not be made, or undefined when every budget has room for its estimate. */
  async check(call: BudgetCall): Promise<BudgetRefusal | undefined> {
    const { perWorkflowUsd } = this.limits;
    if (perWorkflowUsd !== undefined && call.workflowSpentUsd + call.estimateUsd > perWorkflowUsd) {
      return this.refusal('workflow', `workflow ${call.workflowId}`, perWorkflowUsd, call.workflowSpentUsd, call.estimateUsd);
    }
    await this.ready;
    for (const window of this.windows) {
      const key = window.key(call);
      if (key === undefined) continue;
      const used = await this.limiters.get(window.budget)!.get(key);
      const spentUsd = (used?.consumedPoints ?? 0) / microsPerUsd;
      if (spentUsd + call.estimateUsd > window.limitUsd) return this.refusal(window.budget, window.what(call), window.limitUsd, spentUsd, call.estimateUsd);
    }
    return undefined;
  }

  /** Adds a call's actual cost to every window budget it counts against. */
  async charge(call: Omit<BudgetCall, 'workflowSpentUsd' | 'estimateUsd'>, usd: number): Promise<void> {
    const micros = Math.round(usd * microsPerUsd);
    if (micros <= 0) return;
    await this.ready;
    for (const window of this.windows) {
      const key = window.key({ ...call, workflowSpentUsd: 0, estimateUsd: 0 });
      if (key !== undefined) await this.limiters.get(window.budget)!.penalty(key, micros);
    }
  }

  private refusal(budget: BudgetRefusal['budget'], what: string, limitUsd: number, spentUsd: number, estimateUsd: number): BudgetRefusal {
    const next = this.onExceeded === 'park' ? 'The workflow is parked (waiting for budget); resume it with `keel resume <id>` once the window has passed or the limit was raised.' : 'The workflow fails.';
    return {
      budget,
      limitUsd,
      spentUsd,
      estimateUsd,
      message: `The budget of ${what} is $${limitUsd.toFixed(6)}; $${spentUsd.toFixed(6)} is spent and the next model call is estimated at $${estimateUsd.toFixed(6)}, so it is not made. ${next}`,
    };
  }

  private async createLimiters(backend: RateLimiterBackend): Promise<void> {
    let tableCreated = false;
    for (const window of this.windows) {
      const options = { keyPrefix: `spend-${window.budget}`, points: Math.max(1, Math.round(window.limitUsd * microsPerUsd)), duration: window.seconds };
      if (backend.kind === 'memory') {
        this.limiters.set(window.budget, new RateLimiterMemory(options));
        continue;
      }
      const db = backend.db;
      await new Promise<void>((resolve, reject) => {
        const limiter = new RateLimiterSQLite({ ...options, storeClient: db, storeType: 'better-sqlite3', tableName: spendTable, tableCreated }, (error) => (error ? reject(error) : resolve()));
        this.limiters.set(window.budget, limiter);
        if (tableCreated) resolve();
      });
      tableCreated = true;
    }
  }
}
