// Spans for one workflow run, through @opentelemetry/api only: the SDK and exporters are wired by
// the user (or Keel's CLI/worker). With no SDK registered the API hands out non-recording spans,
// and every attribute below is built only when `span.isRecording()`, so tracing off costs a few
// object allocations per step (measured in bench/telemetry-overhead.ts).
//
// Trace shape: `invoke_agent {agent}` per run of the workflow on a worker (a resumed workflow has
// one per run), with `chat {model}` per model call and `execute_tool {tool}` per tool call as
// children. Every run of a workflow, on any worker, is a child of the trace context stored in its
// `workflow-started` journal entry (the caller's span when it was started, or Keel's start span),
// so a workflow resumed on another worker continues the same trace. A workflow started with
// tracing off has no stored context; its runs then hang under a context derived from its id, so
// they still share one trace.
//
// This module never throws into the step loop: telemetry is not allowed to fail a workflow.

import { createHash } from 'node:crypto';
import { context, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import type { DecisionRecord } from '../model/decision.js';
import { errorType, GenAiAttribute, GenAiOperation, KeelAttribute, latestGenAiNamesOnly, spanName } from './semconv.js';

const tracerName = 'keel';

function tracer(): Tracer {
  return trace.getTracer(tracerName);
}

/** A W3C traceparent header value for a span context (version 00). */
export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/** The span context of a stored traceparent, or undefined when it is not one. */
export function parseTraceparent(value: unknown): SpanContext | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value);
  if (!match || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined;
  return { traceId: match[1]!, spanId: match[2]!, traceFlags: Number.parseInt(match[3]!, 16), isRemote: true };
}

/** The parent of a workflow that was started with tracing off: the same for every worker. */
function derivedParent(workflowId: string): SpanContext {
  const digest = createHash('sha256').update(`keel-trace:${workflowId}`).digest('hex');
  return { traceId: digest.slice(0, 32), spanId: digest.slice(32, 48), traceFlags: TraceFlags.SAMPLED, isRemote: true };
}

/**
 * Called as a workflow is created: a short span under the caller's active context, whose
 * traceparent is stored with the workflow. Returns undefined with tracing off and no active trace.
 */
export function traceWorkflowStart(agent: string, workflowId: string): string | undefined {
  const span = tracer().startSpan(`start_workflow ${agent}`, { kind: SpanKind.INTERNAL }, context.active());
  if (span.isRecording()) span.setAttributes({ [GenAiAttribute.agentName]: agent, [KeelAttribute.workflowId]: workflowId });
  span.end();
  const spanContext = span.spanContext();
  return trace.isSpanContextValid(spanContext) ? formatTraceparent(spanContext) : undefined;
}

export interface RunSpanFacts {
  workflowId: string;
  agent: string;
  agentVersion: string;
  principal: string;
  step: number;
  recovered: boolean;
  /** The traceparent stored with the workflow, if any. */
  traceparent?: unknown;
}

/** The spans of one run of one workflow. */
export class WorkflowTracing {
  private readonly span: Span;
  private readonly parentContext: Context;
  private readonly legacyNames = !latestGenAiNamesOnly();

  constructor(facts: RunSpanFacts) {
    const parent = parseTraceparent(facts.traceparent) ?? derivedParent(facts.workflowId);
    const base = trace.setSpanContext(context.active(), parent);
    this.span = tracer().startSpan(spanName(GenAiOperation.invokeAgent, facts.agent), { kind: SpanKind.INTERNAL }, base);
    if (this.span.isRecording()) {
      this.span.setAttributes({
        [GenAiAttribute.operationName]: GenAiOperation.invokeAgent,
        [GenAiAttribute.agentName]: facts.agent,
        [GenAiAttribute.agentId]: facts.agentVersion,
        [GenAiAttribute.conversationId]: facts.workflowId,
        [KeelAttribute.workflowId]: facts.workflowId,
        [KeelAttribute.agentVersion]: facts.agentVersion,
        [KeelAttribute.principal]: facts.principal,
        [KeelAttribute.step]: facts.step,
        [KeelAttribute.recovered]: facts.recovered,
      });
    }
    this.parentContext = trace.setSpan(base, this.span);
  }

  /** Runs `work` with `span` active, so spans the work's own libraries make are its children. */
  within<T>(span: Span, work: () => Promise<T>): Promise<T> {
    return context.with(trace.setSpan(this.parentContext, span), work);
  }

  /** Starts the span of one model call; `endChat` or `failChat` ends it. */
  startChat(step: number, requestModel: string | undefined, provider: string | undefined): Span {
    const span = tracer().startSpan(spanName(GenAiOperation.chat, requestModel), { kind: SpanKind.CLIENT }, this.parentContext);
    if (span.isRecording()) {
      const attributes: Attributes = { [GenAiAttribute.operationName]: GenAiOperation.chat, [KeelAttribute.step]: step };
      if (requestModel) attributes[GenAiAttribute.requestModel] = requestModel;
      if (provider) this.setProvider(attributes, provider);
      span.setAttributes(attributes);
    }
    return span;
  }

  endChat(span: Span, decision: DecisionRecord, costUsd?: number): void {
    if (span.isRecording()) {
      const attributes: Attributes = {};
      if (decision.provider) this.setProvider(attributes, decision.provider);
      if (decision.model) attributes[GenAiAttribute.responseModel] = decision.model;
      if (decision.finishReason) attributes[GenAiAttribute.responseFinishReasons] = [decision.finishReason];
      const usage = decision.usage;
      if (usage) {
        attributes[GenAiAttribute.usageInputTokens] = usage.inputTokens;
        attributes[GenAiAttribute.usageOutputTokens] = usage.outputTokens;
        if (usage.cacheReadTokens !== undefined) attributes[GenAiAttribute.usageCacheReadInputTokens] = usage.cacheReadTokens;
        if (usage.cacheWriteTokens !== undefined) attributes[GenAiAttribute.usageCacheCreationInputTokens] = usage.cacheWriteTokens;
      }
      if (decision.confidence !== undefined) attributes[KeelAttribute.confidence] = decision.confidence;
      if (costUsd !== undefined) attributes[KeelAttribute.costUsd] = costUsd;
      if (decision.invalid) attributes[errorType] = 'invalid-decision';
      span.setAttributes(attributes);
    }
    span.end();
  }

  failChat(span: Span, errorClass: string, message: string): void {
    if (span.isRecording()) {
      span.setAttribute(errorType, errorClass);
      span.setStatus({ code: SpanStatusCode.ERROR, message });
    }
    span.end();
  }

  /** Starts the span of one tool call (all its attempts); `endTool` ends it. */
  startTool(step: number, tool: string, callId: string, stateFrom: string): Span {
    const span = tracer().startSpan(spanName(GenAiOperation.executeTool, tool), { kind: SpanKind.INTERNAL }, this.parentContext);
    if (span.isRecording()) {
      span.setAttributes({
        [GenAiAttribute.operationName]: GenAiOperation.executeTool,
        [GenAiAttribute.toolName]: tool,
        [GenAiAttribute.toolCallId]: callId,
        [GenAiAttribute.toolType]: 'function',
        [KeelAttribute.step]: step,
        [KeelAttribute.stateFrom]: stateFrom,
      });
    }
    return span;
  }

  endTool(span: Span, outcome: { attempts: number; stateTo?: string; errorClass?: string; message?: string }): void {
    if (span.isRecording()) {
      const attributes: Attributes = { [KeelAttribute.toolAttempts]: outcome.attempts };
      if (outcome.stateTo !== undefined) attributes[KeelAttribute.stateTo] = outcome.stateTo;
      if (outcome.errorClass) {
        attributes[errorType] = outcome.errorClass;
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message ?? outcome.errorClass });
      }
      span.setAttributes(attributes);
    }
    span.end();
  }

  /** Ends the run's span with where the workflow stands. */
  end(workflow: { status: string; state: string; step: number; outcome?: string | null; failure?: { code: string; message: string } | null }): void {
    if (this.span.isRecording()) {
      const attributes: Attributes = { [KeelAttribute.status]: workflow.status, [KeelAttribute.stateTo]: workflow.state, [KeelAttribute.step]: workflow.step };
      if (workflow.outcome) attributes[KeelAttribute.outcome] = workflow.outcome;
      if (workflow.status === 'failed' && workflow.failure) {
        attributes[errorType] = workflow.failure.code;
        this.span.setStatus({ code: SpanStatusCode.ERROR, message: workflow.failure.message });
      }
      this.span.setAttributes(attributes);
    }
    this.span.end();
  }

  private setProvider(attributes: Attributes, provider: string): void {
    attributes[GenAiAttribute.providerName] = provider;
    if (this.legacyNames) attributes[GenAiAttribute.legacySystem] = provider;
  }
}

/** The traceparent stored in a workflow's `workflow-started` journal entry, if any. */
export function startedTraceparent(journal: readonly { kind: string; data: unknown }[]): string | undefined {
  const started = journal.find((entry) => entry.kind === 'workflow-started');
  const traceparent = (started?.data as { traceparent?: unknown } | undefined)?.traceparent;
  return typeof traceparent === 'string' ? traceparent : undefined;
}
