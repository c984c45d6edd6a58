// keel feedback: a user's satisfaction rating (1-5, with an optional comment) for a workflow,
// recorded in the audit log; `keel stats` reports it.

import { Command, InvalidArgumentError, Option } from 'commander';
import { recordFeedback } from '../../telemetry/feedback.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { databaseChoice, databaseOption } from '../options.js';

export function feedbackCommand(context: CommandContext): Command {
  return new Command('feedback')
    .description("record a user's satisfaction with a workflow (1 = very unhappy, 5 = very happy)")
    .argument('<workflow-id>', 'the workflow rated')
    .addOption(
      new Option('--score <n>', 'the rating, 1 to 5')
        .argParser((value) => {
          const score = Number(value);
          if (!Number.isInteger(score) || score < 1 || score > 5) throw new InvalidArgumentError('a score is a whole number from 1 to 5.');
          return score;
        })
        .makeOptionMandatory(),
    )
    .option('--comment <text>', 'what the user said')
    .option('--by <user>', "who rates (default: the workflow's user)")
    .addOption(databaseOption())
    .action(async (workflowId: string, options: { score: number; comment?: string; by?: string }, command: Command) => {
      const database = databaseChoice(command, context.io.cwd);
      const recorded = await withDatabase(database.path, { mustExist: true }, (store) => recordFeedback(store, { workflowId, score: options.score, comment: options.comment, by: options.by }));
      context.io.stdout.write(`Recorded ${recorded.score}/5 from ${recorded.by} for workflow ${recorded.workflowId} (agent '${recorded.agent}').\n`);
    });
}
