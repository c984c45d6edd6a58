// Keel's public API. Only what is exported here is API; nothing else is reached by deep imports.

export { createKeel, Keel } from './agent/keel.js';
export type { KeelOptions, StartOptions, WorkerOptions, Inspection } from './agent/keel.js';
export { defineAgent } from './agent/define-agent.js';
export type { Agent, AgentDefinition, StateDefinition, TransitionContext, TransitionTarget, WorkflowSnapshot } from './agent/define-agent.js';
export type { KeelEvent, KeelEventListener } from './agent/events.js';
export { defineTool } from './tools/tool.js';
export type { Tool, ToolContext, ToolDefinition, AnyTool } from './tools/tool.js';
export { ToolError, ErrorClass, classifyError } from './tools/tool-error.js';
export { KeelError, ErrorCode, ErrorSource } from './errors.js';
export { modelDecider } from './model/model-decider.js';
export { codeDecider } from './model/code-decider.js';
export type { DecideFunction } from './model/code-decider.js';
export type { Decision, DecisionRecord, DecisionView, Observation, ModelUsage, Decider, ToolCatalog } from './model/decision.js';
export { modelFromEnv, parseModelSpec, createModel } from './model/model-from-env.js';
export type { ModelSpec } from './model/model-from-env.js';
export { openStore, defaultDatabasePath } from './store/open-store.js';
export { openSqliteStore, SqliteStore, Durability } from './store/sqlite/sqlite-store.js';
export { WorkflowStatus, JournalKind } from './store/types.js';
export type { Store, WorkflowRecord, JournalEntry, Principal, FailureRecord } from './store/types.js';
export { systemClock } from './util/clock.js';
export type { Clock } from './util/clock.js';
