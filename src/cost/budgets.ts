// Spend budgets, checked before each model call with the call's estimated cost: per workflow, per
// user per day, per department per month, per agent per hour. A call that would take a budget
// over its limit does not happen: the workflow is parked or failed, per policy, and the park or
// failure is journaled and audited with the reason. A parked workflow wakes by itself when the
// budget renews (a workflow's own budget never does: it waits for `keel resume` after the limit
// was raised).
//
// Windows are calendar periods in UTC, as finance counts them: a user's day runs from midnight
// to midnight, a department's month from the 1st, an agent's hour from the full hour. Each
// period has its own counter (the period is part of the key), so a new one starts from zero.
//
// Counters live in the store's database (rate-limiter-flexible, table keel_rate_spend), so every
// worker on the store shares them; in memory when the store offers no backend. A call is charged
// when its decision comes back, before that decision is committed: a crash in between charges it
// twice, erring on the side of spending less.

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
  /** When the budget renews (the next period starts), for a window budget; a workflow's own never does. */
  renewsAt?: number;
}

const microsPerUsd = 1_000_000;
const spendTable = 'keel_rate_spend';
type Period = 'hour' | 'day' | 'month';
type WindowBudget = { budget: Exclude<BudgetRefusal['budget'], 'workflow'>; limitUsd: number; period: Period; key: (call: BudgetCall) => string | undefined; what: (call: BudgetCall) => string };

/** The longest a period can be: a counter must outlive the period it was first charged in. */
const periodSeconds: Record<Period, number> = { hour: 3600, day: 86_400, month: 31 * 86_400 };

/** The UTC calendar period `now` falls in: its label (part of the counter's key) and when the next one starts. */
export function calendarPeriod(period: Period, now: number): { label: string; endsAt: number } {
  const at = new Date(now);
  const [year, month, day, hour] = [at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate(), at.getUTCHours()];
  const iso = at.toISOString();
  if (period === 'hour') return { label: iso.slice(0, 13), endsAt: Date.UTC(year, month, day, hour + 1) };
  if (period === 'day') return { label: iso.slice(0, 10), endsAt: Date.UTC(year, month, day + 1) };
  return { label: iso.slice(0, 7), endsAt: Date.UTC(year, month + 1, 1) };
}

export class SpendBudgets {
  readonly onExceeded: 'park' | 'fail';
  readonly estimateTokens: { inputTokens: number; outputTokens: number };
  private readonly windows: WindowBudget[] = [];
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private readonly ready: Promise<void>;

  constructor(
    private readonly limits: BudgetLimits,
    store?: Pick<Store, 'rateLimiterBackend'>,
    private readonly now: () => number = Date.now,
  ) {
    this.onExceeded = limits.onExceeded ?? 'park';
    this.estimateTokens = limits.estimateTokens ?? { inputTokens: 2000, outputTokens: 500 };
    if (limits.perUserPerDayUsd !== undefined) {
      this.windows.push({ budget: 'user-day', limitUsd: limits.perUserPerDayUsd, period: 'day', key: (call) => call.principal.id, what: (call) => `user '${call.principal.id}' per day (UTC)` });
    }
    if (limits.perDepartmentPerMonthUsd !== undefined) {
      this.windows.push({
        budget: 'department-month',
        limitUsd: limits.perDepartmentPerMonthUsd,
        period: 'month',
        key: (call) => call.principal.department,
        what: (call) => `department '${call.principal.department}' per calendar month (UTC)`,
      });
    }
    if (limits.perAgentPerHourUsd !== undefined) {
      this.windows.push({ budget: 'agent-hour', limitUsd: limits.perAgentPerHourUsd, period: 'hour', key: (call) => call.agent, what: (call) => `agent '${call.agent}' per hour` });
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
    const now = this.now();
    for (const window of this.windows) {
      const key = window.key(call);
      if (key === undefined) continue;
      const period = calendarPeriod(window.period, now);
      const used = await this.limiters.get(window.budget)!.get(`${key}@${period.label}`);
      const spentUsd = (used?.consumedPoints ?? 0) / microsPerUsd;
      if (spentUsd + call.estimateUsd > window.limitUsd) return this.refusal(window.budget, window.what(call), window.limitUsd, spentUsd, call.estimateUsd, period.endsAt);
    }
    return undefined;
  }

  /** Adds a call's actual cost to every window budget it counts against. */
  async charge(call: Omit<BudgetCall, 'workflowSpentUsd' | 'estimateUsd'>, usd: number): Promise<void> {
    const micros = Math.round(usd * microsPerUsd);
    if (micros <= 0) return;
    await this.ready;
    const now = this.now();
    for (const window of this.windows) {
      const key = window.key({ ...call, workflowSpentUsd: 0, estimateUsd: 0 });
      if (key !== undefined) await this.limiters.get(window.budget)!.penalty(`${key}@${calendarPeriod(window.period, now).label}`, micros);
    }
  }

  private refusal(budget: BudgetRefusal['budget'], what: string, limitUsd: number, spentUsd: number, estimateUsd: number, renewsAt?: number): BudgetRefusal {
    const next =
      this.onExceeded === 'fail'
        ? 'The workflow fails.'
        : renewsAt === undefined
          ? 'The workflow is parked (waiting for budget); raise the limit, then resume it with `keel resume <id>`.'
          : `The budget renews at ${new Date(renewsAt).toISOString()}: the workflow is parked (waiting for budget) until then and goes on by itself; to go on sooner, raise the limit and \`keel resume <id>\`.`;
    return {
      budget,
      limitUsd,
      spentUsd,
      estimateUsd,
      message: `The budget of ${what} is $${limitUsd.toFixed(6)}; $${spentUsd.toFixed(6)} is spent and the next model call is estimated at $${estimateUsd.toFixed(6)}, so it is not made. ${next}`,
      ...(renewsAt !== undefined ? { renewsAt } : {}),
    };
  }

  private async createLimiters(backend: RateLimiterBackend): Promise<void> {
    let tableCreated = false;
    for (const window of this.windows) {
      const options = { keyPrefix: `spend-${window.budget}`, points: Math.max(1, Math.round(window.limitUsd * microsPerUsd)), duration: periodSeconds[window.period] };
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
