// keel stats: the production dashboard in the terminal, per agent version (src/telemetry/stats.ts).

import { Command, Option } from 'commander';
import { productionStats, type ProductionStats } from '../../telemetry/stats.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTable } from '../format/table.js';
import { databaseChoice, databaseOption, parsePointInTime } from '../options.js';

export function statsCommand(context: CommandContext): Command {
  return new Command('stats')
    .description('completion rate, errors by class, escalation rate, cost per task, p50/p95 latency and satisfaction, per agent version')
    .addOption(new Option('--since <time>', 'only workflows started at or after an ISO time or a duration ago (7d, 12h, 30m)').argParser((value) => parsePointInTime(value)))
    .option('--json', 'print the figures as one JSON object')
    .addOption(databaseOption())
    .action(async (options: { since?: number; json?: boolean }, command: Command) => {
      const database = databaseChoice(command, context.io.cwd);
      const stats = await withDatabase(database.path, { mustExist: true }, (store) => productionStats(store, { since: options.since }));
      context.io.stdout.write(options.json ? `${JSON.stringify(stats)}\n` : formatStats(stats, database.path));
    });
}

export function formatStats(stats: ProductionStats, path: string): string {
  if (stats.rows.length === 0) return `No workflows${stats.since === null ? '' : ' in that window'} in ${path}.\n`;
  const percent = (value: number | null) => (value === null ? '-' : `${(value * 100).toFixed(1)}%`);
  const seconds = (value: number | null) => (value === null ? '-' : `${value.toFixed(2)} s`);
  return formatTable(
    ['AGENT', 'VERSION', 'TASKS', 'COMPLETED', 'ESCALATED', 'COST/TASK', 'P50', 'P95', 'SATISFACTION', 'ERRORS BY CLASS'],
    stats.rows.map((row) => [
      row.agent,
      row.version,
      String(row.tasks),
      percent(row.completionRate),
      percent(row.escalationRate),
      row.costPerTaskUsd === null ? '-' : `$${row.costPerTaskUsd.toFixed(6)}`,
      seconds(row.latencyP50Seconds),
      seconds(row.latencyP95Seconds),
      row.satisfaction ? `${row.satisfaction.mean.toFixed(2)} (${row.satisfaction.ratings})` : '-',
      Object.entries(row.errorsByClass)
        .map(([errorClass, count]) => `${errorClass} ${count}`)
        .join(', ') || '-',
    ]),
  );
}
