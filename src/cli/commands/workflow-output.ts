// How `keel run` and `keel resume` end: the workflow they ran, for people or as one JSON object,
// and the exit code its status means (1 only when it failed: a waiting workflow is not an error).

import type { WorkflowRecord } from '../../store/types.js';
import { ExitCode } from '../exit.js';
import { formatWorkflowResult, workflowResultJson } from '../format/workflow-result.js';
import type { CliIo } from '../io.js';

export function printWorkflowResult(workflow: WorkflowRecord, databaseFlag: string, io: CliIo, json: boolean): number {
  io.stdout.write(json ? `${JSON.stringify(workflowResultJson(workflow))}\n` : formatWorkflowResult(workflow, databaseFlag));
  return exitCodeFor(workflow);
}

export function exitCodeFor(workflow: WorkflowRecord): number {
  return workflow.status === 'failed' ? ExitCode.workflowFailed : ExitCode.ok;
}
