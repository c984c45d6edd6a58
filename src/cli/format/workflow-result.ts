// What `keel run` and `keel resume` print about the workflow they ran: for people, a few lines
// and the next command; for programs (--json), exactly one JSON object.

import type { WorkflowRecord } from '../../store/types.js';
import { formatFields } from './table.js';

export interface WorkflowResultJson {
  id: string;
  agent: string;
  status: string;
  state: string;
  outcome: string | null;
  steps: number;
  waitingFor: string | null;
  failure: WorkflowRecord['failure'];
}

export function workflowResultJson(workflow: WorkflowRecord): WorkflowResultJson {
  return {
    id: workflow.id,
    agent: workflow.agent,
    status: workflow.status,
    state: workflow.state,
    outcome: workflow.outcome,
    steps: workflow.step,
    waitingFor: workflow.waitingFor,
    failure: workflow.failure,
  };
}

/** `databaseFlag` is repeated in the suggested commands (empty for the default database). */
export function formatWorkflowResult(workflow: WorkflowRecord, databaseFlag: string): string {
  const fields: [string, string][] = [
    ['status', workflow.status + (workflow.waitingFor ? ` (waiting for ${workflow.waitingFor})` : '')],
    ['outcome', workflow.outcome ?? '-'],
    ['state', workflow.state],
    ['steps', String(workflow.step)],
    ['id', workflow.id],
  ];
  if (workflow.failure) fields.push(['problem', `${workflow.failure.code}: ${workflow.failure.message}`]);
  const lines = [`Workflow ${workflow.id} (agent '${workflow.agent}') ${headline(workflow)}\n`, formatFields(fields)];
  lines.push(`See every step with: keel inspect ${workflow.id}${databaseFlag}\n`);
  if (workflow.status === 'failed' || workflow.status === 'waiting') {
    lines.push(`After fixing the cause, continue it with: keel resume ${workflow.id}${databaseFlag}\n`);
  }
  return lines.join('');
}

function headline(workflow: WorkflowRecord): string {
  switch (workflow.status) {
    case 'completed':
      return `completed with outcome '${workflow.outcome}'.`;
    case 'failed':
      return `failed at step ${workflow.step} in state '${workflow.state}'.`;
    case 'waiting':
      return `is waiting${workflow.waitingFor ? ` for ${workflow.waitingFor}` : ''} at step ${workflow.step}.`;
    default:
      return `is ${workflow.status}.`;
  }
}
