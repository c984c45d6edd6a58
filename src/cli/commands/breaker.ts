// keel breaker: the cost circuit breaker's state (status) and the operator's way to close it
// (reset). The breaker itself trips inside workers configured with `costBreaker` (src/cost).

import { Command } from 'commander';
import { createKeel } from '../../agent/keel.js';
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
      .description('close the cost circuit breaker and put the workflows it parked back to work')
      .option('--by <name>', 'who closes it (recorded in the audit log of each workflow put back to work)', 'operator')
      .addOption(databaseOption())
      .action(async (options: { by: string }, command: Command) => {
        const database = databaseChoice(command, context.io.cwd);
        const requeued = await withDatabase(database.path, { mustExist: true }, (store) => createKeel({ store }).resetCostBreaker({ by: options.by }));
        context.io.stdout.write(
          requeued.length === 0
            ? 'Cost circuit breaker closed. No workflow was waiting for it.\n'
            : `Cost circuit breaker closed. ${requeued.length} workflow${requeued.length === 1 ? '' : 's'} it parked ${requeued.length === 1 ? 'is' : 'are'} runnable again: ` +
                `a running \`keel worker${database.flag}\` takes them up (${requeued.map((workflow) => workflow.id).join(', ')}).\n`,
        );
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
