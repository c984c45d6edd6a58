// keel approvals / approve / reject: the person's side of human in the loop (src/approval). A
// decision only records and makes the workflow runnable; a running `keel worker` (or `keel
// resume`) carries it on, so deciding needs no model and no payments service.

import { Command, Option } from 'commander';
import { createKeel, type Keel } from '../../agent/keel.js';
import { KeelError } from '../../errors.js';
import type { ApprovalRequest, Store } from '../../store/types.js';
import { loadRecordedAgent } from '../agent-loader.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTable } from '../format/table.js';
import { databaseChoice, databaseOption } from '../options.js';

export function approvalsCommand(context: CommandContext): Command {
  return new Command('approvals')
    .description('list approval requests: actions waiting for a person (default: pending ones)')
    .addOption(new Option('--status <status>', 'which requests').choices(['pending', 'decided', 'all']).default('pending'))
    .option('--json', 'print a JSON array')
    .addOption(databaseOption())
    .action(async (options: { status: 'pending' | 'decided' | 'all'; json?: boolean }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const requests = await withDatabase(database.path, { mustExist: true }, (store) => store.listApprovals({ status: options.status }));
      if (options.json) {
        io.stdout.write(`${JSON.stringify(requests)}\n`);
        return;
      }
      if (requests.length === 0) {
        io.stdout.write(`No ${options.status === 'all' ? '' : `${options.status} `}approval requests in ${database.path}.\n`);
        return;
      }
      io.stdout.write(formatTable(['REQUEST', 'WORKFLOW', 'TOOL', 'ARGS', 'CONFIDENCE', 'WHY', 'APPROVERS', 'STATUS'], requests.map(row)));
      if (options.status !== 'decided' && requests.some((request) => request.status === 'pending')) {
        io.stdout.write(`Decide one with \`keel approve <request> --by <user>${database.flag}\` or \`keel reject <request> --by <user> --reason <text>${database.flag}\`.\n`);
      }
    });
}

export function approveCommand(context: CommandContext): Command {
  return new Command('approve')
    .description("approve a pending request: the action runs (with --args, with those arguments instead) when a worker takes the workflow up")
    .argument('<request-id>', 'the request id (see keel approvals)')
    .requiredOption('--by <user>', 'who approves (recorded, and the audit entry\'s actor)')
    .option('--args <json>', "the arguments to run the action with instead (JSON); checked against the tool's schema and the policies")
    .option('--comment <text>', 'a note recorded with the decision')
    .addOption(databaseOption())
    .action(async (id: string, options: { by: string; args?: string; comment?: string }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const args = options.args === undefined ? undefined : parseArgs(options.args, id);
      const request = await withDatabase(database.path, { mustExist: true }, (store) => decider(store).approve(id, { by: options.by, args, comment: options.comment }));
      io.stdout.write(`Approved ${request.id} (workflow ${request.workflowId}, step ${request.step}, tool '${request.tool}') by ${request.decidedBy ?? options.by}.\n`);
      io.stdout.write(nextSteps(request, database.flag));
    });
}

export function rejectCommand(context: CommandContext): Command {
  return new Command('reject')
    .description('reject a pending request: the action never runs, and the agent sees the reason and adapts')
    .argument('<request-id>', 'the request id (see keel approvals)')
    .requiredOption('--by <user>', "who rejects (recorded, and the audit entry's actor)")
    .requiredOption('--reason <text>', 'why: the agent sees it')
    .addOption(databaseOption())
    .action(async (id: string, options: { by: string; reason: string }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const request = await withDatabase(database.path, { mustExist: true }, (store) => decider(store).reject(id, { by: options.by, reason: options.reason }));
      io.stdout.write(`Rejected ${request.id} (workflow ${request.workflowId}, step ${request.step}, tool '${request.tool}') by ${options.by}: ${options.reason}\n`);
      io.stdout.write(nextSteps(request, database.flag));
    });
}

/** A Keel that only decides: the agent is loaded only when changed arguments must be checked against its tool. */
function decider(store: Store): Keel {
  return createKeel({
    store,
    resolveAgent: async (workflow) => (await loadRecordedAgent(workflow.agentModule, workflow.agent, workflow.id)).agent,
  });
}

function parseArgs(text: string, id: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new KeelError('BAD_INPUT', `--args for request ${id} is not valid JSON (${(error as Error).message}). Give the arguments as one JSON object, e.g. --args '{"amount": 900}'.`);
  }
}

function nextSteps(request: ApprovalRequest, databaseFlag: string): string {
  return `Workflow ${request.workflowId} is runnable again: a running \`keel worker${databaseFlag}\` takes it up, or run it here with \`keel resume ${request.workflowId}${databaseFlag}\`.\n`;
}

function row(request: ApprovalRequest): string[] {
  const decided = request.status === 'pending' ? 'pending' : `${request.status}${request.decidedBy ? ` by ${request.decidedBy}` : ''}`;
  return [
    request.id,
    request.workflowId,
    request.tool,
    truncate(JSON.stringify(request.modifiedArgs ?? request.args)),
    request.confidence === null ? '-' : String(request.confidence),
    truncate(request.reasons.join('; ')),
    request.approvers ?? '-',
    decided,
  ];
}

function truncate(text: string, width = 48): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
