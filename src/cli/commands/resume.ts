// keel resume <id>: puts a waiting or failed workflow back to work (after a fix or a review) and
// runs it here until it completes, fails or waits again. The agent comes from the module the
// workflow recorded, or from --agent when it recorded none or the module has moved.

import { Command } from 'commander';
import { KeelError, unknownWorkflow } from '../../errors.js';
import type { WorkflowRecord } from '../../store/types.js';
import { loadAgent, loadRecordedAgent, type LoadedAgent } from '../agent-loader.js';
import { createCliKeel, registerLoaded } from '../cli-keel.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { withExampleServices } from '../example-services.js';
import { chooseModel } from '../model-choice.js';
import { databaseChoice, databaseOption } from '../options.js';
import { printWorkflowResult } from './workflow-output.js';

interface ResumeOptions {
  agent?: string;
  by?: string;
  json?: boolean;
}

export function resumeCommand(context: CommandContext): Command {
  return new Command('resume')
    .description('put a waiting or failed workflow back to work (after a fix or a review) and run it')
    .argument('<id>', 'the workflow id (see keel list)')
    .option('--agent <agent>', 'where to load the agent from, when the workflow does not record it or its module moved')
    .option('--by <name>', 'who resumes it, recorded in the audit log; resuming a workflow parked for re-authorisation is that person\'s decision (default: operator)')
    .option('--json', 'print the result as one JSON object')
    .addOption(databaseOption())
    .action(async (id: string, options: ResumeOptions, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const models = chooseModel();
      const workflow = await withDatabase(database.path, { mustExist: true }, async (store) => {
        const stored = await store.getWorkflow(id);
        if (!stored) throw unknownWorkflow(id);
        // Said before the agent is loaded: a finished workflow's agent module may be long gone.
        if (stored.status === 'completed' || stored.status === 'cancelled') {
          throw new KeelError('WORKFLOW_NOT_RESUMABLE', `Workflow ${id} is ${stored.status}; only pending, waiting, failed or crashed workflows can be resumed.`, { workflowId: id });
        }
        const loaded = options.agent ? await loadGivenAgent(options.agent, stored, io.cwd) : await loadRecordedAgentForResume(stored);
        models.assertCanDecide(loaded);
        io.stderr.write(`${models.describe(loaded)}\n`);
        const keel = createCliKeel({ store, models });
        registerLoaded(keel, models, loaded);
        return withExampleServices(loaded, io, () => keel.resume(id, undefined, { by: options.by }));
      });
      context.exitWith(printWorkflowResult(workflow, database.flag, io, options.json === true));
    });
}

async function loadGivenAgent(reference: string, workflow: WorkflowRecord, cwd: string): Promise<LoadedAgent> {
  const loaded = await loadAgent(reference, cwd);
  if (loaded.agent.name !== workflow.agent) {
    throw new KeelError(
      'UNKNOWN_AGENT',
      `Workflow ${workflow.id} runs agent '${workflow.agent}', but --agent ${reference} is agent '${loaded.agent.name}'. ` +
        `Pass --agent with the module that defines '${workflow.agent}'${workflow.agentModule ? ` (the workflow recorded ${workflow.agentModule})` : ''}.`,
      { workflowId: workflow.id, agent: workflow.agent },
    );
  }
  return loaded;
}

async function loadRecordedAgentForResume(workflow: WorkflowRecord): Promise<LoadedAgent> {
  try {
    return await loadRecordedAgent(workflow.agentModule, workflow.agent, workflow.id);
  } catch (error) {
    if (!KeelError.isInstance(error) || error.code !== 'UNKNOWN_AGENT') throw error;
    // The loader's advice is written for workers; resume takes the module directly.
    throw new KeelError('UNKNOWN_AGENT', `${error.message} Here, pass the module to resume with: keel resume ${workflow.id} --agent <module>.`, {
      workflowId: workflow.id,
      agent: workflow.agent,
      cause: error,
    });
  }
}
