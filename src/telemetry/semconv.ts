// The attribute and span names Keel's telemetry uses, as Keel's own constants.
//
// The GenAI semantic conventions are still marked Development, and the gen_ai constants in
// @opentelemetry/semantic-conventions 1.45 are deprecated in favour of a separate GenAI package,
// so Keel names the exact spec strings here instead of importing them: a rename upstream cannot
// silently change what Keel emits. The strings follow the spec version below.
//
// OTEL_SEMCONV_STABILITY_OPT_IN (comma-separated) is honoured as the spec asks of instrumentations
// that emitted an older GenAI version: with `gen_ai_latest_experimental` Keel emits only the
// latest names; without it Keel also emits the pre-1.37 aliases whose names changed
// (gen_ai.system beside gen_ai.provider.name), so dashboards built on the older names keep working.
// See docs/observability.md.

/**
 * The semantic-conventions version these names follow: checked against the incubating entry point
 * of @opentelemetry/semantic-conventions 1.45.0, whose versions track the spec's.
 */
export const genAiSemconvVersion = '1.45.0';

export const GenAiAttribute = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  responseFinishReasons: 'gen_ai.response.finish_reasons',
  usageInputTokens: 'gen_ai.usage.input_tokens',
  usageOutputTokens: 'gen_ai.usage.output_tokens',
  usageCacheReadInputTokens: 'gen_ai.usage.cache_read.input_tokens',
  usageCacheCreationInputTokens: 'gen_ai.usage.cache_creation.input_tokens',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  toolType: 'gen_ai.tool.type',
  agentName: 'gen_ai.agent.name',
  agentId: 'gen_ai.agent.id',
  conversationId: 'gen_ai.conversation.id',
  tokenType: 'gen_ai.token.type',
  /** Before 1.37 the provider was `gen_ai.system`; emitted as well unless the opt-in asks for the latest names only. */
  legacySystem: 'gen_ai.system',
} as const;

/** Values of gen_ai.operation.name Keel emits. */
export const GenAiOperation = {
  invokeAgent: 'invoke_agent',
  chat: 'chat',
  executeTool: 'execute_tool',
} as const;

/** The general attribute the spec uses for a failed operation's class. */
export const errorType = 'error.type';

/** Keel's own attributes: the durable runtime's view that the GenAI spec has no names for. */
export const KeelAttribute = {
  workflowId: 'keel.workflow.id',
  agentVersion: 'keel.agent.version',
  principal: 'keel.principal',
  step: 'keel.step',
  stateFrom: 'keel.state.from',
  stateTo: 'keel.state.to',
  confidence: 'keel.confidence',
  costUsd: 'keel.cost.usd',
  toolAttempts: 'keel.tool.attempts',
  recovered: 'keel.workflow.recovered',
  outcome: 'keel.workflow.outcome',
  status: 'keel.workflow.status',
} as const;

/** The span names the spec asks for: `{operation} {target}`. */
export function spanName(operation: string, target: string | undefined): string {
  return target ? `${operation} ${target}` : operation;
}

/** Whether OTEL_SEMCONV_STABILITY_OPT_IN asks for the latest experimental GenAI names only. */
export function latestGenAiNamesOnly(optIn: string | undefined = process.env.OTEL_SEMCONV_STABILITY_OPT_IN): boolean {
  return (optIn ?? '')
    .split(',')
    .map((value) => value.trim())
    .includes('gen_ai_latest_experimental');
}
