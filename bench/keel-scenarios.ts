// Keel's side of the bench, written the way a user writes a Keel agent: defineAgent with one
// tool, the scripted model from keel/testing as the model (so every step is a real AI SDK
// generateText call), and createKeel over openSqliteStore. Step times come from the onEvent
// listener's step-completed events, each decision's model time from the duration Keel journals
// for it, and write times from a wrapper around the store's commit; nothing inside Keel is
// patched.

import { z } from 'zod';
import { createKeel, defineAgent, defineTool, JournalKind, modelDecider, openSqliteStore, type Agent, type Durability, type Observation, type Store, type ToolCatalog } from '../src/index.js';
import { scriptedModel } from '../src/testing.js';
import {
  databaseBytes,
  decideWork,
  historyWindow,
  loopAgentName,
  oneKbMessage,
  StepLog,
  synchronousName,
  workToolName,
  type StepSeries,
  type ThroughputRun,
} from './workload.js';

export interface KeelLoopOptions {
  path: string;
  steps: number;
  durability: Durability;
  /** S2: the tool appends a 1 KB message to the context list 'messages' every step. */
  appendMessages?: boolean;
}

export interface KeelManyOptions {
  path: string;
  workflows: number;
  stepsPerWorkflow: number;
  concurrency: number;
  durability: Durability;
}

/** One workflow of `steps` steps, each one model decision and one call of the work tool. */
export function loopAgent(appendMessages: boolean, maxSteps: number): Agent {
  const work = defineTool({
    name: workToolName,
    description: 'Does one unit of work and says whether the task is done.',
    input: z.object({ step: z.number().int().nonnegative() }),
    execute(args, context) {
      if (appendMessages) context.append('messages', oneKbMessage);
      const { steps } = context.input as { steps: number };
      return { step: args.step, done: args.step + 1 >= steps };
    },
  });
  return defineAgent({
    name: loopAgentName,
    tools: [work],
    states: {
      working: { tools: [workToolName], next: ['done'], on: { [workToolName]: (result: { done: boolean }) => (result.done ? 'done' : undefined) } },
      done: { final: true },
    },
    initial: 'working',
    input: z.object({ steps: z.number().int().positive() }),
    maxSteps,
    // Room for every appended message (JSON quotes and separators included) and then some.
    maxContextBytes: appendMessages ? maxSteps * (oneKbMessage.length + 8) + 64 * 1024 : undefined,
  });
}

export async function runKeelLoop(options: KeelLoopOptions): Promise<StepSeries> {
  const agent = loopAgent(options.appendMessages ?? false, options.steps);
  const log = new StepLog();
  const sqlite = openSqliteStore({ path: options.path, durability: options.durability });
  const keel = createKeel({
    store: timingCommits(sqlite, (ms) => log.addWrite(ms)),
    agents: [agent],
    model: scriptedModel(decideWork),
    onEvent: (event) => {
      if (event.type === 'step-completed') log.endStep();
    },
  });
  try {
    log.start();
    const workflow = await keel.startAndRun(agent.name, { steps: options.steps });
    const totalMs = log.elapsedMs();
    if (workflow.status !== 'completed' || log.steps !== options.steps) {
      throw new Error(
        `Keel bench workflow ${workflow.id} ended ${workflow.status} after ${log.steps} of ${options.steps} steps` +
          `${workflow.failure ? `: ${workflow.failure.message}` : ''}. The bench figures would be wrong, so the bench stops.`,
      );
    }
    const decisions = (await sqlite.readJournal(workflow.id)).filter((entry) => entry.kind === JournalKind.actionDecided);
    log.useModelMs(decisions.map((entry) => entry.durationMs ?? 0));
    return log.series({ totalMs, databaseBytes: databaseBytes(options.path), synchronous: synchronousName(sqlite.db) });
  } finally {
    await keel.close();
  }
}

/** The store as Keel sees it, with the time of every commit reported: the bench's write time. */
function timingCommits(store: Store, onCommit: (ms: number) => void): Store {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'commit') {
        return async (commit: Parameters<Store['commit']>[0]) => {
          const started = performance.now();
          try {
            await target.commit(commit);
          } finally {
            onCommit(performance.now() - started);
          }
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** S3: start every workflow, then one worker runs them `concurrency` at a time until none is left. */
export async function runKeelMany(options: KeelManyOptions): Promise<ThroughputRun> {
  const agent = loopAgent(false, options.stepsPerWorkflow);
  const keel = createKeel({ store: openSqliteStore({ path: options.path, durability: options.durability }), agents: [agent], model: scriptedModel(decideWork) });
  try {
    const startedAt = performance.now();
    for (let index = 0; index < options.workflows; index++) await keel.start(agent.name, { steps: options.stepsPerWorkflow });
    await keel.work({ concurrency: options.concurrency, once: true });
    const totalMs = performance.now() - startedAt;
    const completed = (await keel.store.countByStatus()).completed;
    return { workflows: options.workflows, stepsPerWorkflow: options.stepsPerWorkflow, concurrency: options.concurrency, totalMs, completed };
  } finally {
    await keel.close();
  }
}

/**
 * The model decision alone, as Keel makes it every step (modelDecider over the scripted model,
 * one generateText call with a growing history), without any store: the share of a step that
 * is the AI SDK's and the scripted model's, not Keel's bookkeeping.
 */
export async function measureDecisionCost(steps: number): Promise<number[]> {
  const decide = standaloneDecisions(steps);
  const durations: number[] = [];
  for (let step = 0; step < steps; step++) {
    const started = performance.now();
    await decide(step);
    durations.push(performance.now() - started);
  }
  return durations;
}

/** Makes Keel's model decision for step after step of the loop workflow, keeping the history a Keel run would keep. */
export function standaloneDecisions(steps: number): (step: number) => Promise<void> {
  const decider = modelDecider({ model: scriptedModel(decideWork), historyWindow });
  const agent = loopAgent(false, steps);
  const catalog: ToolCatalog = [{ name: workToolName, description: agent.toolsByName.get(workToolName)!.description, parameters: agent.toolParameters.get(workToolName)! }];
  const history: Observation[] = [];
  const signal = new AbortController().signal;
  return async (step) => {
    const view = {
      workflowId: 'wf_decision_cost',
      agent: agent.name,
      step,
      state: 'working',
      input: { steps },
      context: {},
      allowedTools: [workToolName],
      history,
      lastObservation: history[history.length - 1],
    };
    const decision = await decider.decide(view, catalog, signal);
    history.push({ type: 'tool-result', step, tool: decision.tool, args: decision.args, result: { step, done: step + 1 >= steps } });
  };
}
