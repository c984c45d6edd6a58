// LangGraph.js's side of the bench: the same workflow written the way a LangGraph user writes an
// agent loop. An 'agent' node asks the model for the next action (generateText with the same
// scripted model and the same prompt shape as Keel's model decider), a 'tools' node runs the
// chosen tool, and a conditional edge loops back until the task is done. State is checkpointed
// by SqliteSaver in a SQLite file. The model's last 40 observations live in graph state (Keel
// keeps them in its journal); S2's messages live in a channel with an append reducer. The
// agent node times its model decision, and a SqliteSaver subclass times every checkpoint write.

import Database from 'better-sqlite3';
import { generateText, jsonSchema, tool, type LanguageModel, type ModelMessage, type ToolSet } from 'ai';
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import { z } from 'zod';
import type { DecisionView, Observation } from '../src/index.js';
import { scriptedModel } from '../src/testing.js';
import {
  BenchDurability,
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

export interface LangGraphLoopOptions {
  path: string;
  steps: number;
  /** normal/full: durability 'sync' and that SQLite synchronous setting, as Keel; langgraph-default: neither set. */
  durability: BenchDurability;
  /** S2: every step appends a 1 KB message to the 'messages' channel. */
  appendMessages?: boolean;
}

export interface LangGraphManyOptions {
  path: string;
  workflows: number;
  stepsPerWorkflow: number;
  concurrency: number;
  durability: BenchDurability;
}

const LoopState = Annotation.Root({
  steps: Annotation<number>(),
  step: Annotation<number>(),
  action: Annotation<{ tool: string; args: unknown } | null>(),
  history: Annotation<Observation[]>({
    reducer: (current, update) => current.concat(update).slice(-historyWindow),
    default: () => [],
  }),
  messages: Annotation<string[]>({ reducer: (current, update) => current.concat(update), default: () => [] }),
});
type LoopState = typeof LoopState.State;

const workInput = z.object({ step: z.number().int().nonnegative() });

const tools: ToolSet = {
  [workToolName]: tool({
    description: 'Does one unit of work and says whether the task is done.',
    inputSchema: jsonSchema({
      type: 'object',
      properties: {
        reasoning: { type: 'string', description: 'Why this action is the right next step, in one or two sentences.' },
        confidence: { type: 'number', minimum: 0, maximum: 1, description: 'How confident you are that this action is correct, from 0 to 1.' },
        input: z.toJSONSchema(workInput) as Record<string, unknown>,
      },
      required: ['reasoning', 'confidence', 'input'],
      additionalProperties: false,
    }),
  }),
};

interface GraphOptions {
  model: Exclude<LanguageModel, string>;
  checkpointer: SqliteSaver;
  appendMessages: boolean;
  /** Receives the step's log: the model time, and the step's end once its tool has run (the graph then checkpoints and loops). */
  log?: StepLog;
}

/** SqliteSaver with the time of every checkpoint and pending-writes write reported: the bench's write time. */
class TimedSqliteSaver extends SqliteSaver {
  onWrite?: (ms: number) => void;

  override async put(...args: Parameters<SqliteSaver['put']>): ReturnType<SqliteSaver['put']> {
    const started = performance.now();
    try {
      return await super.put(...args);
    } finally {
      this.onWrite?.(performance.now() - started);
    }
  }

  override async putWrites(...args: Parameters<SqliteSaver['putWrites']>): ReturnType<SqliteSaver['putWrites']> {
    const started = performance.now();
    try {
      return await super.putWrites(...args);
    } finally {
      this.onWrite?.(performance.now() - started);
    }
  }
}

function loopGraph(options: GraphOptions) {
  const agent = async (state: LoopState, config: { configurable?: Record<string, unknown> }) => {
    const started = performance.now();
    const view: DecisionView = {
      workflowId: String(config.configurable?.thread_id),
      agent: loopAgentName,
      step: state.step,
      state: 'working',
      input: { steps: state.steps },
      context: options.appendMessages ? { messages: state.messages } : {},
      allowedTools: [workToolName],
      history: state.history,
      lastObservation: state.history[state.history.length - 1],
    };
    const result = await generateText({
      model: options.model,
      system: systemPrompt(view),
      messages: promptMessages(view),
      tools,
      toolChoice: 'required',
      maxRetries: 0,
      providerOptions: { keel: { view: view as never } },
    });
    options.log?.addModel(performance.now() - started);
    const call = result.toolCalls[0];
    if (!call) throw new Error(`The model answered without a tool call at step ${state.step} (finish reason '${result.finishReason}').`);
    return { action: { tool: call.toolName, args: (call.input as { input?: unknown }).input } };
  };

  const runTool = async (state: LoopState) => {
    if (state.action?.tool !== workToolName) throw new Error(`Unknown tool '${state.action?.tool}' at step ${state.step}; the only tool is '${workToolName}'.`);
    const args = workInput.parse(state.action.args);
    const result = { step: args.step, done: args.step + 1 >= state.steps };
    const observation: Observation = { type: 'tool-result', step: state.step, tool: workToolName, args, result };
    options.log?.endStep();
    return { step: state.step + 1, action: null, history: [observation], ...(options.appendMessages ? { messages: [oneKbMessage] } : {}) };
  };

  return new StateGraph(LoopState)
    .addNode('agent', agent)
    .addNode('tools', runTool)
    .addEdge(START, 'agent')
    .addEdge('agent', 'tools')
    .addConditionalEdges('tools', (state: LoopState) => (state.step >= state.steps ? END : 'agent'))
    .compile({ checkpointer: options.checkpointer });
}

/** Defaults: the database as SqliteSaver.fromConnString opens it, and LangGraph's default durability ('async'). */
function openCheckpointer(path: string, durability: BenchDurability): { checkpointer: TimedSqliteSaver; invokeDurability: 'sync' | undefined } {
  const database = new Database(path);
  if (durability === BenchDurability.langgraphDefault) return { checkpointer: new TimedSqliteSaver(database), invokeDurability: undefined };
  database.pragma('journal_mode = WAL');
  database.pragma(`synchronous = ${durability === BenchDurability.full ? 'FULL' : 'NORMAL'}`);
  return { checkpointer: new TimedSqliteSaver(database), invokeDurability: 'sync' };
}

/** Two supersteps (agent, tools) per step, plus a margin for the start. */
function recursionLimitFor(steps: number): number {
  return 2 * steps + 10;
}

export async function runLangGraphLoop(options: LangGraphLoopOptions): Promise<StepSeries> {
  const { checkpointer, invokeDurability } = openCheckpointer(options.path, options.durability);
  const log = new StepLog();
  checkpointer.onWrite = (ms) => log.addWrite(ms);
  try {
    const graph = loopGraph({ model: scriptedModel(decideWork), checkpointer, appendMessages: options.appendMessages ?? false, log });
    log.start();
    const final = await graph.invoke(
      { steps: options.steps, step: 0, action: null },
      { configurable: { thread_id: 'bench-loop-1' }, recursionLimit: recursionLimitFor(options.steps), durability: invokeDurability },
    );
    const totalMs = log.elapsedMs();
    if (final.step !== options.steps || log.steps !== options.steps) {
      throw new Error(`The LangGraph bench run ended after ${final.step} of ${options.steps} steps. The bench figures would be wrong, so the bench stops.`);
    }
    return log.series({ totalMs, databaseBytes: databaseBytes(options.path), synchronous: synchronousName(checkpointer.db) });
  } finally {
    checkpointer.db.close();
  }
}

/** S3 reference: every workflow is one invoke on its own thread, `concurrency` invokes in flight at once. */
export async function runLangGraphMany(options: LangGraphManyOptions): Promise<ThroughputRun> {
  const { checkpointer, invokeDurability } = openCheckpointer(options.path, options.durability);
  try {
    const graph = loopGraph({ model: scriptedModel(decideWork), checkpointer, appendMessages: false });
    let next = 0;
    let completed = 0;
    const lane = async () => {
      while (next < options.workflows) {
        const index = next++;
        const final = await graph.invoke(
          { steps: options.stepsPerWorkflow, step: 0, action: null },
          { configurable: { thread_id: `bench-many-${index}` }, recursionLimit: recursionLimitFor(options.stepsPerWorkflow), durability: invokeDurability },
        );
        if (final.step === options.stepsPerWorkflow) completed++;
      }
    };
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: options.concurrency }, lane));
    const totalMs = performance.now() - startedAt;
    return { workflows: options.workflows, stepsPerWorkflow: options.stepsPerWorkflow, concurrency: options.concurrency, totalMs, completed };
  } finally {
    checkpointer.db.close();
  }
}

// The prompt Keel's model decider builds, so both systems hand the AI SDK the same amount of work.
function systemPrompt(view: DecisionView): string {
  return [
    `You are the '${view.agent}' agent.`,
    `Current state: ${view.state}. Step ${view.step}.`,
    `Decide only the next action: call exactly one of the allowed tools (${view.allowedTools.join(', ')}).`,
    'Give your reasoning and a confidence between 0 and 1 with the call; put the tool arguments in `input`.',
    'If a previous call failed, read its error and adapt instead of repeating it unchanged.',
  ].join('\n');
}

function promptMessages(view: DecisionView): ModelMessage[] {
  const messages: ModelMessage[] = [{ role: 'user', content: `Task input:\n${JSON.stringify(view.input, null, 2)}` }];
  for (const observation of view.history) {
    const toolCallId = `step-${observation.step}`;
    messages.push({ role: 'assistant', content: [{ type: 'tool-call', toolCallId, toolName: observation.tool, input: { input: observation.args } }] });
    const output =
      observation.type === 'tool-result'
        ? { type: 'json' as const, value: (observation.result ?? null) as never }
        : { type: 'error-text' as const, value: `${observation.errorClass}: ${observation.message}` };
    messages.push({ role: 'tool', content: [{ type: 'tool-result', toolCallId, toolName: observation.tool, output }] });
  }
  return messages;
}
