// Human handoff as an action: an agent with `humanHandoff: true` may choose the built-in
// `escalate_to_human` action in any state. The workflow parks (waiting for 'handoff') with its
// context; a person either finishes the task (the workflow completes with their outcome) or sends
// it back with instructions, which the decider sees as that action's result.

import { auditFromJournal } from '../audit/from-journal.js';
import { KeelError, unknownWorkflow } from '../errors.js';
import type { ToolCatalogEntry } from '../model/decision.js';
import { JournalKind, type NewJournalEntry, type Store, type WorkflowRecord } from '../store/types.js';
import type { Redactor } from '../util/redact.js';

export const humanHandoffTool = 'escalate_to_human';
export const handoffWait = 'handoff';

export const humanHandoffCatalogEntry: ToolCatalogEntry = {
  name: humanHandoffTool,
  description:
    'Hand the whole task to a person when you cannot or should not finish it yourself (unclear case, missing authority, repeated failures). ' +
    'The task waits for a person, who finishes it or sends it back with instructions.',
  parameters: {
    type: 'object',
    properties: { reason: { type: 'string', description: 'why a person must take over' }, summary: { type: 'string', description: 'what was done so far' } },
    required: ['reason'],
    additionalProperties: false,
  },
};

/** The handoff's message for the park record: what the agent said, and the two ways on. */
export function handoffMessage(workflowId: string, args: unknown): string {
  const { reason, summary } = (args ?? {}) as { reason?: unknown; summary?: unknown };
  return (
    `The agent handed workflow ${workflowId} to a person: ${typeof reason === 'string' ? reason : 'no reason given'}` +
    `${typeof summary === 'string' ? ` (so far: ${summary})` : ''}. Send it back with instructions with \`keel handoffs back ${workflowId} --by <you> --instructions <text>\` ` +
    `(Keel.handBack), or finish it with \`keel handoffs finish ${workflowId} --by <you> --outcome <outcome>\` (Keel.completeHandoff).`
  );
}

interface HandoffDependencies {
  store: Store;
  redactor: Redactor;
}

async function handedOff(store: Store, workflowId: string): Promise<WorkflowRecord> {
  const workflow = await store.getWorkflow(workflowId);
  if (!workflow) throw unknownWorkflow(workflowId);
  if (workflow.status !== 'waiting' || workflow.waitingFor !== handoffWait) {
    throw new KeelError('WORKFLOW_NOT_RESUMABLE', `Workflow ${workflowId} is ${workflow.status}${workflow.waitingFor ? ` (waiting for ${workflow.waitingFor})` : ''}, not handed to a person; there is no handoff to answer.`, {
      workflowId,
    });
  }
  return workflow;
}

/** Sends a handed-off task back to the agent: the instructions are the result of its escalate_to_human action. */
export async function handBack(deps: HandoffDependencies, workflowId: string, options: { by: string; instructions: string }): Promise<WorkflowRecord> {
  const workflow = await handedOff(deps.store, workflowId);
  const journal: NewJournalEntry[] = [
    {
      step: workflow.step,
      kind: JournalKind.toolCallCompleted,
      name: humanHandoffTool,
      status: 'ok',
      attempt: 1,
      data: { args: null, result: { handedBackBy: options.by, instructions: options.instructions } },
    },
    { step: workflow.step, kind: JournalKind.workflowResumed, status: 'pending', data: { from: 'waiting', waitingFor: handoffWait, by: options.by } },
  ];
  return deps.store.updateWorkflow(
    workflowId,
    { status: 'pending', step: workflow.step + 1, waitingFor: null, wakeAt: null, failure: null },
    journal,
    auditFromJournal(journal, { workflowId, actor: options.by, redactor: deps.redactor }),
  );
}

/** A person finished the handed-off task: the workflow completes with their outcome. */
export async function completeHandoff(deps: HandoffDependencies, workflowId: string, options: { by: string; outcome: string; note?: string }): Promise<WorkflowRecord> {
  const workflow = await handedOff(deps.store, workflowId);
  const journal: NewJournalEntry[] = [
    { step: workflow.step, kind: JournalKind.workflowCompleted, name: options.outcome, status: 'completed', data: { outcome: options.outcome, by: options.by, note: options.note ?? null } },
  ];
  return deps.store.updateWorkflow(
    workflowId,
    { status: 'completed', outcome: options.outcome, waitingFor: null, wakeAt: null },
    journal,
    auditFromJournal(journal, { workflowId, actor: options.by, redactor: deps.redactor }),
  );
}
