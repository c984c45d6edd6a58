// keel handoffs: the person's side of the escalate_to_human action (src/approval/handoff.ts). An
// agent that handed its task over waits with its context; a person lists those tasks, then either
// finishes one (the workflow completes with their outcome) or sends it back with instructions,
// which the agent sees as the result of its handoff when a worker takes the workflow up again.

import { Command } from 'commander';
import { createKeel } from '../../agent/keel.js';
import { handoffWait } from '../../approval/handoff.js';
import type { Store, WorkflowRecord } from '../../store/types.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTable } from '../format/table.js';
import { formatTimestamp } from '../format/time.js';
import { databaseChoice, databaseOption } from '../options.js';

export function handoffsCommand(context: CommandContext): Command {
  const handoffs = new Command('handoffs').description('tasks an agent handed to a person (escalate_to_human): list them, finish one, or send one back');
  handoffs.addCommand(listCommand(context));
  handoffs.addCommand(backCommand(context));
  handoffs.addCommand(finishCommand(context));
  return handoffs;
}

function listCommand(context: CommandContext): Command {
  return new Command('list')
    .description('list the workflows waiting for a person to take over, with what the agent said')
    .option('--json', 'print a JSON array of the workflows')
    .addOption(databaseOption())
    .action(async (options: { json?: boolean }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const waiting = await withDatabase(database.path, { mustExist: true }, (store) => handedOff(store));
      if (options.json) {
        io.stdout.write(`${JSON.stringify(waiting)}\n`);
        return;
      }
      if (waiting.length === 0) {
        io.stdout.write(`No workflows are waiting for a person to take over in ${database.path}.\n`);
        return;
      }
      io.stdout.write(
        formatTable(
          ['WORKFLOW', 'AGENT', 'FOR', 'SINCE', 'WHAT THE AGENT SAID'],
          waiting.map((workflow) => [workflow.id, workflow.agent, workflow.principal.id, formatTimestamp(workflow.updatedAt), workflow.failure?.message ?? '-']),
        ),
      );
      io.stdout.write(
        `Send one back with \`keel handoffs back <workflow> --by <you> --instructions <text>${database.flag}\`, ` +
          `or finish it with \`keel handoffs finish <workflow> --by <you> --outcome <outcome>${database.flag}\`.\n`,
      );
    });
}

function backCommand(context: CommandContext): Command {
  return new Command('back')
    .description('send a handed-off task back to its agent with instructions; a worker carries it on')
    .argument('<workflow-id>', 'the workflow (see keel handoffs list)')
    .requiredOption('--by <name>', "who sends it back (recorded, and the audit entry's actor)")
    .requiredOption('--instructions <text>', 'what the agent should do: it sees them as the result of its handoff')
    .addOption(databaseOption())
    .action(async (id: string, options: { by: string; instructions: string }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const workflow = await withDatabase(database.path, { mustExist: true }, (store) => createKeel({ store }).handBack(id, options));
      io.stdout.write(
        `Sent workflow ${workflow.id} back to agent '${workflow.agent}' with your instructions. ` +
          `It is runnable again: a running \`keel worker${database.flag}\` takes it up, or run it here with \`keel resume ${workflow.id}${database.flag}\`.\n`,
      );
    });
}

function finishCommand(context: CommandContext): Command {
  return new Command('finish')
    .description('finish a handed-off task yourself: the workflow completes with your outcome')
    .argument('<workflow-id>', 'the workflow (see keel handoffs list)')
    .requiredOption('--by <name>', "who finished it (recorded, and the audit entry's actor)")
    .requiredOption('--outcome <outcome>', "the workflow's outcome, e.g. settled-by-phone")
    .option('--note <text>', 'a note recorded with the outcome')
    .addOption(databaseOption())
    .action(async (id: string, options: { by: string; outcome: string; note?: string }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const workflow = await withDatabase(database.path, { mustExist: true }, (store) => createKeel({ store }).completeHandoff(id, options));
      io.stdout.write(`Workflow ${workflow.id} completed with outcome '${workflow.outcome}', finished by ${options.by}.\n`);
    });
}

function handedOff(store: Store): Promise<WorkflowRecord[]> {
  return store.listWorkflows({ status: 'waiting', waitingFor: handoffWait, limit: 10_000 });
}
