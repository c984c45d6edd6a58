// One workflow, run by the worker that holds its lease: the adaptive step loop.
// observe (context + history) -> decide exactly one action -> gate (state, tool, schema) ->
// act (checkpoint first if the tool has a side effect) -> record (one commit) -> adapt.
//
// Durability rules this file keeps:
// - the decided action is committed before its side effect runs, so a resumed step re-runs the
//   same action with the same idempotency key and never pays for a second model call;
// - a step's result, its context changes and its state transition commit in one transaction;
// - every commit checks the lease, so a worker that lost its workflow writes nothing more.

import { setTimeout as sleep } from 'node:timers/promises';
import { KeelError, describeSubject, errorMessage } from '../errors.js';
import type { Agent, StateDefinition } from './define-agent.js';
import { versionLabel } from './define-agent.js';
import type { KeelEventListener } from './events.js';
import type { Decider, DecisionRecord, DecisionView, Observation, ToolCatalog } from '../model/decision.js';
import { ContextState } from '../workflow/context-state.js';
import { replayJournal, type Replayed } from '../workflow/replay.js';
import { classifyError, isRetryable, ToolError, type ErrorClass } from '../tools/tool-error.js';
import { retryDelayMs } from '../tools/call-tool.js';
import type { RetryDecision } from '../tools/backoff.js';
import type { AttemptResult, ToolRunner } from '../tools/tool-runner.js';
import type { AnyTool, ToolContext, ToolFallback } from '../tools/tool.js';
import { timeOfDay } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { auditFromRedactedJournal } from '../audit/from-journal.js';
import type { NewAuditEntry } from '../audit/audit-entry.js';
import type { CallVerdict, UntrustedArguments, WorkflowGuard } from '../security/call-guard.js';
import type { Security } from '../security/security.js';
import { approvalRejectedClass, approvalVerdict, approvalWait, type ApprovalVerdict } from '../approval/approval-gate.js';
import type { ApprovalNotification, ApprovalNotifier } from '../approval/notifier.js';
import { handoffMessage, handoffWait, humanHandoffTool } from '../approval/handoff.js';
import { startedTraceparent, WorkflowTracing } from '../telemetry/workflow-tracing.js';
import type { PriceTable } from '../cost/prices.js';
import { journalCostUsd, type KeelMetrics, type RunMetrics } from '../telemetry/metrics.js';
import type { SpendBudgets } from '../cost/budgets.js';
import { costBreakerWait, type CostBreaker } from '../cost/cost-breaker.js';
import {
  JournalKind,
  type Claim,
  type FailureRecord,
  type JournalEntry,
  type NewJournalEntry,
  type Store,
  type WorkflowPatch,
  type WorkflowRecord,
} from '../store/types.js';

export interface RunEnvironment {
  store: Store;
  logger: Logger;
  workerId: string;
  leaseMs: number;
  maxRecoveries: number;
  now(): number;
  deciderFor(agent: Agent, state: StateDefinition): Decider;
  catalogFor(agent: Agent, stateName: string): ToolCatalog;
  runner: ToolRunner;
  onEvent?: KeelEventListener;
  /** Least privilege (src/security): present when the Keel instance was given `security`. */
  security?: Security;
  /** Told when an approval request is created, escalated or expires (src/approval/notifier.ts). */
  notifyApproval?: ApprovalNotifier;
  /** Prices every model call (src/cost); without it calls are not priced. */
  prices?: PriceTable;
  /** Keel's metrics (src/telemetry/metrics.ts), derived from what each commit journals. */
  metrics?: KeelMetrics;
  /** Spend budgets (src/cost/budgets.ts), checked before each model call. */
  budgets?: SpendBudgets;
  /** The cost circuit breaker (src/cost/cost-breaker.ts), checked before each model call. */
  costBreaker?: CostBreaker;
}

const defaultMaxSteps = 50;
const defaultMaxContextBytes = 1024 * 1024;
const modelAttempts = 3;

type StepOutcome = 'continue' | 'stop';
/** What the journal says about the current step's call when a worker picks it up again. */
type ResumedCall = Omit<Replayed, 'history' | 'pendingDecision'>;
/** A fallback's result, or why it had none; with what its own permission check journaled. */
type FallbackOutcome = ({ kind: string; result: unknown; detail: Record<string, unknown> } | { missing: string }) & { journal?: NewJournalEntry[] };
type Gate = { ok: true; tool: AnyTool; args: unknown } | { ok: false; kind: JournalKind; errorClass: string; message: string };

export async function runClaimedWorkflow(
  environment: RunEnvironment,
  agent: Agent,
  claim: Claim,
  signal?: AbortSignal,
): Promise<WorkflowRecord> {
  const run = new WorkflowRun(environment, agent, claim.workflow, signal);
  return run.run(claim.recovered);
}

class WorkflowRun {
  private readonly id: string;
  private state: string;
  private step: number;
  private context!: ContextState;
  private history: Observation[] = [];
  private pendingDecision?: DecisionRecord;
  private resumedCall: ResumedCall = { attemptsMade: 0 };
  private shortWaits: Record<string, { count: number; totalMs: number }> = {};
  /** Aborted only when the lease is lost: cancels the call in flight. */
  private readonly abort = new AbortController();
  /**
   * The caller asking the run to stop (a worker shutting down). The step in flight finishes and
   * commits first, so the workflow goes back to pending at once instead of waiting for its lease
   * to expire, and no call is cut off half way.
   */
  private readonly stopRequest?: AbortSignal;
  private readonly logger: Logger;
  private workflowGuard?: WorkflowGuard;
  /** Spans of this run (src/telemetry); non-recording, and nearly free, when no SDK is registered. */
  private tracing?: WorkflowTracing;
  /** The current tool call's last attempt, for its span. */
  private lastAttempt: { attempt: number; errorClass?: string; message?: string } = { attempt: 0 };
  private metrics?: RunMetrics;
  /** What the workflow's model calls have cost, over all its runs; and the last call's usage, for estimates. */
  private spentUsd = 0;
  private lastUsage?: { inputTokens: number; outputTokens: number };

  constructor(
    private readonly environment: RunEnvironment,
    private readonly agent: Agent,
    private readonly record: WorkflowRecord,
    outerSignal?: AbortSignal,
  ) {
    this.id = record.id;
    this.state = record.state;
    this.step = record.step;
    this.logger = environment.logger.child({ workflowId: record.id, agent: agent.name });
    this.stopRequest = outerSignal;
  }

  async run(recovered: boolean): Promise<WorkflowRecord> {
    const heartbeat = setInterval(() => void this.renewLease(), Math.max(50, this.environment.leaseMs / 3));
    heartbeat.unref();
    try {
      const journal = await this.environment.store.readJournal(this.id);
      this.tracing = new WorkflowTracing({ ...this.traceFacts(recovered), traceparent: startedTraceparent(journal) });
      this.workflowGuard = this.environment.security?.guard(this.record, this.agent, journal);
      this.spentUsd = journalCostUsd(journal);
      this.metrics = this.environment.metrics?.forRun({
        agent: this.agent.name,
        agentVersion: this.agent.versionId,
        createdAt: this.record.createdAt,
        priorCostUsd: this.spentUsd,
        now: this.environment.now,
      });
      if (await this.prepare(recovered, journal)) {
        while ((await this.next()) === 'continue');
      }
    } catch (error) {
      await this.onUnexpected(error);
    } finally {
      clearInterval(heartbeat);
    }
    const final = (await this.environment.store.getWorkflow(this.id))!;
    this.tracing?.end(final);
    this.environment.onEvent?.({ type: 'workflow-stopped', workflow: final });
    return final;
  }

  /** Loads context and journal; refuses a changed definition; counts crash recoveries. */
  private async prepare(recovered: boolean, journal: JournalEntry[]): Promise<boolean> {
    const { store } = this.environment;
    // Loaded before migrating: a migration that throws fails the workflow, and the failure record
    // saves the context (without it the workflow would stay 'running' and crash-loop workers).
    this.context = new ContextState(await store.loadContext(this.id));
    if (this.record.agentVersion !== this.agent.versionId) {
      if (!(await this.migrate())) return false;
      this.context = new ContextState(await store.loadContext(this.id));
    }
    // A migration added to the journal: read it again.
    const replayed = replayJournal(this.record.agentVersion !== this.agent.versionId ? await store.readJournal(this.id) : journal, this.step);
    this.history = replayed.history;
    this.pendingDecision = replayed.pendingDecision;
    this.resumedCall = replayed;
    if (!recovered) return true;
    const recoveries = this.record.recoveries;
    if (recoveries > this.environment.maxRecoveries) {
      await this.park('review', {
        code: 'RECOVERY_LIMIT',
        message:
          `Workflow ${this.id} was recovered ${recoveries} times after its worker died (limit ${this.environment.maxRecoveries}); ` +
          `it is parked for review instead of crashing workers forever. Inspect it with \`keel inspect ${this.id}\`, fix the cause, then \`keel resume ${this.id}\`.`,
      });
      return false;
    }
    await this.commit([
      {
        step: this.step,
        kind: JournalKind.workflowRecovered,
        status: 'recovered',
        attempt: recoveries,
        data: {
          worker: this.environment.workerId,
          recoveries,
          resumesAction: this.pendingDecision ? { tool: this.pendingDecision.tool, idempotencyKey: this.idempotencyKey() } : null,
        },
      },
    ]);
    return true;
  }

  private async migrate(): Promise<boolean> {
    const from = versionLabel(this.record.agentVersion);
    const to = versionLabel(this.agent.versionId);
    const migration = from !== to ? this.agent.migrations?.[from] : undefined;
    if (!migration) {
      // Migrations are keyed by version label, so a changed definition that kept its label can
      // never be migrated: it needs a new label first.
      const fix =
        from === to
          ? `or give the changed definition a new version label (it is still '${from}') with a migration for version '${from}' (migrations: { '${from}': snapshot => snapshot })`
          : `or give the agent a migration for version '${from}' (migrations: { '${from}': snapshot => snapshot })`;
      await this.park('version-mismatch', {
        code: 'VERSION_MISMATCH',
        message:
          `Workflow ${this.id} started on agent '${this.agent.name}' version ${this.record.agentVersion}, but this worker has version ${this.agent.versionId}; ` +
          `its journal may not match the new states or tools, so it is not resumed. Run it with the agent version it started on, ` +
          `${fix} and run \`keel resume ${this.id}\`.`,
      });
      return false;
    }
    const before = await this.environment.store.loadContext(this.id);
    const after = migration({ state: this.record.state, context: structuredClone(before) });
    if (!(after.state in this.agent.states)) {
      throw new KeelError('INVALID_DEFINITION', `The migration from version '${from}' of agent '${this.agent.name}' moved workflow ${this.id} to unknown state '${after.state}'.`, {
        workflowId: this.id,
        agent: this.agent.name,
      });
    }
    const changes = Object.keys(before)
      .filter((key) => !(key in after.context))
      .map((key) => ({ op: 'delete' as const, key }));
    for (const [key, value] of Object.entries(after.context)) changes.push({ op: 'set', key, value } as never);
    const journal: NewJournalEntry[] = [
      { step: this.step, kind: JournalKind.workflowMigrated, data: { from: this.record.agentVersion, to: this.agent.versionId, state: { from: this.state, to: after.state } } },
    ];
    await this.environment.store.commit({
      workflowId: this.id,
      leaseOwner: this.environment.workerId,
      ...this.recorded(journal),
      context: changes,
      workflow: { agentVersion: this.agent.versionId, state: after.state },
    });
    this.state = after.state;
    return true;
  }

  private async next(): Promise<StepOutcome> {
    const definition = this.agent.states[this.state]!;
    if (definition.final) {
      await this.finish();
      return 'stop';
    }
    if (this.stopRequest?.aborted || this.abort.signal.aborted) {
      await this.release();
      return 'stop';
    }
    const maxSteps = this.agent.maxSteps ?? defaultMaxSteps;
    if (this.step >= maxSteps) {
      await this.fail({
        code: 'MAX_STEPS_EXCEEDED',
        message: `Workflow ${this.id} reached its limit of ${maxSteps} steps in state '${this.state}' without reaching a final state. Inspect the journal (\`keel inspect ${this.id}\`) to see where it loops, or raise the agent's maxSteps.`,
      });
      return 'stop';
    }
    return this.runStep(definition);
  }

  private async runStep(definition: StateDefinition): Promise<StepOutcome> {
    let decision = this.pendingDecision;
    const resumed = this.resumedCall;
    this.pendingDecision = undefined;
    this.resumedCall = { attemptsMade: 0 };
    let gate: Gate;
    const fresh = !decision;
    const journal: NewJournalEntry[] = [];
    if (decision) {
      gate = this.gate(decision);
    } else {
      decision = await this.decide(definition);
      if (!decision) return 'stop';
      gate = this.gate(decision);
      journal.push(this.decisionEntry(decision));
    }
    if (decision.tool === humanHandoffTool && this.agent.humanHandoff) {
      // The agent hands the whole task to a person (src/approval/handoff.ts): nothing runs; it waits with its context.
      await this.park(handoffWait, { code: 'HUMAN_HANDOFF', message: handoffMessage(this.id, decision.args) }, journal);
      return 'stop';
    }
    if (!gate.ok) return this.observeRefusal(decision, gate, journal);
    // The permission gate (docs/security.md), before anything runs and on every run of the step: a
    // grant revoked while the workflow waited stops the call. A call that completed before a crash
    // is not asked again; it happened, and only its result is left to record.
    let needsApproval: UntrustedArguments | undefined;
    if (this.environment.security && !resumed.completed) {
      const verdict = await this.checkPermission(gate.tool, gate.args);
      journal.push(...verdict.journal);
      if (verdict.outcome !== 'permit') return this.stopForPermission(decision, verdict, journal);
      needsApproval = verdict.needsApproval;
    }
    if (fresh && gate.tool.sideEffect) {
      journal.push({ step: this.step, kind: JournalKind.checkpointSaved, data: { state: this.state, contextBytes: this.context.bytes } });
    }
    // Human in the loop (src/approval): after the permission check, before the call. Asked on every
    // run of the step but a completed one, so a rejected action never runs on any path.
    let args = gate.args;
    if (!resumed.completed) {
      const approval = await this.approvalGate(decision, gate.tool, gate.args, journal, fresh, needsApproval);
      if (approval === 'stop' || approval === 'continue') return approval;
      args = approval.run;
      // Arguments an approver changed are a person's, but still only run within the grants.
      if (approval.changed && this.environment.security) {
        const verdict = await this.checkPermission(gate.tool, args, true);
        journal.push(...verdict.journal);
        if (verdict.outcome !== 'permit') return this.stopForPermission({ ...decision, args }, verdict, journal);
      }
    }
    // A read-only call's decision need only survive a process crash: after a power cut the step
    // is decided again, which repeats no side effect. A side effect's decision is fully durable.
    if (journal.length > 0) await this.commit(journal, undefined, false, !gate.tool.sideEffect);
    return this.tracedAct(gate.tool, args, resumed);
  }

  private checkPermission(tool: AnyTool, args: unknown, fromPerson = false): Promise<CallVerdict> {
    return this.workflowGuard!.check({ tool, args, step: this.step, history: this.history, fromPerson });
  }

  /** Runs the approval gate: the arguments to run with, or the step parked for a person, or the rejection handed to the decider. */
  private async approvalGate(
    decision: DecisionRecord,
    tool: AnyTool,
    args: unknown,
    journal: NewJournalEntry[],
    fresh: boolean,
    required?: UntrustedArguments,
  ): Promise<{ run: unknown; changed: boolean } | StepOutcome> {
    const verdict = await approvalVerdict({
      store: this.environment.store,
      now: this.environment.now(),
      workflow: this.record,
      agent: this.agent,
      state: this.state,
      step: this.step,
      decision,
      tool,
      args,
      fresh,
      required,
    });
    if (verdict.kind === 'run') return { run: verdict.args, changed: verdict.request?.modifiedArgs !== undefined };
    const before = journal.length;
    journal.push(...verdict.journal);
    try {
      return await this.applyApprovalVerdict(verdict, tool, args, journal);
    } catch (error) {
      // A person decided while this worker expired or escalated the request: their decision stands.
      if (!KeelError.isInstance(error) || error.code !== 'APPROVAL_DECIDED') throw error;
      journal.length = before;
      return this.approvalGate(decision, tool, args, journal, false, required);
    }
  }

  /** After the commit, and never holding up the step: a notification that fails is only logged. */
  private notify(type: ApprovalNotification['type'], requestId: string): void {
    const notify = this.environment.notifyApproval;
    if (!notify) return;
    void this.environment.store
      .getApproval(requestId)
      .then((request) => (request ? notify({ type, request }) : undefined))
      .catch((error: unknown) => this.logger.warn({ requestId }, `approval notification failed: ${errorMessage(error)}`));
  }

  private async applyApprovalVerdict(verdict: Exclude<ApprovalVerdict, { kind: 'run' }>, tool: AnyTool, args: unknown, journal: NewJournalEntry[]): Promise<StepOutcome> {
    if (verdict.kind === 'wait') {
      // The request, the park and their audit entries in one transaction; the lease is given up.
      const parked: NewJournalEntry = { step: this.step, kind: JournalKind.workflowParked, name: approvalWait, status: 'waiting', data: { wakeAt: verdict.expiresAt, message: verdict.message } };
      journal.push(parked);
      await this.environment.store.commit({
        workflowId: this.id,
        leaseOwner: this.environment.workerId,
        ...this.recorded(journal),
        workflow: { status: 'waiting', waitingFor: approvalWait, wakeAt: verdict.expiresAt, releaseLease: true },
        approval: verdict.create ? { create: this.redacted(verdict.create) } : verdict.escalate ? { escalate: verdict.escalate } : undefined,
      });
      if (verdict.expiresAt !== null) this.environment.onEvent?.({ type: 'workflow-parked', workflowId: this.id, step: this.step, waitingFor: approvalWait, wakeAt: verdict.expiresAt });
      this.logger.info({ step: this.step, waitingFor: approvalWait }, verdict.message);
      if (verdict.create) this.notify('approval-requested', verdict.create.id);
      if (verdict.escalate) this.notify('approval-escalated', verdict.escalate.id);
      return 'stop';
    }
    await this.environment.store.commit({
      workflowId: this.id,
      leaseOwner: this.environment.workerId,
      leaseMs: this.environment.leaseMs,
      ...this.recorded(journal),
      workflow: { step: this.step + 1 },
      approval: verdict.expire ? { expire: verdict.expire } : undefined,
    });
    if (verdict.expire) this.notify('approval-decided', verdict.expire);
    this.history.push({ type: 'tool-error', step: this.step, tool: tool.name, args, errorClass: approvalRejectedClass, message: verdict.observation });
    this.environment.onEvent?.({ type: 'step-completed', workflowId: this.id, step: this.step, state: this.state, tool: tool.name, outcome: 'error' });
    this.step++;
    return 'continue';
  }

  /** One decider call, priced (src/cost); a model call gets its `chat` span. */
  private async askDecider(decider: Decider, view: DecisionView): Promise<DecisionRecord> {
    const catalog = this.environment.catalogFor(this.agent, this.state);
    if (decider.kind !== 'model' || !this.tracing) return this.priced(decider, await decider.decide(view, catalog, this.abort.signal));
    const tracing = this.tracing;
    const span = tracing.startChat(this.step, decider.model, decider.provider);
    try {
      const decision = await this.priced(decider, await tracing.within(span, () => decider.decide(view, catalog, this.abort.signal)));
      tracing.endChat(span, decision, decision.cost?.usd);
      return decision;
    } catch (error) {
      tracing.failChat(span, classifyError(error), errorMessage(error));
      throw error;
    }
  }

  /** The decided call with its `execute_tool` span: all its attempts, how it ended, the state it led to. */
  private async tracedAct(tool: AnyTool, args: unknown, resumed: ResumedCall): Promise<StepOutcome> {
    if (!this.tracing) return this.act(tool, args, resumed);
    const tracing = this.tracing;
    const span = tracing.startTool(this.step, tool.name, this.idempotencyKey(), this.state);
    this.lastAttempt = { attempt: resumed.completed?.attempt ?? resumed.attemptsMade };
    try {
      return await tracing.within(span, () => this.act(tool, args, resumed));
    } finally {
      tracing.endTool(span, { attempts: this.lastAttempt.attempt, stateTo: this.state, errorClass: this.lastAttempt.errorClass, message: this.lastAttempt.message });
    }
  }

  /** The decision with its cost, recorded with it in the journal and the audit. */
  private async priced(decider: Decider, decision: DecisionRecord): Promise<DecisionRecord> {
    if (decision.usage) this.lastUsage = decision.usage;
    const cost = decision.usage && this.environment.prices?.costOf({ provider: decision.provider, model: decision.model, usage: decision.usage, at: new Date(this.environment.now()) });
    if (!cost) return decision;
    this.spentUsd += cost.usd;
    this.environment.costBreaker?.recordSpend(cost.usd);
    if (decider.kind === 'model') await this.environment.budgets?.charge({ workflowId: this.id, agent: this.agent.name, principal: this.record.principal }, cost.usd);
    return { ...decision, cost };
  }

  /** The cost breaker, then the spend budgets with the next call's estimated cost: parks (or fails) the workflow when one says no. */
  private async mayCallModel(decider: Decider): Promise<boolean> {
    const breakerRefusal = this.environment.costBreaker?.refusal();
    if (breakerRefusal) {
      const then = breakerRefusal.closesAt === undefined ? 'The reset puts this workflow back to work.' : 'This workflow goes on by itself when the breaker closes.';
      await this.park(costBreakerWait, { code: 'COST_BREAKER_OPEN', message: `Workflow ${this.id} step ${this.step}: ${breakerRefusal.message} ${then}` }, [], breakerRefusal.closesAt);
      return false;
    }
    const { budgets } = this.environment;
    if (!budgets) return true;
    const tokens = this.lastUsage ?? budgets.estimateTokens;
    const estimateUsd = this.environment.prices?.estimate({ provider: decider.provider, model: decider.model, ...tokens }) ?? 0;
    const refusal = await budgets.check({ workflowId: this.id, agent: this.agent.name, principal: this.record.principal, workflowSpentUsd: this.spentUsd, estimateUsd });
    if (!refusal) return true;
    const message = `Workflow ${this.id} step ${this.step}: ${refusal.message.replace('<id>', this.id)}`;
    if (budgets.onExceeded === 'fail') await this.fail({ code: 'BUDGET_EXCEEDED', message });
    else await this.park('budget', { code: 'BUDGET_EXCEEDED', message }, [], refusal.renewsAt);
    return false;
  }

  private traceFacts(recovered: boolean) {
    return { workflowId: this.id, agent: this.agent.name, agentVersion: this.agent.versionId, principal: this.record.principal.id, step: this.step, recovered };
  }

  /** A call the permission gate stopped: the denial goes to the decider or fails the workflow, or the workflow waits for a person. */
  private async stopForPermission(decision: DecisionRecord, verdict: Exclude<CallVerdict, { outcome: 'permit' }>, journal: NewJournalEntry[]): Promise<StepOutcome> {
    if (verdict.outcome === 'park') {
      await this.park(verdict.waitingFor, { code: verdict.code, message: verdict.message }, journal);
      return 'stop';
    }
    if (verdict.next === 'fail') {
      await this.fail({ code: 'PERMISSION_DENIED', message: verdict.message, tool: decision.tool, args: decision.args, errorClass: 'permission-denied' }, journal);
      return 'stop';
    }
    await this.commit(journal, { step: this.step + 1 });
    this.history.push({ type: 'tool-error', step: this.step, tool: decision.tool, args: decision.args, errorClass: 'permission-denied', message: verdict.message });
    this.environment.onEvent?.({ type: 'step-completed', workflowId: this.id, step: this.step, state: this.state, tool: decision.tool, outcome: 'error' });
    this.step++;
    return 'continue';
  }

  private async decide(definition: StateDefinition): Promise<DecisionRecord | undefined> {
    const decider = this.environment.deciderFor(this.agent, definition);
    const view: DecisionView = {
      workflowId: this.id,
      agent: this.agent.name,
      step: this.step,
      state: this.state,
      input: this.record.input,
      context: this.context.snapshot(),
      allowedTools: definition.tools ?? [],
      history: this.history,
      lastObservation: this.history[this.history.length - 1],
    };
    if (decider.kind === 'model' && !(await this.mayCallModel(decider))) return undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.askDecider(decider, view);
      } catch (error) {
        if (this.abort.signal.aborted) throw error;
        const errorClass = classifyError(error);
        const retry = isRetryable(errorClass) && attempt < modelAttempts;
        const delayMs = retry ? retryDelayMs(attempt, error) : 0;
        const message = `Model call for workflow ${this.id} step ${this.step} failed (${errorClass}, attempt ${attempt} of ${modelAttempts}): ${errorMessage(error)}`;
        const entry: NewJournalEntry = { step: this.step, kind: JournalKind.modelCallFailed, status: errorClass, attempt, data: { errorClass, message, delayMs } };
        if (!retry) {
          await this.fail({ code: 'MODEL_ERROR', message: `${message}. Check KEEL_MODEL and the provider's status, then \`keel resume ${this.id}\`.`, errorClass, attempts: attempt }, [entry]);
          return undefined;
        }
        await this.commit([entry]);
        this.logger.warn({ step: this.step, attempt, errorClass, delayMs }, 'model call failed; retrying');
        await sleep(delayMs, undefined, { signal: this.abort.signal });
      }
    }
  }

  /** The gates before a call runs: the state allows the tool, the tool exists, the arguments fit its schema. */
  private gate(decision: DecisionRecord): Gate {
    const allowed = this.agent.states[this.state]!.tools ?? [];
    if (decision.invalid) return { ok: false, kind: JournalKind.toolCallInvalid, errorClass: 'invalid-call', message: decision.invalid };
    if (!allowed.includes(decision.tool)) {
      const known = this.agent.toolsByName.has(decision.tool);
      return {
        ok: false,
        kind: JournalKind.actionRefused,
        errorClass: 'not-allowed',
        message: known
          ? `Tool '${decision.tool}' is not allowed in state '${this.state}'. Allowed now: ${allowed.join(', ')}.`
          : `There is no tool '${decision.tool}'. Allowed now: ${allowed.join(', ')}.`,
      };
    }
    const tool = this.agent.toolsByName.get(decision.tool)!;
    const parsed = tool.input.safeParse(decision.args);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue: { path: PropertyKey[]; message: string }) => `${issue.path.map(String).join('.') || '(arguments)'}: ${issue.message}`).join('; ');
      return {
        ok: false,
        kind: JournalKind.toolCallInvalid,
        errorClass: 'invalid-input',
        message: `Arguments for tool '${tool.name}' do not match its schema: ${issues}. Call it again with corrected arguments.`,
      };
    }
    return { ok: true, tool, args: parsed.data };
  }

  /** A refused or invalid action is an observation for the decider, not a crash: the step ends, the loop goes on. */
  private async observeRefusal(decision: DecisionRecord, gate: Extract<Gate, { ok: false }>, journal: NewJournalEntry[]): Promise<StepOutcome> {
    const observation: Observation = { type: 'tool-error', step: this.step, tool: decision.tool, args: decision.args, errorClass: gate.errorClass, message: gate.message };
    journal.push({ step: this.step, kind: gate.kind, name: decision.tool, status: gate.errorClass, data: { args: decision.args, errorClass: gate.errorClass, message: gate.message } });
    await this.commit(journal, { step: this.step + 1 });
    this.history.push(observation);
    this.environment.onEvent?.({ type: 'step-completed', workflowId: this.id, step: this.step, state: this.state, tool: decision.tool, outcome: 'error' });
    this.step++;
    return 'continue';
  }

  /**
   * Runs the decided call through the tool runner until it completes, hands an error to the
   * decider, falls back, fails, or parks: a wait longer than the runner's threshold (backoff,
   * an open breaker, a spent rate budget) is a durable timer, not a sleeping worker.
   */
  private async act(tool: AnyTool, args: unknown, resumed: ResumedCall): Promise<StepOutcome> {
    if (resumed.completed) {
      // The call finished before the worker stopped; only its step was not recorded.
      return this.recordResult(tool, args, resumed.completed.result, resumed.completed.attempt, 0, { journaled: true });
    }
    const { runner } = this.environment;
    const maxAttempts = Math.max(resumed.attemptsMade + 1, runner.maxAttemptsOf(tool));
    const firstAttemptAt = resumed.firstAttemptAt ?? this.environment.now();
    let previousErrorClass = resumed.lastErrorClass as ErrorClass | undefined;
    for (let attempt = resumed.attemptsMade + 1; ; ) {
      const blocked = await runner.admit(tool, this.record.principal);
      if (blocked) {
        if (await this.waitOrPark(tool, blocked.reason, blocked.waitMs, { message: blocked.message, service: blocked.service, attempt })) continue;
        return 'stop';
      }
      const outcome = await runner.attempt(tool, args, this.toolContext(attempt));
      if (!('blocked' in outcome)) this.lastAttempt = outcome.ok ? { attempt } : { attempt, errorClass: outcome.classification.errorClass, message: outcome.message };
      if (outcome.ok) return this.recordResult(tool, args, outcome.result ?? null, attempt, outcome.durationMs);
      this.context.discard();
      if ('blocked' in outcome) {
        // A half-open breaker with its probe in flight: not an attempt of this call.
        if (await this.waitOrPark(tool, outcome.blocked.reason, outcome.blocked.waitMs, { message: outcome.blocked.message, service: outcome.blocked.service, attempt })) continue;
        return 'stop';
      }
      if (KeelError.isInstance(outcome.error) && outcome.error.code === 'LEASE_LOST') throw outcome.error;
      if (this.abort.signal.aborted) throw outcome.error;
      const decision = runner.retryDecision(tool, outcome, attempt, this.environment.now() - firstAttemptAt, previousErrorClass);
      const next = await this.afterFailedAttempt(tool, args, outcome, attempt, maxAttempts, decision);
      if (next !== 'retry') return next;
      previousErrorClass = outcome.classification.errorClass;
      attempt++;
    }
  }

  private toolContext(attempt: number): Omit<ToolContext, 'credentials'> {
    return {
      workflowId: this.id,
      step: this.step,
      idempotencyKey: this.idempotencyKey(),
      attempt,
      principal: this.record.principal,
      logger: this.logger,
      input: this.record.input,
      get: (key) => this.context.get(key),
      set: (key, value) => this.context.set(key, value),
      append: (key, value) => this.context.append(key, value),
      // Only a lost lease cancels a call in flight; a stop request waits for the step to commit.
      signal: this.abort.signal,
    };
  }

  /** Journals a failed attempt and chooses what follows: retry (now or parked), feed back, fall back, or fail. */
  private async afterFailedAttempt(
    tool: AnyTool,
    args: unknown,
    failure: Extract<AttemptResult, { classification: unknown }>,
    attempt: number,
    maxAttempts: number,
    decision: RetryDecision,
  ): Promise<StepOutcome | 'retry'> {
    const { runner } = this.environment;
    const { errorClass } = failure.classification;
    const feedBack = errorClass === 'invalid-input' || errorClass === 'permission-denied';
    const delayMs = decision.retry ? decision.delayMs : 0;
    const wakeAt = decision.retry && this.parksFor(delayMs) ? this.environment.now() + delayMs : undefined;
    // Why the call is not retried, when that is not obvious from the class alone.
    const notRetried = isRetryable(errorClass) ? ` (${decision.reason})` : '';
    // A ToolError's class is its own; other failures say what decided their class (HTTP 503, ECONNRESET).
    const what = ToolError.isInstance(failure.error) ? failure.message : `${failure.classification.reason}: ${failure.message}`;
    const describe = (next: string) => runner.describe({ tool: tool.name, workflowId: this.id, step: this.step, errorClass, attempt, maxAttempts, what, next });
    let next: string;
    let fallback: FallbackOutcome | undefined;
    if (decision.retry) {
      next = wakeAt === undefined ? decision.reason : `${decision.reason}, parked until ${timeOfDay(wakeAt)} for any worker to take up`;
    } else if (feedBack) {
      next = 'the decider sees the error';
    } else if (tool.fallback) {
      // The fallback runs first: what the journal says happens next depends on whether it gave a result.
      fallback = await this.runFallback(tool, tool.fallback, args, { errorClass, message: describe(`using the fallback${notRetried}`) });
      next = 'missing' in fallback ? `the workflow fails${notRetried}, and its fallback gave no result: ${fallback.missing}` : `using the fallback${notRetried}`;
    } else {
      next = `the workflow fails${notRetried}`;
    }
    const message = describe(next);
    const journal: NewJournalEntry[] = [
      {
        step: this.step,
        kind: JournalKind.toolCallFailed,
        name: tool.name,
        status: errorClass,
        attempt,
        durationMs: failure.durationMs,
        data: {
          args,
          errorClass,
          message,
          next,
          delayMs,
          parked: wakeAt !== undefined,
          wakeAt,
          final: !decision.retry,
          classifiedBy: runner.redactor.redactText(failure.classification.reason),
          details: ToolError.isInstance(failure.error) ? runner.redactor.redact(failure.error.details) : undefined,
          ...this.takeWaits(),
        },
      },
    ];
    if (tool.sideEffect) journal.push({ step: this.step, kind: JournalKind.rolledBack, name: tool.name, data: { toCheckpoint: this.step, state: this.state } });
    journal.push(...(fallback?.journal ?? []));
    if (decision.retry) {
      this.environment.onEvent?.({ type: 'tool-attempt-failed', workflowId: this.id, step: this.step, tool: tool.name, attempt, errorClass, delayMs });
      if (wakeAt !== undefined) {
        await this.parkUntil('retry', wakeAt, journal, message);
        return 'stop';
      }
      await this.commit(journal);
      this.logger.warn({ step: this.step, tool: tool.name, attempt, errorClass, delayMs }, message);
      await sleep(delayMs, undefined, { signal: this.abort.signal });
      return 'retry';
    }
    if (feedBack) {
      await this.commit(journal, { step: this.step + 1 });
      this.history.push({ type: 'tool-error', step: this.step, tool: tool.name, args, errorClass, message });
      this.environment.onEvent?.({ type: 'step-completed', workflowId: this.id, step: this.step, state: this.state, tool: tool.name, outcome: 'error' });
      this.step++;
      return 'continue';
    }
    if (fallback && !('missing' in fallback)) {
      journal.push({ step: this.step, kind: JournalKind.fallbackUsed, name: tool.name, status: fallback.kind, data: { ...fallback.detail, instead: tool.name, errorClass } });
      // One commit with the result: a crash cannot leave a used fallback without its step recorded.
      return this.recordResult(tool, args, fallback.result ?? null, attempt, failure.durationMs, { fallback: fallback.kind, before: journal });
    }
    await this.fail({ code: 'TOOL_FAILED', message, tool: tool.name, args, attempts: attempt, errorClass }, journal);
    return 'stop';
  }

  /** The tool's fallback result, or why the fallback has nothing to give. */
  private async runFallback(tool: AnyTool, fallback: ToolFallback, args: unknown, failure: { errorClass: string; message: string }): Promise<FallbackOutcome> {
    const { runner } = this.environment;
    if ('value' in fallback) {
      try {
        return { kind: 'value', result: fallback.value(args as never, failure), detail: {} };
      } catch (error) {
        return { missing: `its value function threw: ${runner.redactor.redactText(errorMessage(error))}` };
      }
    }
    if ('cached' in fallback) {
      const hit = runner.cachedResult(tool, args);
      if (!hit) return { missing: `this worker holds no cached result for these arguments${fallback.maxAgeMs === undefined ? '' : ` younger than ${fallback.maxAgeMs} ms`}` };
      return { kind: 'cached', result: hit.result, detail: { ageMs: hit.ageMs } };
    }
    const other = this.agent.toolsByName.get(fallback.tool)!;
    const parsed = other.input.safeParse(args);
    if (!parsed.success) return { missing: `the arguments do not fit the input schema of tool '${other.name}'` };
    // The fallback tool is a call of its own: it runs only within the principal's grants and its
    // service's breaker and rate budget. It is a last resort, so it never waits: a call that would
    // need a person or a wait is no fallback.
    let journal: NewJournalEntry[] = [];
    if (this.environment.security) {
      const verdict = await this.checkPermission(other, parsed.data);
      journal = verdict.journal;
      if (verdict.outcome !== 'permit') return { missing: `tool '${other.name}' may not run: ${verdict.message}`, journal };
      if (verdict.needsApproval) return { missing: `tool '${other.name}' would need a person's approval: ${verdict.needsApproval.reason}`, journal };
    }
    const blocked = await runner.admit(other, this.record.principal);
    if (blocked) return { missing: `tool '${other.name}' cannot run now: ${blocked.message}`, journal };
    const outcome = await runner.attempt(other, parsed.data, this.toolContext(1));
    if (!outcome.ok) {
      this.context.discard();
      return { missing: `tool '${other.name}' failed too (${'blocked' in outcome ? outcome.blocked.message : `${outcome.classification.errorClass}: ${outcome.message}`})`, journal };
    }
    return { kind: 'tool', result: outcome.result, detail: { tool: other.name }, journal };
  }

  /** Waits in the worker when the wait is short; otherwise parks the workflow with a durable wake-up time. */
  private async waitOrPark(tool: AnyTool, reason: string, waitMs: number, detail: { message: string; service: string; attempt: number }): Promise<boolean> {
    const wakeAt = this.parksFor(waitMs) ? this.environment.now() + waitMs : undefined;
    const entry: NewJournalEntry = {
      step: this.step,
      kind: JournalKind.toolCallDeferred,
      name: tool.name,
      status: reason,
      attempt: detail.attempt,
      data: { service: detail.service, waitMs, parked: wakeAt !== undefined, wakeAt, message: detail.message },
    };
    if (wakeAt !== undefined) {
      Object.assign(entry.data as object, this.takeWaits());
      await this.parkUntil(reason, wakeAt, [entry], `Tool '${tool.name}' cannot run now: ${detail.message}`);
      return false;
    }
    // Under contention a call may wait many times for its budget slot; the journal gets the first
    // wait of each kind, and the count and total of all of them with the call's next entry.
    const waits = (this.shortWaits[reason] ??= { count: 0, totalMs: 0 });
    waits.count++;
    waits.totalMs += waitMs;
    if (waits.count === 1) await this.commit([entry]);
    await sleep(waitMs, undefined, { signal: this.abort.signal });
    return true;
  }

  /** The short waits since the call's last journal entry, for that entry's data; then starts over. */
  private takeWaits(): { waits?: Record<string, { count: number; totalMs: number }> } {
    if (Object.keys(this.shortWaits).length === 0) return {};
    const waits = this.shortWaits;
    this.shortWaits = {};
    return { waits };
  }

  /**
   * Whether a wait becomes a durable park rather than a sleep in this worker: when it is long, or
   * when the worker is asked to stop (the wait is not a call in flight, so it need not hold the
   * worker's shutdown; the timer survives it).
   */
  private parksFor(waitMs: number): boolean {
    return waitMs > this.environment.runner.parkAfterMs || this.stopRequest?.aborted === true;
  }

  private async parkUntil(waitingFor: string, wakeAt: number, journal: NewJournalEntry[], message: string): Promise<void> {
    journal.push({ step: this.step, kind: JournalKind.workflowParked, name: waitingFor, status: 'waiting', data: { wakeAt, message } });
    await this.commit(journal, { status: 'waiting', waitingFor, wakeAt, releaseLease: true });
    this.environment.onEvent?.({ type: 'workflow-parked', workflowId: this.id, step: this.step, waitingFor, wakeAt });
    this.logger.info({ step: this.step, waitingFor, wakeAt }, message);
  }
  private async recordResult(
    tool: AnyTool,
    args: unknown,
    result: unknown,
    attempt: number,
    durationMs: number,
    how: { journaled?: boolean; fallback?: string; before?: NewJournalEntry[] } = {},
  ): Promise<StepOutcome> {
    const from = this.state;
    const completed: NewJournalEntry = {
      step: this.step,
      kind: JournalKind.toolCallCompleted,
      name: tool.name,
      status: 'ok',
      attempt,
      durationMs,
      data: { args, result, ...(how.fallback ? { fallback: how.fallback } : {}), ...this.takeWaits() },
    };
    const journal: NewJournalEntry[] = [...(how.before ?? []), ...(how.journaled ? [] : [completed])];
    let to: string;
    try {
      to = this.transitionFor(tool, result, args);
      this.checkContextSize(tool);
    } catch (error) {
      // The call happened: the failure record keeps its result, so a resume does not repeat it.
      this.context.discard();
      const code = KeelError.isInstance(error) ? error.code : 'INVALID_DEFINITION';
      const message = KeelError.isInstance(error)
        ? error.message
        : `The transition rule of state '${this.state}' for tool '${tool.name}' in agent '${this.agent.name}' threw (workflow ${this.id}, step ${this.step}): ${errorMessage(error)}. Fix the agent definition, then \`keel resume ${this.id}\`; the call's result is kept and the call is not repeated.`;
      await this.fail({ code, message, tool: tool.name, args, attempts: attempt }, journal);
      return 'stop';
    }
    const target = this.agent.states[to]!;
    if (to !== from) journal.push({ step: this.step, kind: JournalKind.stateChanged, name: to, data: { from, to } });
    const patch: WorkflowPatch = { step: this.step + 1, state: to, contextBytes: this.context.bytes };
    if (target.final) Object.assign(patch, this.finishPatch(to, journal, this.step + 1));
    await this.commit(journal, patch, true);
    // The decider sees the result as the journal keeps it: a restart must not show it more.
    if (!how.journaled) this.history.push({ type: 'tool-result', step: this.step, tool: tool.name, args, result: this.redacted(result) });
    this.environment.onEvent?.({ type: 'step-completed', workflowId: this.id, step: this.step, state: to, tool: tool.name, outcome: 'ok' });
    this.state = to;
    this.step++;
    return target.final ? 'stop' : 'continue';
  }

  private checkContextSize(tool: AnyTool): void {
    const contextBytes = this.context.bytes;
    const limit = this.agent.maxContextBytes ?? defaultMaxContextBytes;
    if (contextBytes <= limit) return;
    throw new KeelError(
      'CONTEXT_TOO_LARGE',
      `Workflow ${this.id} context would grow to ${contextBytes} bytes at step ${this.step} (tool '${tool.name}'), over agent '${this.agent.name}'s limit of ${limit} bytes (maxContextBytes). ` +
        `Keep large data outside the context and store a reference, or raise maxContextBytes.`,
      { workflowId: this.id, step: this.step, tool: tool.name },
    );
  }

  private transitionFor(tool: AnyTool, result: unknown, args: unknown): string {
    const definition = this.agent.states[this.state]!;
    const rule = definition.on?.[tool.name];
    const target = typeof rule === 'function' ? rule(result, { input: this.record.input, context: this.context.snapshot(), args }) : rule;
    if (target === undefined || target === this.state) return this.state;
    if (!(definition.next ?? []).includes(target) || !(target in this.agent.states)) {
      throw new KeelError(
        'ILLEGAL_TRANSITION',
        `Agent '${this.agent.name}' tried to move from state '${this.state}' to '${target}' after tool '${tool.name}' (${describeSubject({ workflowId: this.id, step: this.step })}), ` +
          `but '${this.state}' may only move to: ${(definition.next ?? []).join(', ') || 'nowhere'}. Fix the transition in the agent definition, then \`keel resume ${this.id}\`.`,
        { workflowId: this.id, step: this.step, tool: tool.name, agent: this.agent.name },
      );
    }
    return target;
  }

  private finishPatch(stateName: string, journal: NewJournalEntry[], step: number): WorkflowPatch {
    const outcome = this.agent.states[stateName]!.outcome ?? stateName;
    journal.push({ step, kind: JournalKind.workflowCompleted, name: outcome, status: 'completed', data: { outcome } });
    return { status: 'completed', outcome, releaseLease: true };
  }

  private async finish(): Promise<void> {
    const journal: NewJournalEntry[] = [];
    await this.commit(journal, this.finishPatch(this.state, journal, this.step));
  }

  private async fail(failure: Omit<FailureRecord, 'state' | 'step' | 'at'>, journal: NewJournalEntry[] = []): Promise<void> {
    const record: FailureRecord = { ...failure, state: this.state, step: this.step, context: { ...this.context.snapshot() }, at: this.environment.now() };
    journal.push({ step: this.step, kind: JournalKind.workflowFailed, name: failure.code, status: 'failed', data: record });
    await this.commit(journal, { status: 'failed', failure: record, releaseLease: true });
    this.logger.warn({ step: this.step, code: failure.code }, this.environment.runner.redactor.redactText(failure.message));
  }

  /** Parks the workflow for a person; `before` are the principal's entries committed with it (a decision and its permission check). */
  /** Parks the workflow for a person or an operator, or (with `wakeAt`) until a time when it goes on by itself. */
  private async park(waitingFor: string, failure: { code: string; message: string }, before: NewJournalEntry[] = [], wakeAt?: number): Promise<void> {
    const record: FailureRecord = { ...failure, state: this.state, step: this.step, at: this.environment.now() };
    const parked: NewJournalEntry = { step: this.step, kind: JournalKind.workflowParked, name: waitingFor, status: 'waiting', data: wakeAt === undefined ? record : { ...record, wakeAt } };
    const principals = this.recorded(before);
    // Keel parks it on its own account (review, version mismatch, permissions): not an act of the principal.
    const keels = this.recorded([parked], `keel:${this.environment.workerId}`);
    await this.environment.store.commit({
      workflowId: this.id,
      leaseOwner: this.environment.workerId,
      journal: [...principals.journal, ...keels.journal],
      workflow: { status: 'waiting', waitingFor, failure: this.redacted(record), releaseLease: true, ...(wakeAt === undefined ? {} : { wakeAt }) },
      audit: [...principals.audit, ...keels.audit],
    });
    this.metrics?.observe([...before, parked]);
    this.logger.warn({ step: this.step, waitingFor }, this.environment.runner.redactor.redactText(failure.message));
  }

  /** The worker is shutting down: hand the workflow back untouched, to be claimed again. */
  private async release(): Promise<void> {
    await this.commit([], { status: 'pending', releaseLease: true });
  }

  private async commit(journal: NewJournalEntry[], workflow?: WorkflowPatch, withContext = false, crashSafeOnly = false): Promise<void> {
    await this.environment.store.commit({
      crashSafeOnly,
      workflowId: this.id,
      leaseOwner: this.environment.workerId,
      leaseMs: this.environment.leaseMs,
      ...this.recorded(journal),
      context: withContext ? this.context.changes() : undefined,
      workflow: workflow?.failure ? { ...workflow, failure: this.redacted(workflow.failure) } : workflow,
    });
    this.metrics?.observe(journal);
    this.environment.costBreaker?.observe(journal);
    if (withContext) this.context.accept();
  }

  /**
   * Known secrets and sensitive fields out of what is stored: tool results, decisions (a model may
   * copy what it read), arguments and failure records. The context is stored as tools write it.
   */
  private redacted<T>(value: T): T {
    return this.environment.runner.redactor.redact(value) as T;
  }

  /**
   * What a commit stores of these entries: the journal, redacted once, and the audit entries
   * mapped from that redacted journal. The agent acts for the workflow's principal: its steps are
   * audited under the principal's id unless another actor is named.
   */
  private recorded(journal: NewJournalEntry[], actor = this.record.principal.id): { journal: NewJournalEntry[]; audit: NewAuditEntry[] } {
    const stored = this.redacted(journal);
    return { journal: stored, audit: auditFromRedactedJournal(stored, { workflowId: this.id, actor, workerId: this.environment.workerId }) };
  }


  private decisionEntry(decision: DecisionRecord): NewJournalEntry {
    return {
      step: this.step,
      kind: JournalKind.actionDecided,
      name: decision.tool,
      status: decision.source,
      durationMs: decision.durationMs ?? null,
      tokensIn: decision.usage?.inputTokens ?? null,
      tokensOut: decision.usage?.outputTokens ?? null,
      data: { decision },
    };
  }

  private idempotencyKey(): string {
    return `${this.id}:${this.step}`;
  }

  private async renewLease(): Promise<void> {
    try {
      const held = await this.environment.store.renewLease(this.id, this.environment.workerId, this.environment.leaseMs);
      if (!held) this.abort.abort(new KeelError('LEASE_LOST', `Worker ${this.environment.workerId} lost the lease on workflow ${this.id}.`, { workflowId: this.id }));
    } catch (error) {
      this.logger.error({ error: errorMessage(error) }, 'lease renewal failed');
    }
  }

  private async onUnexpected(error: unknown): Promise<void> {
    if (KeelError.isInstance(error) && error.code === 'LEASE_LOST') {
      this.logger.warn({ step: this.step }, error.message);
      return;
    }
    if (this.abort.signal.aborted) {
      // Shutting down mid-call: the lease expires and another worker resumes the step.
      this.logger.warn({ step: this.step }, 'stopped while a call was in flight; the workflow will be recovered');
      return;
    }
    const code = KeelError.isInstance(error) ? error.code : 'SYSTEM_ERROR';
    try {
      await this.fail({ code, message: `Workflow ${this.id} stopped on an unexpected error at step ${this.step} in state '${this.state}': ${errorMessage(error)}` });
    } catch (failError) {
      this.logger.error({ error: errorMessage(failError) }, 'could not record the failure; the lease will expire and the workflow will be recovered');
    }
  }
}
