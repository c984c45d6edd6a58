// Keel's public API. Only what is exported here is API; nothing else is reached by deep imports.

export { createKeel, Keel } from './agent/keel.js';
export type { KeelOptions, StartOptions, ResumeOptions, WorkerOptions, Inspection } from './agent/keel.js';
export { defineAgent } from './agent/define-agent.js';
export type { Agent, AgentDefinition, StateDefinition, TransitionContext, TransitionTarget, WorkflowSnapshot } from './agent/define-agent.js';
export type { KeelEvent, KeelEventListener } from './agent/events.js';
export { defineTool } from './tools/tool.js';
export type { Tool, ToolContext, ToolDefinition, AnyTool } from './tools/tool.js';
export { ToolError, ErrorClass, classifyError } from './tools/tool-error.js';
export { createCredentialProvider } from './tools/credentials.js';
export type { CredentialProvider, CredentialProviderOptions, IssuedToken } from './tools/credentials.js';
export type { ServiceConfig } from './tools/tool-runner.js';
export type { BackoffPolicy } from './tools/backoff.js';
export type { BreakerConfig } from './tools/circuit-breakers.js';
export type { BudgetConfig } from './tools/rate-budget.js';
export { KeelError, ErrorCode, ErrorSource } from './errors.js';
export { AuditKind, genesisHash } from './audit/audit-entry.js';
export type { AuditEntry, AuditHead, AuditQuery, NewAuditEntry, StoredAuditEntry } from './audit/audit-entry.js';
export { canonicalJson } from './audit/canonical-json.js';
export { verifyAuditChain, AuditFault } from './audit/verify.js';
export type { AuditVerification, BadAuditEntry, VerifyOptions } from './audit/verify.js';
export { exportAudit, verifyExport } from './audit/export.js';
export type { AuditExportHeader } from './audit/export.js';
export { GenAiAttribute, GenAiOperation, KeelAttribute, genAiSemconvVersion, latestGenAiNamesOnly } from './telemetry/semconv.js';
export { formatTraceparent, parseTraceparent } from './telemetry/workflow-tracing.js';
export { KeelMetrics, keelMetrics, ErrorSource as MetricsErrorSource } from './telemetry/metrics.js';
export { recordFeedback, readFeedback } from './telemetry/feedback.js';
export type { Feedback, RecordedFeedback } from './telemetry/feedback.js';
export { productionStats } from './telemetry/stats.js';
export type { ProductionStats, AgentVersionStats } from './telemetry/stats.js';
export { priceTable, genaiPricesVersion } from './cost/prices.js';
export type { PriceTable, PriceOptions, ModelPriceOverride, CallCost } from './cost/prices.js';
export { costReport, costedCalls, CostGrouping } from './cost/cost-report.js';
export type { CostReport, CostLine, CostedCall } from './cost/cost-report.js';
export { SpendBudgets } from './cost/budgets.js';
export type { BudgetLimits, BudgetRefusal } from './cost/budgets.js';
export { CostBreaker } from './cost/cost-breaker.js';
export type { CostBreakerConfig, CostBreakerStatus } from './cost/cost-breaker.js';
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
export { addGrant, revokeGrant, grantState } from './security/grants.js';
export type { GrantRequest, GrantState } from './security/grants.js';
export { DenialCode } from './security/authorizer.js';
export { reviewPermissions } from './security/review.js';
export type { PermissionReview, ReviewOptions } from './security/review.js';
export type { SecurityOptions, StartPermissions } from './security/security.js';
export type { Grant, GrantQuery, NewGrant } from './store/types.js';
export { ApprovalStatus } from './store/types.js';
export type { ApprovalRequest, ApprovalQuery } from './store/types.js';
export {
  allOf,
  argsMatch,
  confidenceBelow,
  defaultConfidenceThreshold,
  evaluateApproval,
  keywords,
  principalHasRole,
  principalLacksRole,
  toolRequiresApproval,
} from './approval/policy.js';
export type { ApprovalPolicy, ApprovalRule, ProposedAction } from './approval/policy.js';
export type { ApproveOptions, RejectOptions } from './approval/decisions.js';
export { createDecisionToken, verifyDecisionToken, DecisionTokenError } from './approval/decision-token.js';
export type { DecisionTokenPayload } from './approval/decision-token.js';
export type { ApprovalNotification, ApprovalNotifierOptions } from './approval/notifier.js';
export { humanHandoffTool } from './approval/handoff.js';
export { systemClock } from './util/clock.js';
export type { Clock } from './util/clock.js';
