// Prints a bench result as plain-text tables for a terminal: one table per scenario, the ratios
// Keel is compared by, and the targets marked met or not met. Formatting only; no figures are
// computed here beyond unit conversions.

import type { BenchResult, S1Result, S2Result, S3Result, Target } from './scenarios.js';

type Align = 'left' | 'right';

export function formatReport(result: BenchResult): string {
  const lines: string[] = [];
  lines.push(`Keel vs LangGraph.js${result.quick ? ' (quick smoke run: figures are not meaningful)' : ''}`);
  lines.push(Object.entries(result.environment).map(([name, version]) => `${name} ${version}`).join(', '));
  if (result.s1) lines.push('', ...formatS1(result.s1, result));
  if (result.s2) lines.push('', ...formatS2(result.s2));
  if (result.s3) lines.push('', ...formatS3(result.s3));
  if (result.targets.length > 0) lines.push('', ...formatTargets(result.targets));
  lines.push('', `Bench took ${result.totalSeconds.toFixed(1)} s.`);
  return lines.join('\n');
}

function formatS1(s1: S1Result, result: BenchResult): string[] {
  const { s1Steps, s1FullSteps } = result.sizes;
  const rows = s1.rows.map((row) => [
    row.label,
    row.synchronous,
    String(row.steps),
    fixed(row.stepsPerSecond, 0),
    fixed(row.perStep.meanMs, 3),
    fixed(row.perStep.p50Ms, 3),
    fixed(row.perStep.p99Ms, 3),
  ]);
  const ratios = [
    ['Keel / LangGraph (equal durability)', ...s1.comparisons.map((comparison) => `${fixed(comparison.keelOverLangGraph, 2)}x`)],
    ['Keel / floor', ...s1.comparisons.map((comparison) => `${fixed(comparison.keelOverFloor, 2)}x`)],
  ];
  return [
    'S1  Per-step overhead: one workflow; each step = one scripted-model decision (AI SDK generateText) + one no-op tool call; durable SQLite store.',
    `    synchronous=NORMAL runs ${s1Steps} steps; synchronous=FULL runs ${s1FullSteps} steps (FULL waits for the disk on every commit, so it is sized to keep the bench under ~3 minutes).`,
    "    LangGraph 'equal' = durability 'sync' + the same SQLite synchronous setting as Keel; 'defaults' = SqliteSaver.fromConnString + default durability.",
    '',
    ...table(['system', 'sync', 'steps', 'steps/s', 'mean ms', 'p50 ms', 'p99 ms'], rows, ['left', 'left', 'right', 'right', 'right', 'right', 'right']),
    '',
    ...table(['ratio of mean per-step time', ...s1.comparisons.map((comparison) => `${comparison.durability.toUpperCase()} (${comparison.steps} steps)`)], ratios, [
      'left',
      ...s1.comparisons.map(() => 'right' as const),
    ]),
  ].map(indent);
}

function formatS2(s2: S2Result): string[] {
  const probeSteps = s2.rows[0]?.probes.map((probe) => probe.step) ?? [];
  const rows = s2.rows.map((row) => [
    row.label,
    String(row.steps),
    ...row.probes.map((probe) => fixed(probe.meanMs, 3)),
    `${fixed(row.growth, 2)}x`,
    megabytes(row.databaseBytes),
    fixed(row.totalMs / 1000, 1),
  ]);
  return [
    `S2  Growing state: every step appends a ${s2.messageBytes}-byte message to the workflow's context (Keel: ctx.append; LangGraph: a channel with an append reducer); synchronous=NORMAL.`,
    `    Per-step time in ms at a step = mean of the steps within ±${s2.window} of it. Database size = file + -wal at the end.`,
    '',
    ...table(
      ['system', 'steps', ...probeSteps.map((step) => `step ${step}`), 'last/first', 'database', 'total s'],
      rows,
      ['left', 'right', ...probeSteps.map(() => 'right' as const), 'right', 'right', 'right'],
    ),
  ].map(indent);
}

function formatS3(s3: S3Result): string[] {
  const first = s3.rows[0];
  const rows = s3.rows.map((row) => [
    row.label,
    `${row.completed}/${row.workflows}`,
    fixed(row.workflowsPerSecond, 1),
    fixed(row.stepsPerSecond, 0),
    fixed(row.totalMs / 1000, 2),
  ]);
  return [
    `S3  Many workflows: ${first?.workflows ?? 0} workflows x ${first?.stepsPerWorkflow ?? 0} steps, ${first?.concurrency ?? 0} in flight at once, one process; synchronous=NORMAL.`,
    '',
    ...table(['system', 'completed', 'workflows/s', 'steps/s', 'total s'], rows, ['left', 'right', 'right', 'right', 'right']),
  ].map(indent);
}

function formatTargets(targets: Target[]): string[] {
  return [
    'Targets (reported, never asserted)',
    ...targets.map((target) => `  ${target.met ? '[met]    ' : '[NOT met]'} ${target.name}: ${fixed(target.figure, 2)}x (limit ${target.limit}x)`),
  ];
}

function table(headers: string[], rows: string[][], align: Align[]): string[] {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (align[column] === 'right' ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)];
}

function indent(line: string): string {
  return line === '' || line.startsWith('S') ? line : `    ${line}`;
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
