// keel breaker: the cost circuit breaker's state (status) and the operator's way to close it
// (reset). The breaker itself trips inside workers configured with `costBreaker` (src/cost).

import { Command } from 'commander';
import { CostBreaker, type CostBreakerStatus } from '../../cost/cost-breaker.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatFields } from '../format/table.js';
import { formatTimestamp } from '../format/time.js';
import { databaseChoice, databaseOption } from '../options.js';

export function breakerCommand(context: CommandContext): Command {
  const breaker = new Command('breaker').description('show or reset the cost circuit breaker');
  breaker.addCommand(
    new Command('status')
      .description('whether the cost circuit breaker is open, why, and the spend and error rate it watches')
      .option('--json', 'print one JSON object')
      .addOption(databaseOption())
      .action(async (options: { json?: boolean }, command: Command) => {
        const database = databaseChoice(command, context.io.cwd);
        const status = await withDatabase(database.path, { mustExist: true }, async (store) => new CostBreaker({}, store, Date.now).status());
        context.io.stdout.write(options.json ? `${JSON.stringify(status)}\n` : formatStatus(status));
      }),
  );
  breaker.addCommand(
    new Command('reset')
      .description('close the cost circuit breaker; workflows it parked resume with `keel resume <id>`')
      .addOption(databaseOption())
      .action(async (_options: unknown, command: Command) => {
        const database = databaseChoice(command, context.io.cwd);
        await withDatabase(database.path, { mustExist: true }, async (store) => new CostBreaker({}, store, Date.now).reset());
        context.io.stdout.write('Cost circuit breaker closed. Workflows it parked wait for `keel resume <id>` (keel list --status waiting shows them).\n');
      }),
  );
  return breaker;
}

function formatStatus(status: CostBreakerStatus): string {
  return formatFields([
    ['state', status.state],
    ['opened', status.openedAt === null ? '-' : formatTimestamp(status.openedAt)],
    ['reason', status.reason ?? '-'],
    ['spend, last hour', `$${status.spendLastHourUsd.toFixed(6)}`],
    ['error rate', status.errorRate === null ? '-' : `${Math.round(status.errorRate * 100)}% of ${status.calls} calls`],
  ]);
}
