// The resilient tool runner: every tool call goes through it. Per downstream service it keeps a
// circuit breaker (shared by all workflows of this worker), a rate budget (shared by all workers
// of the store) and a credential provider; per call it classifies failures, chooses the next
// move (retry after a delay, refresh credentials, hand the error to the decider, fall back, fail)
// and redacts secrets from what it reports. It holds no workflow state: the step loop journals
// each attempt and parks the workflow durably when a wait is too long to hold the worker.

import { KeelError, errorMessage } from '../errors.js';
import type { Principal, Store } from '../store/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { createRedactor, type Redactor } from '../util/redact.js';
import { nextRetry, type BackoffPolicy, type RetryDecision } from './backoff.js';
import { callTool } from './call-tool.js';
import { BreakerOpenError, createCircuitBreakers, type BreakerConfig, type BreakerStateListener, type CircuitBreakers } from './circuit-breakers.js';
import type { CredentialProvider } from './credentials.js';
import { createRateBudget, type BudgetConfig, type RateBudget } from './rate-budget.js';
import { classifyFailure, type ErrorClass, type FailureClassification } from './tool-error.js';
import type { AnyTool, ToolContext } from './tool.js';

/** How Keel treats one downstream service. */
export interface ServiceConfig {
  /** Circuit breaker settings; `false` for none. Default: opens after 5 consecutive failures, probes after 10 s. */
  breaker?: BreakerConfig | false;
  /** Calls allowed per second, per window, and per user; shared by every worker on the store. */
  rateLimit?: BudgetConfig;
  /** Hands tools a token (ctx.credentials()) and refreshes it. */
  credentials?: CredentialProvider;
}

export interface ToolRunnerOptions {
  services?: Record<string, ServiceConfig>;
  /** The store whose database holds the shared rate budgets (memory when absent). */
  store?: Store;
  clock?: Clock;
  /** Waits longer than this park the workflow durably instead of holding the worker (default 2 s). */
  parkAfterMs?: number;
  /** Uniform source in [0, 1) for backoff jitter; seed it in tests. */
  random?: () => number;
  /** Extra strings to keep out of journals, logs and messages (API keys the tools use). */
  secrets?: () => Iterable<string>;
  /** Configured sensitive field names (replaces the default list). */
  sensitiveKeys?: readonly string[];
}

/** Why a call cannot go now: the service's budget is spent or paused, or its breaker is open. */
export interface Blocked {
  reason: 'rate-limit' | 'circuit-open';
  service: string;
  waitMs: number;
  message: string;
}

export type AttemptResult =
  | { ok: true; result: unknown; durationMs: number }
  | {
      ok: false;
      error: unknown;
      classification: FailureClassification;
      message: string;
      durationMs: number;
      /** The tool's token came from a refresh made for this attempt (false: one already held). */
      freshCredentials?: boolean;
    }
  | { ok: false; blocked: Blocked; durationMs: number };

export interface FailureReport {
  tool: string;
  workflowId: string;
  step: number;
  errorClass: ErrorClass | string;
  attempt: number;
  maxAttempts: number;
  what: string;
  next: string;
}

const defaultParkAfterMs = 2_000;
const cachedResultsPerTool = 200;

export class ToolRunner {
  readonly breakers: CircuitBreakers;
  readonly budget: RateBudget;
  readonly redactor: Redactor;
  readonly parkAfterMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly services = new Map<string, ServiceConfig>();
  private readonly cache = new Map<string, Map<string, { result: unknown; at: number }>>();

  constructor(options: ToolRunnerOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.parkAfterMs = options.parkAfterMs ?? defaultParkAfterMs;
    this.breakers = createCircuitBreakers();
    this.budget = createRateBudget({ store: options.store });
    for (const [service, config] of Object.entries(options.services ?? {})) this.configure(service, config);
    this.redactor = createRedactor({
      secrets: () => [...(options.secrets?.() ?? []), ...[...this.services.values()].flatMap((config) => config.credentials?.secrets() ?? [])],
      sensitiveKeys: options.sensitiveKeys,
    });
  }

  /** Declares a service's settings; the first declaration wins (createKeel's, then the first agent's). */
  configure(service: string, config: ServiceConfig): void {
    if (this.services.has(service)) return;
    this.services.set(service, config);
    if (config.breaker) this.breakers.configure(service, config.breaker);
    if (config.rateLimit) this.budget.configure(service, config.rateLimit);
  }

  onBreakerChange(listener: BreakerStateListener): () => void {
    return this.breakers.onStateChange(listener);
  }

  /** Takes one call from the service's budget; a refusal says how long to wait. */
  async admit(tool: AnyTool, principal: Principal): Promise<Blocked | undefined> {
    const service = tool.service;
    if (!service) return undefined;
    const config = this.services.get(service);
    if (config?.breaker !== false) {
      const breaker = this.breakers.for(service);
      const retryAt = breaker.retryAt();
      // Breakers keep wall-clock time (cockatiel reads Date.now), whatever clock the runner has.
      const now = Date.now();
      if (breaker.state === 'open' && retryAt !== undefined && retryAt > now) {
        const waitMs = retryAt - now;
        return { reason: 'circuit-open', service, waitMs, message: `the circuit breaker of service '${service}' is open; a probe call may go in ${waitMs} ms` };
      }
    }
    // Asked even without a budget of the service's own: a 429 pauses every service (pause()).
    const taken = await this.budget.take(service, principal.id);
    if (taken.ok) return undefined;
    const which = taken.limit === 'paused' ? 'is paused after a 429' : taken.limit === 'user' ? `budget for user ${principal.id} is spent` : 'rate budget is spent';
    return { reason: 'rate-limit', service, waitMs: taken.waitMs, message: `service '${service}' ${which}; next call in ${taken.waitMs} ms` };
  }

  /** One attempt: through the service's breaker, with the tool's timeout and its credentials. */
  async attempt(tool: AnyTool, args: unknown, context: Omit<ToolContext, 'credentials'>): Promise<AttemptResult> {
    const started = performance.now();
    const provider = tool.service ? this.services.get(tool.service)?.credentials : undefined;
    let handedToken: string | undefined;
    let freshCredentials: boolean | undefined;
    const withCredentials: ToolContext = {
      ...context,
      credentials: async () => {
        if (!provider) {
          throw new KeelError(
            'INVALID_DEFINITION',
            `Tool '${tool.name}' asked for credentials, but ${tool.service ? `service '${tool.service}' has no credential provider` : 'it names no service'}. ` +
              `Give the tool a service and declare the service with credentials (createCredentialProvider) in the agent's or createKeel's services.`,
            { tool: tool.name, workflowId: context.workflowId, step: context.step },
          );
        }
        const refreshesBefore = provider.stats.refreshes;
        handedToken = await provider.get(context.signal);
        freshCredentials = provider.stats.refreshes > refreshesBefore;
        return handedToken;
      },
    };
    const call = () => callTool(tool, args, withCredentials);
    const breaker = tool.service && this.services.get(tool.service)?.breaker !== false ? this.breakers.for(tool.service) : undefined;
    try {
      const result = await (breaker ? breaker.run(call, { classify: (error) => classifyFailure(error, tool).errorClass }) : call());
      this.remember(tool, args, result);
      return { ok: true, result, durationMs: performance.now() - started };
    } catch (error) {
      const durationMs = performance.now() - started;
      if (BreakerOpenError.isInstance(error)) {
        const waitMs = Math.max(0, error.retryAtMs - Date.now());
        return { ok: false, blocked: { reason: 'circuit-open', service: error.service, waitMs, message: this.redactor.redactText(error.message) }, durationMs };
      }
      const classification = classifyFailure(error, tool, this.clock.now());
      if (classification.errorClass === 'auth-expired' && provider && handedToken) provider.invalidate(handedToken);
      if (classification.errorClass === 'rate-limited' && tool.service && classification.retryAfterMs) {
        await this.budget.pause(tool.service, classification.retryAfterMs);
      }
      return { ok: false, error, classification, message: this.redactor.redactText(errorMessage(error)), durationMs, freshCredentials };
    }
  }

  /** The tool's retry policy: `retry` settings, with `maxAttempts` as shorthand. */
  policyOf(tool: AnyTool): Partial<BackoffPolicy> {
    return { maxAttempts: tool.maxAttempts, ...tool.retry };
  }

  maxAttemptsOf(tool: AnyTool): number {
    return this.policyOf(tool).maxAttempts ?? 3;
  }

  retryDecision(
    tool: AnyTool,
    failure: { error: unknown; classification: FailureClassification; freshCredentials?: boolean },
    attempt: number,
    elapsedMs: number,
    previousErrorClass?: ErrorClass,
  ): RetryDecision {
    // A second auth-expired in a row means a refreshed token was refused too: not retried again.
    // Unless this attempt's token was one already held, not refreshed for it: a service that does
    // not say when its tokens expire can let that one expire too, and the next attempt refreshes.
    const heldTokenExpired = failure.classification.errorClass === 'auth-expired' && failure.freshCredentials === false;
    return nextRetry(this.policyOf(tool), {
      attempt,
      elapsedMs,
      error: failure.error,
      classification: failure.classification,
      previousErrorClass: heldTokenExpired ? undefined : previousErrorClass,
      random: this.random,
      now: this.clock.now(),
    });
  }

  /** The tool's cached last good result for these arguments, when its fallback allows one. */
  cachedResult(tool: AnyTool, args: unknown): { result: unknown; ageMs: number } | undefined {
    const fallback = tool.fallback;
    if (!fallback || !('cached' in fallback)) return undefined;
    const hit = this.cache.get(tool.name)?.get(cacheKey(args));
    if (!hit) return undefined;
    const ageMs = this.clock.now() - hit.at;
    return fallback.maxAgeMs !== undefined && ageMs > fallback.maxAgeMs ? undefined : { result: hit.result, ageMs };
  }

  /** One format for what the decider, the operator and the audit read about a failed call. */
  describe(report: FailureReport): string {
    return this.redactor.redactText(
      `Tool '${report.tool}' failed (${report.errorClass}, attempt ${report.attempt} of ${report.maxAttempts}, workflow ${report.workflowId}, step ${report.step}): ${report.what}; ${report.next}.`,
    );
  }

  private remember(tool: AnyTool, args: unknown, result: unknown): void {
    if (!tool.fallback || !('cached' in tool.fallback)) return;
    let results = this.cache.get(tool.name);
    if (!results) this.cache.set(tool.name, (results = new Map()));
    const key = cacheKey(args);
    results.delete(key);
    results.set(key, { result, at: this.clock.now() });
    // Oldest first in a Map's order: drop it when the tool holds too many.
    if (results.size > cachedResultsPerTool) results.delete(results.keys().next().value!);
  }
}

function cacheKey(args: unknown): string {
  return JSON.stringify(args) ?? 'undefined';
}
