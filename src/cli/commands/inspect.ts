// keel inspect <id>: everything the database knows about one workflow: its record, the failure
// saved for review, and the journal as a timeline of decisions, tool calls, attempts and
// transitions. --json gives the same as one object, journal entries in full.

import { Command } from 'commander';
import { unknownWorkflow } from '../../errors.js';
import type { JournalEntry, WorkflowRecord } from '../../store/types.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatInspection } from '../format/timeline.js';
import { databaseChoice, databaseOption } from '../options.js';

export function inspectCommand(context: CommandContext): Command {
  return new Command('inspect')
    .description("show a workflow's timeline: every decision, tool call, attempt, transition and failure")
    .argument('<id>', 'the workflow id (see keel list)')
    .option('--json', 'print the workflow and its journal as one JSON object')
    .addOption(databaseOption())
    .action(async (id: string, options: { json?: boolean }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const { workflow, journal } = await withDatabase(database.path, { mustExist: true }, async (store) => {
        const found = await store.getWorkflow(id);
        if (!found) throw unknownWorkflow(id);
        return { workflow: found, journal: await store.readJournal(id) };
      });
      io.stdout.write(options.json ? `${JSON.stringify(inspectionJson(workflow, journal))}\n` : formatInspection(workflow, journal));
    });
}

export function inspectionJson(workflow: WorkflowRecord, journal: readonly JournalEntry[]) {
  return {
    id: workflow.id,
    agent: workflow.agent,
    agentVersion: workflow.agentVersion,
    agentModule: workflow.agentModule,
    principal: workflow.principal,
    input: workflow.input,
    status: workflow.status,
    state: workflow.state,
    steps: workflow.step,
    outcome: workflow.outcome,
    waitingFor: workflow.waitingFor,
    failure: workflow.failure,
    recoveries: workflow.recoveries,
    createdAt: new Date(workflow.createdAt).toISOString(),
    updatedAt: new Date(workflow.updatedAt).toISOString(),
    prunedAt: workflow.prunedAt === null ? null : new Date(workflow.prunedAt).toISOString(),
    journal: journal.map((entry) => ({
      seq: entry.seq,
      at: new Date(entry.at).toISOString(),
      step: entry.step,
      kind: entry.kind,
      name: entry.name,
      status: entry.status,
      attempt: entry.attempt,
      durationMs: entry.durationMs,
      tokensIn: entry.tokensIn,
      tokensOut: entry.tokensOut,
      data: entry.data,
    })),
  };
}
