// keel list: the workflows a database holds, oldest first, as a table or (--json) one JSON array.

import { Command, Option } from 'commander';
import { WorkflowStatus, type WorkflowRecord } from '../../store/types.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTable } from '../format/table.js';
import { formatTimestamp } from '../format/time.js';
import { databaseChoice, databaseOption } from '../options.js';
import { workflowResultJson } from '../format/workflow-result.js';

/** The store returns at most this many; a longer list is cut and the user told how to narrow it. */
const listLimit = 1000;

interface ListOptions {
  status?: WorkflowStatus;
  json?: boolean;
}

export function listCommand(context: CommandContext): Command {
  return new Command('list')
    .description('list the workflows in the database')
    .addOption(new Option('--status <status>', 'only workflows with this status').choices(Object.values(WorkflowStatus)))
    .option('--json', 'print a JSON array of workflows')
    .addOption(databaseOption())
    .action(async (options: ListOptions, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const workflows = await withDatabase(database.path, { mustExist: true }, (store) => store.listWorkflows({ status: options.status, limit: listLimit }));
      if (options.json) {
        io.stdout.write(`${JSON.stringify(workflows.map(listedWorkflowJson))}\n`);
      } else if (workflows.length === 0) {
        io.stdout.write(`No ${options.status ? `${options.status} ` : ''}workflows in ${database.path}.\n`);
      } else {
        io.stdout.write(formatWorkflowTable(workflows));
      }
      if (workflows.length === listLimit) {
        io.stderr.write(`keel: showing the oldest ${listLimit} workflows only; narrow the list with --status.\n`);
      }
    });
}

export function formatWorkflowTable(workflows: readonly WorkflowRecord[]): string {
  return formatTable(
    ['ID', 'AGENT', 'STATUS', 'STATE', 'OUTCOME', 'STEPS', 'UPDATED'],
    workflows.map((workflow) => [
      workflow.id,
      workflow.agent,
      workflow.status + (workflow.waitingFor ? ` (${workflow.waitingFor})` : ''),
      workflow.state,
      workflow.outcome ?? '-',
      String(workflow.step),
      formatTimestamp(workflow.updatedAt),
    ]),
  );
}

function listedWorkflowJson(workflow: WorkflowRecord) {
  const { failure: _failure, ...result } = workflowResultJson(workflow);
  return {
    ...result,
    principal: workflow.principal.id,
    createdAt: new Date(workflow.createdAt).toISOString(),
    updatedAt: new Date(workflow.updatedAt).toISOString(),
  };
}
