// createKeel: a Keel instance bound to one store. It starts workflows, runs them, and runs the
// worker loop that claims runnable workflows (new ones, due ones, and those whose worker died).
// Instances, not singletons: tests and embedders create as many as they need.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LanguageModelV3 } from '@ai-sdk/provider';
import { KeelError, errorMessage, unknownWorkflow } from '../errors.js';
import { AuditKind, type NewAuditEntry } from '../audit/audit-entry.js';
import { codeDecider } from '../model/code-decider.js';
import type { Decider, ToolCatalog } from '../model/decision.js';
import { modelDecider } from '../model/model-decider.js';
import { finishedStatuses, JournalKind, type JournalEntry, type Principal, type Store, type WorkflowRecord } from '../store/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { Agent, StateDefinition } from './define-agent.js';
import type { KeelEventListener } from './events.js';
import { runClaimedWorkflow, type RunEnvironment } from './workflow-run.js';
import { ToolRunner, type ServiceConfig } from '../tools/tool-runner.js';
import { auditFromJournal } from '../audit/from-journal.js';
import { traceWorkflowStart } from '../telemetry/workflow-tracing.js';
import { priceTable, type PriceOptions } from '../cost/prices.js';
import { SpendBudgets, type BudgetLimits } from '../cost/budgets.js';
import { CostBreaker, costBreakerWait, type CostBreakerChange, type CostBreakerConfig } from '../cost/cost-breaker.js';
import { keelMetrics } from '../telemetry/metrics.js';
import { recordFeedback, type Feedback, type RecordedFeedback } from '../telemetry/feedback.js';
import type { MeterProvider } from '@opentelemetry/api';
import { Security, type SecurityOptions } from '../security/security.js';
import { defaultSensitiveKeys } from '../util/redact.js';
import { approveRequest, decideWithToken, rejectRequest, type ApproveOptions, type DecisionDependencies, type RejectOptions } from '../approval/decisions.js';
import { createDecisionToken } from '../approval/decision-token.js';
import { approvalNotifier, type ApprovalNotifierOptions } from '../approval/notifier.js';
import { completeHandoff, handBack, humanHandoffCatalogEntry } from '../approval/handoff.js';
import type { ApprovalQuery, ApprovalRequest } from '../store/types.js';

export interface KeelOptions {
  store: Store;
  agents?: readonly Agent[];
  /** The model for agents that do not bring their own. */
  model?: LanguageModelV3;
  clock?: Clock;
  logger?: Logger;
  workerId?: string;
  /** How long a claim lasts without renewal; a dead worker's workflows are resumed after it (default 30 s). */
  leaseMs?: number;
  /** Crash recoveries of one workflow before it is parked for review (default 5). */
  maxRecoveries?: number;
  /** Finds the agent for a workflow whose agent is not registered (e.g. by importing its module). */
  resolveAgent?: (workflow: WorkflowRecord) => Promise<Agent | undefined>;
  onEvent?: KeelEventListener;
  /** Downstream services (breaker, rate budget, credentials); they win over the agents' own declarations. */
  services?: Record<string, ServiceConfig>;
  /** Waits longer than this (retry backoff, open breaker, spent budget) park the workflow durably (default 2 s). */
  parkAfterMs?: number;
  /** Strings to keep out of journals, logs and error messages (API keys the tools use). */
  secrets?: () => Iterable<string>;
  /** Field names whose values are redacted wherever they appear, added to the defaults (token, password, api_key, ...). */
  sensitiveKeys?: readonly string[];
  /**
   * Least privilege (docs/security.md): with this option every tool call needs a live grant of its
   * tool's permission, declared by the agent, and passes the operator's forbid policies. Without
   * it nothing is checked.
   */
  security?: SecurityOptions;
  /** The HMAC secret of signed approval decision tokens (src/approval/decision-token.ts). */
  approvalTokenSecret?: string;
  /** A callback and/or webhook told when an approval request is created, escalated or decided. */
  approvalNotifications?: ApprovalNotifierOptions;
  /** Model prices (src/cost): per-model overrides of the bundled @pydantic/genai-prices data. */
  prices?: PriceOptions;
  /** Where Keel's metrics go (src/telemetry/metrics.ts); default: the global meter provider registered when Keel is created. */
  meterProvider?: MeterProvider;
  /** Spend limits checked before each model call (src/cost/budgets.ts). */
  budgets?: BudgetLimits;
  /** The cost circuit breaker (src/cost/cost-breaker.ts): spend per hour and error-rate thresholds. */
  costBreaker?: CostBreakerConfig;
}

export interface StartOptions {
  principal?: Principal;
  id?: string;
}

export interface ResumeOptions {
  /** Who resumes it (recorded in the journal and as the audit's actor; default 'operator'). Resuming a workflow parked for re-authorisation is that person's decision. */
  by?: string;
}

export interface WorkerOptions {
  concurrency?: number;
  /** Stop when nothing is runnable instead of waiting for more work. */
  once?: boolean;
  /** How often an idle worker looks for work (default 250 ms). */
  pollMs?: number;
  /** Stops the worker: it claims nothing more, and each running workflow stops after its step in flight. */
  signal?: AbortSignal;
}

export interface Inspection {
  workflow: WorkflowRecord;
  journal: JournalEntry[];
}

const anonymous: Principal = { id: 'anonymous' };
const runnerWaits = ['retry', 'circuit-open', 'rate-limit'];

export function createKeel(options: KeelOptions): Keel {
  return new Keel(options);
}

export class Keel {
  readonly store: Store;
  readonly workerId: string;
  private readonly agents = new Map<string, { agent: Agent; module: string | null }>();
  private readonly deciders = new WeakMap<object, Decider>();
  private readonly catalogs = new Map<string, ToolCatalog>();
  private readonly environment: RunEnvironment;
  readonly runner: ToolRunner;
  /** Present when permissions are enforced (the `security` option). */
  readonly security?: Security;

  constructor(private readonly options: KeelOptions) {
    this.store = options.store;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const clock = options.clock ?? systemClock;
    this.runner = new ToolRunner({
      services: options.services,
      store: options.store,
      clock,
      parkAfterMs: options.parkAfterMs,
      secrets: options.secrets,
      sensitiveKeys: options.sensitiveKeys ? [...defaultSensitiveKeys, ...options.sensitiveKeys] : undefined,
    });
    if (options.security) this.security = new Security(options.security, options.store, clock);
    this.runner.onBreakerChange((service, from, to, reason) => {
      this.environment.logger.warn({ service, from, to }, `circuit breaker of service '${service}': ${from} -> ${to} (${reason})`);
      options.onEvent?.({ type: 'breaker-changed', service, from, to, reason });
      this.auditOnItsOwn({ kind: AuditKind.breakerChanged, actor: `keel:${this.workerId}`, subject: service, outcome: to, data: { from, to, reason } });
    });
    for (const agent of options.agents ?? []) this.register(agent);
    this.environment = {
      store: options.store,
      logger: options.logger ?? silentLogger,
      workerId: this.workerId,
      leaseMs: options.leaseMs ?? 30_000,
      maxRecoveries: options.maxRecoveries ?? 5,
      now: () => clock.now(),
      deciderFor: (agent, state) => this.deciderFor(agent, state),
      catalogFor: (agent, state) => this.catalogFor(agent, state),
      runner: this.runner,
      onEvent: options.onEvent,
      security: this.security,
      notifyApproval: approvalNotifier(options.approvalNotifications ?? {}, options.logger ?? silentLogger),
      prices: priceTable(options.prices),
      budgets: options.budgets ? new SpendBudgets(options.budgets, options.store, () => clock.now()) : undefined,
      costBreaker: options.costBreaker ? new CostBreaker(options.costBreaker, options.store, () => clock.now(), (change) => this.auditCostBreaker(change)) : undefined,
      metrics: keelMetrics(options.meterProvider, {
        store: options.store,
        breakerStates: () => Object.keys(this.runner.breakers.counters()).map((service) => [service, this.runner.breakers.for(service).state] as [string, string]),
      }),
    };
  }

  /** Registers an agent; `module` tells other worker processes where to import it from. */
  register(agent: Agent, module: string | null = null): this {
    this.agents.set(agent.name, { agent, module });
    for (const [service, config] of Object.entries(agent.services ?? {})) this.runner.configure(service, config);
    return this;
  }

  agent(name: string): Agent {
    const entry = this.agents.get(name);
    if (!entry) {
      throw new KeelError('UNKNOWN_AGENT', `Unknown agent '${name}'. Registered agents: ${[...this.agents.keys()].join(', ') || 'none'}.`, { agent: name });
    }
    return entry.agent;
  }

  /** Records a user's satisfaction rating (1-5) for a workflow in the audit log, and in the `keel.satisfaction` metric. */
  feedback(feedback: Feedback): Promise<RecordedFeedback> {
    return recordFeedback(this.store, feedback, { metrics: this.environment.metrics });
  }

  /** Creates a pending workflow; a worker (or `run`) executes it. */
  async start(agentName: string, input: unknown, start: StartOptions = {}): Promise<WorkflowRecord> {
    const agent = this.agent(agentName);
    const breakerRefusal = this.environment.costBreaker?.refusal();
    if (breakerRefusal) throw new KeelError('COST_BREAKER_OPEN', `Workflow for agent '${agent.name}' not started: ${breakerRefusal.message}`, { agent: agent.name });
    if (agent.input) {
      const parsed = agent.input.safeParse(input);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(input)'}: ${issue.message}`).join('; ');
        throw new KeelError('BAD_INPUT', `The input for agent '${agent.name}' does not match its schema: ${issues}. Fix the input and start again.`, { agent: agent.name });
      }
      input = parsed.data;
    }
    const principal = start.principal ?? anonymous;
    const id = start.id ?? `wf_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    // With permissions enforced, what the principal may do in this task is recorded as it starts.
    const permissions = await this.security?.startPermissions(agent, principal);
    // The trace every run of the workflow continues, on whichever worker (src/telemetry).
    const traceparent = traceWorkflowStart(agent.name, id);
    const journal = [
      {
        step: 0,
        kind: JournalKind.workflowStarted,
        name: agent.name,
        status: 'pending',
        data: { agentVersion: agent.versionId, principal: principal.id, state: agent.initial, ...(permissions ? { permissions } : {}), ...(traceparent ? { traceparent } : {}) },
      },
    ];
    return this.store.createWorkflow(
      { id, agent: agent.name, agentVersion: agent.versionId, agentModule: this.agents.get(agent.name)!.module, principal, input, state: agent.initial },
      journal,
      auditFromJournal(journal, { workflowId: id, actor: principal.id, redactor: this.runner.redactor }),
    );
  }

  /** Runs one workflow in this process until it completes, fails or waits. */
  async run(workflowId: string, signal?: AbortSignal): Promise<WorkflowRecord> {
    const claim = await this.store.claim({ owner: this.workerId, leaseMs: this.environment.leaseMs, workflowId });
    if (!claim) {
      const workflow = await this.store.getWorkflow(workflowId);
      if (!workflow) throw unknownWorkflow(workflowId);
      return workflow;
    }
    return this.runClaim(claim.workflow, claim.recovered, signal);
  }

  async startAndRun(agentName: string, input: unknown, start: StartOptions = {}): Promise<WorkflowRecord> {
    const workflow = await this.start(agentName, input, start);
    return this.run(workflow.id);
  }

  /** Claims and runs the next runnable workflow; undefined when there is none. */
  async runNext(signal?: AbortSignal): Promise<WorkflowRecord | undefined> {
    const claim = await this.store.claim({ owner: this.workerId, leaseMs: this.environment.leaseMs });
    if (!claim) return undefined;
    return this.runClaim(claim.workflow, claim.recovered, signal);
  }

  /** Runs workflows as they become runnable, `concurrency` at a time. */
  async work(worker: WorkerOptions = {}): Promise<{ processed: number }> {
    const concurrency = Math.max(1, worker.concurrency ?? 4);
    const pollMs = worker.pollMs ?? 250;
    let processed = 0;
    const lane = async () => {
      while (!worker.signal?.aborted) {
        const finished = await this.runNext(worker.signal);
        if (finished) {
          processed++;
          continue;
        }
        if (worker.once) {
          // Waits the runner chose (backoff, open breaker, spent budget) are part of the work in
          // hand; waits for people or operators are not.
          const wakeAt = await this.store.nextWakeAt(runnerWaits);
          if (wakeAt === undefined) return;
          await sleep(Math.min(pollMs, Math.max(1, wakeAt - this.environment.now())), undefined, { signal: worker.signal }).catch(() => undefined);
          continue;
        }
        await sleep(pollMs, undefined, { signal: worker.signal }).catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    return { processed };
  }

  /** Puts a waiting or failed workflow back to work (after a fix or a review), then runs it. */
  async resume(workflowId: string, signal?: AbortSignal, options: ResumeOptions = {}): Promise<WorkflowRecord> {
    const by = options.by ?? 'operator';
    const workflow = await this.store.getWorkflow(workflowId);
    if (!workflow) throw unknownWorkflow(workflowId);
    if (workflow.status === 'completed' || workflow.status === 'cancelled') {
      throw new KeelError('WORKFLOW_NOT_RESUMABLE', `Workflow ${workflowId} is ${workflow.status}; only pending, waiting, failed or crashed workflows can be resumed.`, { workflowId });
    }
    if (workflow.status === 'waiting' || workflow.status === 'failed') await this.backToWork(workflow, by);
    return this.run(workflowId, signal);
  }

  /**
   * Closes the cost circuit breaker (an operator's decision, after checking the spend and the
   * errors) and puts the workflows it parked back to work: any worker takes them up.
   */
  async resetCostBreaker(options: { by?: string } = {}): Promise<WorkflowRecord[]> {
    const by = options.by ?? 'operator';
    (this.environment.costBreaker ?? new CostBreaker({}, this.store, this.environment.now, (change) => this.auditCostBreaker(change))).reset(by);
    const parked = await this.store.listWorkflows({ status: 'waiting', waitingFor: costBreakerWait, limit: 100_000 });
    const requeued: WorkflowRecord[] = [];
    for (const workflow of parked) {
      try {
        requeued.push(await this.backToWork(workflow, by));
      } catch (error) {
        // Its cool-down timer came due and a worker took it up meanwhile: it is at work already.
        if (!KeelError.isInstance(error) || error.code !== 'WORKFLOW_NOT_RESUMABLE') throw error;
      }
    }
    return requeued;
  }

  private auditCostBreaker(change: CostBreakerChange): void {
    this.environment.logger.warn({ from: change.from, to: change.to, by: change.by }, `cost circuit breaker: ${change.from} -> ${change.to} (${change.reason})`);
    this.auditOnItsOwn({ kind: AuditKind.costBreakerChanged, actor: change.by ?? `keel:${this.workerId}`, subject: 'cost', outcome: change.to, data: { ...change } });
  }

  /**
   * A breaker's change belongs to no workflow commit: it is audited on its own, and a store that
   * cannot take it now must not turn the change into a failed call.
   */
  private auditOnItsOwn(entry: NewAuditEntry): void {
    void this.store
      .appendAudit([entry])
      .catch((error: unknown) => this.environment.logger.error({ kind: entry.kind, subject: entry.subject, error: errorMessage(error) }, `could not audit ${entry.kind} of '${entry.subject}'`));
  }

  /** Makes a waiting or failed workflow runnable again, journaled and audited under the person's name. */
  private backToWork(workflow: WorkflowRecord, by: string): Promise<WorkflowRecord> {
    const journal = [{ step: workflow.step, kind: JournalKind.workflowResumed, status: 'pending', data: { from: workflow.status, waitingFor: workflow.waitingFor, by } }];
    return this.store.updateWorkflow(
      workflow.id,
      { status: 'pending', waitingFor: null, wakeAt: null, recoveries: 0, failure: null },
      journal,
      auditFromJournal(journal, { workflowId: workflow.id, actor: by, redactor: this.runner.redactor }),
    );
  }

  async cancel(workflowId: string, reason = 'cancelled by operator'): Promise<WorkflowRecord> {
    const workflow = await this.store.getWorkflow(workflowId);
    if (!workflow) throw unknownWorkflow(workflowId);
    if (finishedStatuses.includes(workflow.status)) {
      throw new KeelError('WORKFLOW_NOT_RESUMABLE', `Workflow ${workflowId} is already ${workflow.status}; there is nothing to cancel.`, { workflowId });
    }
    const journal = [{ step: workflow.step, kind: JournalKind.workflowCancelled, status: 'cancelled', data: { reason } }];
    return this.store.updateWorkflow(
      workflowId,
      { status: 'cancelled', wakeAt: null },
      journal,
      auditFromJournal(journal, { workflowId, actor: 'operator', redactor: this.runner.redactor }),
    );
  }

  /**
   * Approves a pending approval request (src/approval), optionally with changed arguments; the
   * workflow becomes runnable on any worker. Refused if already decided, expired, or self-approval.
   */
  async approve(requestId: string, options: ApproveOptions): Promise<ApprovalRequest> {
    return this.decided(await approveRequest(this.decisionDependencies(), requestId, options));
  }

  /** Rejects a pending approval request: the action never runs, and the decider sees the reason. */
  async reject(requestId: string, options: RejectOptions): Promise<ApprovalRequest> {
    return this.decided(await rejectRequest(this.decisionDependencies(), requestId, options));
  }

  /** Sends a task the agent handed to a person (escalate_to_human) back to it; the decider sees the instructions. */
  async handBack(workflowId: string, options: { by: string; instructions: string }): Promise<WorkflowRecord> {
    return handBack({ store: this.store, redactor: this.runner.redactor }, workflowId, options);
  }

  /** A person finished a task the agent handed to them: the workflow completes with their outcome. */
  async completeHandoff(workflowId: string, options: { by: string; outcome: string; note?: string }): Promise<WorkflowRecord> {
    return completeHandoff({ store: this.store, redactor: this.runner.redactor }, workflowId, options);
  }

  private async decided(request: ApprovalRequest): Promise<ApprovalRequest> {
    await this.environment.notifyApproval?.({ type: 'approval-decided', request });
    return request;
  }

  async approvals(query?: ApprovalQuery): Promise<ApprovalRequest[]> {
    return this.store.listApprovals(query);
  }

  /** A signed token for a decision made outside this process (a link in a notification); needs the `approvalTokenSecret` option. */
  decisionToken(requestId: string, decision: 'approve' | 'reject', approver: string, validForMs = 24 * 3600_000): string {
    return createDecisionToken({ requestId, decision, approver, expiresAt: this.environment.now() + validForMs }, this.tokenSecret());
  }

  /** Applies the decision a signed token carries; a forged, altered, expired or replayed token is refused and audited. */
  async decideWithToken(token: string, details: { reason?: string; comment?: string } = {}): Promise<ApprovalRequest> {
    return this.decided(await decideWithToken(this.decisionDependencies(), this.tokenSecret(), token, details));
  }

  private tokenSecret(): string {
    const secret = this.options.approvalTokenSecret;
    if (!secret) throw new KeelError('BAD_INPUT', 'Signed decision tokens need a secret: pass approvalTokenSecret to createKeel (at least 32 random bytes, the same in every process that checks tokens).');
    return secret;
  }

  private decisionDependencies(): DecisionDependencies {
    return { store: this.store, now: this.environment.now, redactor: this.runner.redactor, agentFor: (workflow) => this.agentFor(workflow) };
  }

  async inspect(workflowId: string): Promise<Inspection> {
    const workflow = await this.store.getWorkflow(workflowId);
    if (!workflow) throw unknownWorkflow(workflowId);
    return { workflow, journal: await this.store.readJournal(workflowId) };
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  private async runClaim(workflow: WorkflowRecord, recovered: boolean, signal?: AbortSignal): Promise<WorkflowRecord> {
    const agent = await this.agentFor(workflow);
    if (!agent) {
      const message =
        `Workflow ${workflow.id} needs agent '${workflow.agent}'${workflow.agentModule ? ` from ${workflow.agentModule}` : ''}, which this worker cannot load. ` +
        `Start a worker that has the agent (keel worker --agent <module>) and run \`keel resume ${workflow.id}\`.`;
      const journal = [{ step: workflow.step, kind: JournalKind.workflowParked, name: 'unknown-agent', status: 'waiting', data: { code: 'UNKNOWN_AGENT', message } }];
      await this.store.commit({
        workflowId: workflow.id,
        leaseOwner: this.workerId,
        journal,
        audit: auditFromJournal(journal, { workflowId: workflow.id, actor: `keel:${this.workerId}`, redactor: this.runner.redactor }),
        workflow: { status: 'waiting', waitingFor: 'unknown-agent', failure: { code: 'UNKNOWN_AGENT', message, state: workflow.state, step: workflow.step, at: this.environment.now() }, releaseLease: true },
      });
      const parked = (await this.store.getWorkflow(workflow.id))!;
      this.environment.onEvent?.({ type: 'workflow-stopped', workflow: parked });
      return parked;
    }
    return runClaimedWorkflow(this.environment, agent, { workflow, recovered }, signal);
  }

  private async agentFor(workflow: WorkflowRecord): Promise<Agent | undefined> {
    const known = this.agents.get(workflow.agent);
    if (known) return known.agent;
    const resolved = await this.options.resolveAgent?.(workflow).catch(() => undefined);
    if (resolved) this.register(resolved, workflow.agentModule);
    return resolved;
  }

  private deciderFor(agent: Agent, state: StateDefinition): Decider {
    const key = state.decide ? state : agent;
    let decider = this.deciders.get(key);
    if (!decider) {
      const decide = state.decide ?? agent.decide;
      if (decide) {
        decider = codeDecider(decide);
      } else {
        const model = agent.model ?? this.options.model;
        if (!model) {
          throw new KeelError('MODEL_CONFIG', `Agent '${agent.name}' has no decide function and no model. Set KEEL_MODEL, pass a model to createKeel, or give the agent a model.`, {
            agent: agent.name,
          });
        }
        decider = modelDecider({ model, instructions: agent.instructions });
      }
      this.deciders.set(key, decider);
    }
    return decider;
  }

  private catalogFor(agent: Agent, stateName: string): ToolCatalog {
    const key = `${agent.name}\u0000${agent.versionId}\u0000${stateName}`;
    let catalog = this.catalogs.get(key);
    if (!catalog) {
      catalog = (agent.states[stateName]?.tools ?? []).map((name) => ({
        name,
        description: agent.toolsByName.get(name)!.description,
        parameters: agent.toolParameters.get(name)!,
      }));
      if (agent.humanHandoff) catalog = [...catalog, humanHandoffCatalogEntry];
      this.catalogs.set(key, catalog);
    }
    return catalog;
  }
}
