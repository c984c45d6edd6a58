// The expense-approval example run with an OpenTelemetry SDK registered: what an operator's trace
// backend would receive for one clean claim. The span tree is invoke_agent > chat / execute_tool,
// the attributes carry the GenAI semantic-convention names, and the token counts on the chat spans
// are the ones the workflow's journal recorded. The payments service runs in this process on
// 127.0.0.1; the model is the example's scripted one.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useInMemoryTracing } from './support/in-memory-tracing.js';
import { expenseApproval, script } from '../examples/expense-approval/agent.js';
import { formatClaimDocument } from '../examples/expense-approval/claim-document.js';
import { startPaymentsService, type PaymentsService } from '../examples/expense-approval/payments-service.js';
import { createKeel, JournalKind, openSqliteStore, type Keel } from '../src/index.js';
import { GenAiAttribute, GenAiOperation, KeelAttribute } from '../src/telemetry/semconv.js';
import { scriptedModel } from '../src/testing.js';

const paymentsUrlVariable = 'EXPENSE_PAYMENTS_URL';
const exporter = useInMemoryTracing();

let directory: string;
let keel: Keel | undefined;
let service: PaymentsService | undefined;
let previousPaymentsUrl: string | undefined;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-expense-tracing-'));
  previousPaymentsUrl = process.env[paymentsUrlVariable];
});

afterEach(async () => {
  if (previousPaymentsUrl === undefined) delete process.env[paymentsUrlVariable];
  else process.env[paymentsUrlVariable] = previousPaymentsUrl;
  await keel?.close();
  keel = undefined;
  await service?.close();
  service = undefined;
  rmSync(directory, { recursive: true, force: true });
});

/** A claim well inside policy and under the approval limit, so the example pays it unattended. */
const cleanClaim = {
  claimId: 'EXP-TRACE-1',
  document: formatClaimDocument({
    claimId: 'EXP-TRACE-1',
    employee: 'alice@example.com',
    category: 'travel',
    amount: 84.2,
    currency: 'EUR',
    date: '2026-10-02',
    receipt: true,
    payee: 'DE89370400440532013000',
    description: 'Train to the customer workshop',
  }),
};

describe('the expense-approval example, traced', () => {
  it('emits invoke_agent > chat / execute_tool spans with the GenAI names and the journal’s token counts', async () => {
    service = await startPaymentsService(); // binds 127.0.0.1
    process.env[paymentsUrlVariable] = service.url;
    keel = createKeel({ store: openSqliteStore({ path: join(directory, 'keel.db') }), agents: [expenseApproval], model: scriptedModel(script) });

    const { id } = await keel.start(expenseApproval.name, cleanClaim);
    const final = await keel.run(id);
    expect(final).toMatchObject({ status: 'completed', outcome: 'paid' });

    const spans = exporter.getFinishedSpans();
    const runs = byOperation(spans, GenAiOperation.invokeAgent);
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    expect(run.name).toBe(`invoke_agent ${expenseApproval.name}`);
    expect(run.attributes).toMatchObject({
      [GenAiAttribute.operationName]: 'invoke_agent',
      [GenAiAttribute.agentName]: expenseApproval.name,
      [KeelAttribute.workflowId]: id,
    });

    const { journal } = await keel.inspect(id);
    const decided = journal.filter((entry) => entry.kind === JournalKind.actionDecided);
    const called = journal.filter((entry) => entry.kind === JournalKind.toolCallCompleted);
    const chats = byOperation(spans, GenAiOperation.chat);
    const tools = byOperation(spans, GenAiOperation.executeTool);
    // One chat span per model decision and one tool span per completed call, each a child of the run.
    expect(chats).toHaveLength(decided.length);
    expect(tools.map((span) => span.attributes[GenAiAttribute.toolName])).toEqual(called.map((entry) => entry.name));
    expect(tools.map((span) => span.attributes[GenAiAttribute.toolName])).toContain('pay_claim');
    for (const span of [...chats, ...tools]) {
      expect(span.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
      expect(span.spanContext().traceId).toBe(run.spanContext().traceId);
    }
    for (const chat of chats) {
      expect(chat.name).toBe(`chat ${chat.attributes[GenAiAttribute.requestModel]}`);
      for (const name of [GenAiAttribute.providerName, GenAiAttribute.requestModel, GenAiAttribute.usageInputTokens, GenAiAttribute.usageOutputTokens]) {
        expect(chat.attributes[name], `${chat.name} lacks ${name}`).toBeDefined();
      }
    }
    // Token counts on the chat spans are the ones the journal recorded for the same decisions.
    expect(chats.map((span) => span.attributes[GenAiAttribute.usageInputTokens])).toEqual(decided.map((entry) => entry.tokensIn));
    expect(chats.map((span) => span.attributes[GenAiAttribute.usageOutputTokens])).toEqual(decided.map((entry) => entry.tokensOut));
    expect(decided.some((entry) => (entry.tokensIn ?? 0) > 0)).toBe(true);

    const [pay] = tools.filter((span) => span.attributes[GenAiAttribute.toolName] === 'pay_claim');
    const payCall = called.find((entry) => entry.name === 'pay_claim')!;
    expect(pay!.name).toBe('execute_tool pay_claim');
    expect(pay!.attributes[GenAiAttribute.toolCallId]).toBe(`${id}:${payCall.step}`);
  });
});

/** Spans of one GenAI operation, in the order they started. */
function byOperation(spans: ReadableSpan[], operation: string): ReadableSpan[] {
  return spans
    .filter((span) => span.attributes[GenAiAttribute.operationName] === operation)
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
}
