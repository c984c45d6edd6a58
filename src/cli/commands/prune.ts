// keel prune --completed-before <time>: deletes the journals and context of workflows that
// finished (completed, failed or cancelled) before a time. Their records stay, so `keel list`
// still shows what ran and how it ended; `keel inspect` says the timeline was pruned.

import { Command, Option } from 'commander';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTimestamp } from '../format/time.js';
import { databaseChoice, databaseOption, parsePointInTime } from '../options.js';

export function pruneCommand(context: CommandContext): Command {
  return new Command('prune')
    .description('delete the journals and context of workflows that finished before a time (their records stay)')
    .addOption(
      new Option('--completed-before <time>', 'an ISO date or time (2026-01-31, 2026-01-31T12:00:00Z) or a duration ago (7d, 12h, 30m, 45s, 2w)')
        .argParser((value) => parsePointInTime(value))
        .makeOptionMandatory(),
    )
    .option('--json', 'print what was removed as one JSON object')
    .addOption(databaseOption())
    .action(async (options: { completedBefore: number; json?: boolean }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const before = options.completedBefore;
      const pruned = await withDatabase(database.path, { mustExist: true }, (store) => store.pruneFinished(before));
      if (options.json) {
        io.stdout.write(`${JSON.stringify({ before: new Date(before).toISOString(), ...pruned })}\n`);
        return;
      }
      const workflows = `${pruned.workflows} workflow${pruned.workflows === 1 ? '' : 's'}`;
      io.stdout.write(
        pruned.workflows === 0
          ? `Nothing to prune: no workflow finished before ${formatTimestamp(before)} that still has its journal.\n`
          : `Pruned ${workflows} that finished before ${formatTimestamp(before)}: removed ${pruned.journalEntries} journal entries ` +
              `and ${pruned.contextRows} context rows. Their records stay (keel list still shows them).\n`,
      );
    });
}
