// keel run <agent> --input <file|->: starts one workflow and runs it in this process until it
// completes, fails or waits. Everything that can be refused (the agent, its model, the input) is
// checked before the workflow is stored, so a refused run stores nothing.

import { Command } from 'commander';
import { loadAgent } from '../agent-loader.js';
import { createCliKeel, registerLoaded } from '../cli-keel.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { withExampleServices } from '../example-services.js';
import { readJsonInput } from '../input-file.js';
import { chooseModel } from '../model-choice.js';
import { databaseChoice, databaseOption } from '../options.js';
import { printWorkflowResult } from './workflow-output.js';

interface RunOptions {
  input: string;
  user?: string;
  json?: boolean;
}

export function runCommand(context: CommandContext): Command {
  return new Command('run')
    .description('start a workflow and run it until it completes, fails or waits')
    .argument('<agent>', "a built-in agent ('expense-approval') or the path to a JS module that exports an agent")
    .requiredOption('--input <file|->', "the workflow's input: a JSON file, or - to read it from standard input")
    .option('--user <id>', 'the person the workflow acts for, with their recorded roles and department (keel principals add; default: anonymous)')
    .option('--json', 'print the result as one JSON object')
    .addOption(databaseOption())
    .action(async (agentReference: string, options: RunOptions, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const models = chooseModel();
      const loaded = await loadAgent(agentReference, io.cwd);
      models.assertCanDecide(loaded);
      const input = await readJsonInput(options.input, io);
      io.stderr.write(`${models.describe(loaded)}\n`);
      const workflow = await withDatabase(database.path, { mustExist: false }, async (store) => {
        const keel = createCliKeel({ store, models });
        registerLoaded(keel, models, loaded);
        // The user's recorded roles and department (keel principals add) go with the workflow.
        const principal = options.user === undefined ? undefined : ((await store.getPrincipal(options.user)) ?? { id: options.user });
        const started = await keel.start(loaded.agent.name, input, { principal });
        return withExampleServices(loaded, io, () => keel.run(started.id));
      });
      context.exitWith(printWorkflowResult(workflow, database.flag, io, options.json === true));
    });
}
