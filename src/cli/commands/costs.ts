// keel costs: what the model calls cost, from the costs recorded with each decision, summed by
// user, department, agent, workflow or day.

import { Command, Option } from 'commander';
import { CostGrouping, costReport, type CostReport } from '../../cost/cost-report.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTable } from '../format/table.js';
import { databaseChoice, databaseOption, parsePointInTime } from '../options.js';

interface CostsOptions {
  by: CostGrouping;
  since?: number;
  json?: boolean;
}

export function costsCommand(context: CommandContext): Command {
  return new Command('costs')
    .description('report model-call costs by user, department, agent, workflow or day')
    .addOption(new Option('--by <grouping>', 'what to sum by').choices(Object.values(CostGrouping)).default(CostGrouping.agent))
    .addOption(new Option('--since <time>', 'only calls at or after an ISO time or a duration ago (7d, 12h, 30m)').argParser((value) => parsePointInTime(value)))
    .option('--json', 'print the report as one JSON object')
    .addOption(databaseOption())
    .action(async (options: CostsOptions, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const report = await withDatabase(database.path, { mustExist: true }, (store) => costReport(store, { by: options.by, since: options.since }));
      if (options.json) io.stdout.write(`${JSON.stringify(report)}\n`);
      else io.stdout.write(formatCostReport(report, database.path));
    });
}

export function formatCostReport(report: CostReport, path: string): string {
  if (report.calls === 0) {
    const unpriced = report.unpriced > 0 ? ` (${report.unpriced} model calls had no known price: add their models under prices.overrides)` : '';
    return `No priced model calls in ${path}${unpriced}.\n`;
  }
  const table = formatTable(
    [report.by.toUpperCase(), 'CALLS', 'INPUT TOKENS', 'OUTPUT TOKENS', 'COST (USD)'],
    [
      ...report.lines.map((line) => [line.key, String(line.calls), String(line.inputTokens), String(line.outputTokens), usd(line.usd)]),
      ['total', String(report.calls), '', '', usd(report.totalUsd)],
    ],
  );
  const notes = [`Prices: ${report.sources.join(', ')}.`];
  if (report.unpriced > 0) notes.push(`${report.unpriced} model calls had no known price and are not counted; add their models under prices.overrides.`);
  return `${table}${notes.join('\n')}\n`;
}

function usd(value: number): string {
  return value.toFixed(6);
}
