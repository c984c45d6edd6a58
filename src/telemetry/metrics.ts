// Keel's metrics through the OpenTelemetry metrics API: the GenAI client metrics and Keel's own.
// Instruments are made once per Keel instance from the meter provider registered at that time
// (the metrics API has no proxy: a provider registered later is not seen), so `keel worker
// --metrics-port` registers its Prometheus exporter before it creates Keel.
//
// Everything is derived from the journal entries a run commits, in one place (`observe`), so the
// counts agree with the journal: a model call is an `action-decided` entry with its usage, an
// error is an entry with an error class, a task ends with `workflow-completed` or
// `workflow-failed`. Task success means the agent reached a final (goal) state, not merely that
// nothing crashed. An escalation is a workflow parked for a person (review, approval, permission).

import { metrics, type Counter, type Histogram, type Meter, type MeterProvider } from '@opentelemetry/api';
import type { CallCost } from '../cost/prices.js';
import type { DecisionRecord } from '../model/decision.js';
import { JournalKind, type NewJournalEntry, type Store } from '../store/types.js';
import { errorType, GenAiAttribute, GenAiOperation } from './semconv.js';

/** Where an error comes from: the agent (its decisions), the system (tools, model provider, Keel), or the user (input, permissions). */
export const ErrorSource = { agent: 'agent', system: 'system', user: 'user' } as const;
export type ErrorSource = (typeof ErrorSource)[keyof typeof ErrorSource];

const userErrorClasses = new Set(['permission-denied', 'bad-input', 'PERMISSION_DENIED', 'BAD_INPUT', 'BUDGET_EXCEEDED']);
const agentErrorClasses = new Set(['invalid-call', 'not-allowed', 'invalid-input', 'invalid-decision', 'MAX_STEPS_EXCEEDED', 'ILLEGAL_TRANSITION']);

export function errorSource(errorClass: string, kind: string): ErrorSource {
  if (kind === JournalKind.actionRefused || kind === JournalKind.toolCallInvalid || agentErrorClasses.has(errorClass)) return ErrorSource.agent;
  if (userErrorClasses.has(errorClass)) return ErrorSource.user;
  return ErrorSource.system;
}

/** Parked for a person: the reasons that are escalations, not timers. */
const escalations = new Set(['review', 'approval', 'reauthorization', 'permission', 'version-mismatch']);

const breakerStateValue: Record<string, number> = { closed: 0, 'half-open': 1, open: 2, isolated: 3 };

export interface MetricsSources {
  store?: Store;
  /** Current breaker states by service name. */
  breakerStates?: () => Iterable<[string, string]>;
}

export class KeelMetrics {
  readonly tokenUsage: Histogram;
  readonly operationDuration: Histogram;
  readonly completions: Counter;
  readonly errors: Counter;
  readonly escalations: Counter;
  readonly taskCost: Histogram;
  readonly callCost: Counter;
  readonly taskDuration: Histogram;
  readonly toolDuration: Histogram;
  readonly satisfaction: Histogram;

  constructor(meter: Meter, sources: MetricsSources = {}) {
    this.tokenUsage = meter.createHistogram('gen_ai.client.token.usage', {
      unit: '{token}',
      description: 'Tokens used per model call, by gen_ai.token.type (input, output)',
      advice: { explicitBucketBoundaries: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] },
    });
    this.operationDuration = meter.createHistogram('gen_ai.client.operation.duration', {
      unit: 's',
      description: 'Duration of model calls',
      advice: { explicitBucketBoundaries: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] },
    });
    this.completions = meter.createCounter('keel.task.completions', { description: 'Tasks (workflows) ended, by keel.task.outcome: success = reached a goal state' });
    this.errors = meter.createCounter('keel.errors', { description: 'Errors by error.type and keel.error.source (agent, system, user)' });
    this.escalations = meter.createCounter('keel.escalations', { description: 'Workflows parked for a person (review, approval, permission)' });
    this.taskCost = meter.createHistogram('keel.task.cost', { unit: 'USD', description: 'Model cost of a task, at its end', advice: { explicitBucketBoundaries: [0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] } });
    this.callCost = meter.createCounter('keel.model.cost', { unit: 'USD', description: 'Model cost, per call, by agent and model' });
    this.taskDuration = meter.createHistogram('keel.task.duration', { unit: 's', description: 'End-to-end latency of a task, from start to its end' });
    this.toolDuration = meter.createHistogram('keel.tool.duration', { unit: 's', description: 'Duration of tool call attempts' });
    this.satisfaction = meter.createHistogram('keel.satisfaction', { unit: '{score}', description: 'User satisfaction ratings (1-5)', advice: { explicitBucketBoundaries: [1, 2, 3, 4, 5] } });
    const breakers = meter.createObservableGauge('keel.breaker.state', { description: 'Circuit breaker state per service: 0 closed, 1 half-open, 2 open, 3 isolated' });
    if (sources.breakerStates) {
      const states = sources.breakerStates;
      breakers.addCallback((result) => {
        for (const [service, state] of states()) result.observe(breakerStateValue[state] ?? 0, { 'keel.service': service });
      });
    }
    const waiting = meter.createObservableGauge('keel.approvals.waiting', { description: 'Workflows waiting for a person, by keel.waiting_for' });
    if (sources.store) {
      const store = sources.store;
      waiting.addCallback(async (result) => {
        const counts = await store.countWaiting();
        for (const reason of escalations) result.observe(counts[reason] ?? 0, { 'keel.waiting_for': reason });
      });
    }
  }

  /** The metrics of one run of one workflow; `priorCostUsd` is what its earlier runs spent. */
  forRun(facts: { agent: string; agentVersion: string; createdAt: number; priorCostUsd: number; now: () => number }): RunMetrics {
    return new RunMetrics(this, facts);
  }
}

/** Instruments from the meter provider registered now (the no-op one when none is). */
export function keelMetrics(provider: MeterProvider = metrics.getMeterProvider(), sources: MetricsSources = {}): KeelMetrics {
  return new KeelMetrics(provider.getMeter('keel'), sources);
}

/** The cost already spent by a workflow, from the decisions in its journal. */
export function journalCostUsd(journal: readonly { kind: string; data: unknown }[]): number {
  let total = 0;
  for (const entry of journal) {
    if (entry.kind !== JournalKind.actionDecided) continue;
    total += (entry.data as { decision?: { cost?: CallCost } } | null)?.decision?.cost?.usd ?? 0;
  }
  return total;
}

export class RunMetrics {
  private costUsd: number;

  constructor(
    private readonly metrics: KeelMetrics,
    private readonly facts: { agent: string; agentVersion: string; createdAt: number; priorCostUsd: number; now: () => number },
  ) {
    this.costUsd = facts.priorCostUsd;
  }

  /** Records what a commit's journal entries say happened. */
  observe(entries: readonly NewJournalEntry[]): void {
    const agent = { 'gen_ai.agent.name': this.facts.agent, 'keel.agent.version': this.facts.agentVersion };
    // A failure is counted as an error only when nothing in its commit already was (a tool's fatal error, a model call's).
    let errored = false;
    for (const entry of entries) {
      switch (entry.kind) {
        case JournalKind.actionDecided:
          this.decided((entry.data as { decision: DecisionRecord }).decision, agent);
          break;
        case JournalKind.toolCallCompleted:
        case JournalKind.toolCallFailed:
          if (typeof entry.durationMs === 'number') {
            this.metrics.toolDuration.record(entry.durationMs / 1000, { [GenAiAttribute.toolName]: entry.name ?? '', ...(entry.kind === JournalKind.toolCallFailed ? { [errorType]: entry.status ?? 'unknown' } : {}) });
          }
          if (entry.kind === JournalKind.toolCallFailed) {
            this.error(entry.status ?? 'unknown', entry.kind, agent);
            errored = true;
          }
          break;
        case JournalKind.actionRefused:
        case JournalKind.toolCallInvalid:
        case JournalKind.modelCallFailed:
          this.error(entry.status ?? 'unknown', entry.kind, agent);
          errored = true;
          break;
        case JournalKind.workflowParked:
          if (entry.name && escalations.has(entry.name)) this.metrics.escalations.add(1, { ...agent, 'keel.waiting_for': entry.name });
          break;
        case JournalKind.workflowCompleted:
          this.ended('success', agent);
          break;
        case JournalKind.workflowFailed:
          if (!errored) this.error(entry.name ?? 'unknown', entry.kind, agent);
          this.ended('failure', agent);
          break;
      }
    }
  }

  private decided(decision: DecisionRecord, agent: Record<string, string>): void {
    if (decision.source !== 'model') return;
    const attributes: Record<string, string> = { [GenAiAttribute.operationName]: GenAiOperation.chat };
    if (decision.provider) attributes[GenAiAttribute.providerName] = decision.provider;
    if (decision.model) attributes[GenAiAttribute.responseModel] = decision.model;
    if (decision.durationMs !== undefined) this.metrics.operationDuration.record(decision.durationMs / 1000, attributes);
    if (decision.usage) {
      this.metrics.tokenUsage.record(decision.usage.inputTokens, { ...attributes, [GenAiAttribute.tokenType]: 'input' });
      this.metrics.tokenUsage.record(decision.usage.outputTokens, { ...attributes, [GenAiAttribute.tokenType]: 'output' });
    }
    if (decision.cost) {
      this.costUsd += decision.cost.usd;
      this.metrics.callCost.add(decision.cost.usd, { ...agent, [GenAiAttribute.responseModel]: decision.model ?? '' });
    }
  }

  private error(errorClass: string, kind: string, agent: Record<string, string>): void {
    this.metrics.errors.add(1, { ...agent, [errorType]: errorClass, 'keel.error.source': errorSource(errorClass, kind) });
  }

  private ended(outcome: 'success' | 'failure', agent: Record<string, string>): void {
    this.metrics.completions.add(1, { ...agent, 'keel.task.outcome': outcome });
    this.metrics.taskCost.record(this.costUsd, agent);
    this.metrics.taskDuration.record(Math.max(0, this.facts.now() - this.facts.createdAt) / 1000, { ...agent, 'keel.task.outcome': outcome });
  }
}
