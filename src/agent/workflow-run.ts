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
import { replayJournal } from '../workflow/replay.js';
import { classifyError, isRetryable, ToolError, type ErrorClass } from '../tools/tool-error.js';
import { callTool, retryDelayMs } from '../tools/call-tool.js';
import type { AnyTool } from '../tools/tool.js';
import type { Logger } from '../util/logger.js';
import {
  JournalKind,
  type Claim,
  type FailureRecord,
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
  onEvent?: KeelEventListener;
}

const defaultMaxSteps = 50;
const defaultMaxContextBytes = 1024 * 1024;
const modelAttempts = 3;

type StepOutcome = 'continue' | 'stop';
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
  private attemptsMade = 0;
  /** Aborted only when the lease is lost: cancels the call in flight. */
  private readonly abort = new AbortController();
  /**
   * The caller asking the run to stop (a worker shutting down). The step in flight finishes and
   * commits first, so the workflow goes back to pending at once instead of waiting for its lease
   * to expire, and no call is cut off half way.
   */
  private readonly stopRequest?: AbortSignal;
  private readonly logger: Logger;

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
      if (await this.prepare(recovered)) {
        while ((await this.next()) === 'continue');
      }
    } catch (error) {
      await this.onUnexpected(error);
    } finally {
      clearInterval(heartbeat);
    }
    const final = (await this.environment.store.getWorkflow(this.id))!;
    this.environment.onEvent?.({ type: 'workflow-stopped', workflow: final });
    return final;
  }

  /** Loads context and journal; refuses a changed definition; counts crash recoveries. */
  private async prepare(recovered: boolean): Promise<boolean> {
    const { store } = this.environment;
    // Loaded before migrating: a migration that throws fails the workflow, and the failure record
    // saves the context (without it the workflow would stay 'running' and crash-loop workers).
    this.context = new ContextState(await store.loadContext(this.id));
    if (this.record.agentVersion !== this.agent.versionId) {
      if (!(await this.migrate())) return false;
      this.context = new ContextState(await store.loadContext(this.id));
    }
    const replayed = replayJournal(await store.readJournal(this.id), this.step);
    this.history = replayed.history;
    this.pendingDecision = replayed.pendingDecision;
    this.attemptsMade = replayed.attemptsMade;
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
    await this.environment.store.commit({
      workflowId: this.id,
      leaseOwner: this.environment.workerId,
      journal: [{ step: this.step, kind: JournalKind.workflowMigrated, data: { from: this.record.agentVersion, to: this.agent.versionId, state: { from: this.state, to: after.state } } }],
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
    let attemptsMade = this.attemptsMade;
    this.pendingDecision = undefined;
    this.attemptsMade = 0;
    let gate: Gate;
    if (decision) {
      gate = this.gate(decision);
    } else {
      decision = await this.decide(definition);
      if (!decision) return 'stop';
      gate = this.gate(decision);
      const journal: NewJournalEntry[] = [this.decisionEntry(decision)];
      if (gate.ok && gate.tool.sideEffect) {
        journal.push({ step: this.step, kind: JournalKind.checkpointSaved, data: { state: this.state, contextBytes: this.context.bytes } });
      }
      if (gate.ok) await this.commit(journal);
      else return this.observeRefusal(decision, gate, journal);
    }
    if (!gate.ok) return this.observeRefusal(decision, gate, []);
    return this.act(gate.tool, gate.args, attemptsMade);
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
    for (let attempt = 1; ; attempt++) {
      try {
        return await decider.decide(view, this.environment.catalogFor(this.agent, this.state), this.abort.signal);
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

  private async act(tool: AnyTool, args: unknown, attemptsMade: number): Promise<StepOutcome> {
    const maxAttempts = Math.max(attemptsMade + 1, tool.maxAttempts ?? 3);
    for (let attempt = attemptsMade + 1; ; attempt++) {
      const started = performance.now();
      try {
        const result = await callTool(tool, args, {
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
          signal: this.abort.signal,
        });
        return await this.recordResult(tool, args, result ?? null, attempt, performance.now() - started);
      } catch (error) {
        this.context.discard();
        if (KeelError.isInstance(error) && (error.code === 'ILLEGAL_TRANSITION' || error.code === 'CONTEXT_TOO_LARGE')) {
          await this.fail({ code: error.code, message: error.message, tool: tool.name, args, attempts: attempt });
          return 'stop';
        }
        if (KeelError.isInstance(error) && error.code === 'LEASE_LOST') throw error;
        if (this.abort.signal.aborted) throw error;
        const outcome = await this.recordFailure(tool, args, error, attempt, maxAttempts, performance.now() - started);
        if (outcome !== 'retry') return outcome;
      }
    }
  }

  private async recordResult(tool: AnyTool, args: unknown, result: unknown, attempt: number, durationMs: number): Promise<StepOutcome> {
    const from = this.state;
    const to = this.transitionFor(tool, result, args);
    const target = this.agent.states[to]!;
    const journal: NewJournalEntry[] = [
      { step: this.step, kind: JournalKind.toolCallCompleted, name: tool.name, status: 'ok', attempt, durationMs, data: { args, result } },
    ];
    if (to !== from) journal.push({ step: this.step, kind: JournalKind.stateChanged, name: to, data: { from, to } });
    const contextBytes = this.context.bytes;
    const limit = this.agent.maxContextBytes ?? defaultMaxContextBytes;
    if (contextBytes > limit) {
      throw new KeelError(
        'CONTEXT_TOO_LARGE',
        `Workflow ${this.id} context would grow to ${contextBytes} bytes at step ${this.step} (tool '${tool.name}'), over agent '${this.agent.name}'s limit of ${limit} bytes (maxContextBytes). ` +
          `Keep large data outside the context and store a reference, or raise maxContextBytes.`,
        { workflowId: this.id, step: this.step, tool: tool.name },
      );
    }
    const patch: WorkflowPatch = { step: this.step + 1, state: to, contextBytes };
    if (target.final) Object.assign(patch, this.finishPatch(to, journal, this.step + 1));
    await this.commit(journal, patch, true);
    this.history.push({ type: 'tool-result', step: this.step, tool: tool.name, args, result });
    this.environment.onEvent?.({ type: 'step-completed', workflowId: this.id, step: this.step, state: to, tool: tool.name, outcome: 'ok' });
    this.state = to;
    this.step++;
    return target.final ? 'stop' : 'continue';
  }

  private async recordFailure(
    tool: AnyTool,
    args: unknown,
    error: unknown,
    attempt: number,
    maxAttempts: number,
    durationMs: number,
  ): Promise<StepOutcome | 'retry'> {
    const errorClass: ErrorClass = classifyError(error);
    const retry = isRetryable(errorClass) && attempt < maxAttempts;
    const feedBack = errorClass === 'invalid-input' || errorClass === 'permission-denied';
    const delayMs = retry ? retryDelayMs(attempt, error) : 0;
    const next = retry ? `retrying in ${delayMs} ms` : feedBack ? 'the decider sees the error' : 'the workflow fails';
    const message = `Tool '${tool.name}' failed (${errorClass}, attempt ${attempt} of ${maxAttempts}, workflow ${this.id}, step ${this.step}): ${errorMessage(error)}; ${next}.`;
    const journal: NewJournalEntry[] = [
      {
        step: this.step,
        kind: JournalKind.toolCallFailed,
        name: tool.name,
        status: errorClass,
        attempt,
        durationMs,
        data: { args, errorClass, message, delayMs, final: !retry, details: ToolError.isInstance(error) ? error.details : undefined },
      },
    ];
    if (tool.sideEffect) journal.push({ step: this.step, kind: JournalKind.rolledBack, name: tool.name, data: { toCheckpoint: this.step, state: this.state } });
    if (retry) {
      await this.commit(journal);
      this.environment.onEvent?.({ type: 'tool-attempt-failed', workflowId: this.id, step: this.step, tool: tool.name, attempt, errorClass, delayMs });
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
    await this.fail({ code: 'TOOL_FAILED', message, tool: tool.name, args, attempts: attempt, errorClass }, journal);
    return 'stop';
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
    this.logger.warn({ step: this.step, code: failure.code }, failure.message);
  }

  private async park(waitingFor: string, failure: { code: string; message: string }): Promise<void> {
    const record: FailureRecord = { ...failure, state: this.state, step: this.step, at: this.environment.now() };
    await this.environment.store.commit({
      workflowId: this.id,
      leaseOwner: this.environment.workerId,
      journal: [{ step: this.step, kind: JournalKind.workflowParked, name: waitingFor, status: 'waiting', data: record }],
      workflow: { status: 'waiting', waitingFor, failure: record, releaseLease: true },
    });
    this.logger.warn({ step: this.step, waitingFor }, failure.message);
  }

  /** The worker is shutting down: hand the workflow back untouched, to be claimed again. */
  private async release(): Promise<void> {
    await this.commit([], { status: 'pending', releaseLease: true });
  }

  private async commit(journal: NewJournalEntry[], workflow?: WorkflowPatch, withContext = false): Promise<void> {
    await this.environment.store.commit({
      workflowId: this.id,
      leaseOwner: this.environment.workerId,
      leaseMs: this.environment.leaseMs,
      journal,
      context: withContext ? this.context.changes() : undefined,
      workflow,
    });
    if (withContext) this.context.accept();
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
