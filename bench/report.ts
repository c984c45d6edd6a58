// Prints a bench result as plain-text tables for a terminal: one section per scenario with what
// each row measures, the ratios Keel is compared by, and the targets marked met or not met.
// Formatting only; no figures are computed here beyond unit conversions.

import type { ApprovalLatencyResult } from './approval-latency.js';
import type { AuditVerifyResult } from './audit-verify.js';
import type { RunnerResult } from './runner-overhead.js';
import type { TelemetryOverheadResult } from './telemetry-overhead.js';
import type { BenchResult, S1Result, S2Result, S3Result, StepRow } from './scenarios.js';
import type { Target } from './targets.js';

type Align = 'left' | 'right';

export function formatReport(result: BenchResult): string {
  const lines: string[] = [];
  lines.push(`Keel vs LangGraph.js${result.quick ? ' (quick smoke run: the figures are not meaningful)' : ''}`);
  lines.push(Object.entries(result.environment).map(([name, version]) => `${name} ${version}`).join(', '));
  lines.push('Figures come from one run and vary with machine and load; compare ratios measured in the same run, not figures across runs.');
  if (result.s1) lines.push('', ...formatS1(result.s1, result));
  if (result.s2) lines.push('', ...formatS2(result.s2));
  if (result.s3) lines.push('', ...formatS3(result.s3));
  if (result.runner) lines.push('', ...formatRunner(result.runner));
  if (result.audit) lines.push('', ...formatAudit(result.audit));
  if (result.approval) lines.push('', ...formatApproval(result.approval));
  if (result.telemetry) lines.push('', ...formatTelemetry(result.telemetry));
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
    ms(row.perStep.meanMs),
    ms(row.perStep.p50Ms),
    ms(row.perStep.p99Ms),
    ms(row.model?.meanMs),
    ms(row.overhead?.meanMs),
    ms(row.overhead?.p50Ms),
    ms(row.overhead?.p99Ms),
    ms(row.write?.meanMs),
  ]);
  const ratios = [
    ["Keel / LangGraph with equal durability, overhead", ...s1.comparisons.map((comparison) => times(comparison.keelOverLangGraph))],
    ['Keel / floor, overhead', ...s1.comparisons.map((comparison) => times(comparison.keelOverFloor))],
    ['Keel / floor + model decision, overhead (diagnostic)', ...s1.comparisons.map((comparison) => times(comparison.keelOverFloorWithModel))],
    ["Keel / LangGraph with equal durability, whole step", ...s1.comparisons.map((comparison) => times(comparison.keelOverLangGraphWholeStep))],
  ];
  return section('S1  Per-step overhead: one workflow, each step one model decision (AI SDK generateText, scripted model) and one no-op tool call; durable SQLite store.', [
    `synchronous=NORMAL runs ${s1Steps} steps; synchronous=FULL runs ${s1FullSteps} (FULL waits for the disk on every commit).`,
    'step = whole step; model = the model decision inside it (Keel: the duration it journals; LangGraph: timed around the agent node\'s prompt and generateText);',
    'overhead = step - model: what the system itself costs per step (the floor has no model, so its overhead is its step); write = time in the store\'s writes.',
    '',
    ...table(
      ['system', 'sync', 'steps', 'steps/s', 'step mean', 'p50', 'p99', 'model mean', 'overhead mean', 'p50', 'p99', 'write mean'],
      rows,
      ['left', 'left', ...Array<Align>(10).fill('right')],
    ),
    '(times in ms)',
    '',
    ...table(['ratio of means', ...s1.comparisons.map((comparison) => `${comparison.durability.toUpperCase()} (${comparison.steps} steps)`)], ratios, [
      'left',
      ...s1.comparisons.map(() => 'right' as const),
    ]),
    '',
    'What each row measures:',
    ...uniqueMeasures(s1.rows),
  ]);
}

function formatS2(s2: S2Result): string[] {
  const probeSteps = s2.rows[0]?.probes.map((probe) => probe.step) ?? [];
  const rows = s2.rows.map((row) => [
    row.label,
    String(row.steps),
    ...row.probes.map((probe) => `${ms(probe.stepMs)} / ${ms(probe.overheadMs)} / ${ms(probe.writeMs)}`),
    `${times(row.growth)} / ${times(row.overheadGrowth)} / ${times(row.writeGrowth)}`,
    megabytes(row.databaseBytes),
    fixed(row.totalMs / 1000, 1),
  ]);
  return section(`S2  Growing state: every step appends a ${s2.messageBytes}-byte message to the workflow's context; synchronous=NORMAL.`, [
    `Each probe is step / overhead / write in ms, each the median of the steps within ±${s2.window} of that step; last/first compares the last probe with the first.`,
    'Database = file + -wal at the end.',
    '',
    ...table(
      ['system', 'steps', ...probeSteps.map((step) => `step ${step}`), 'last/first', 'database', 'total s'],
      rows,
      ['left', 'right', ...probeSteps.map(() => 'right' as const), 'right', 'right', 'right'],
    ),
    '',
    'What each row measures:',
    ...s2.rows.map((row) => `  ${row.label}: ${row.measures}`),
  ]);
}

function formatS3(s3: S3Result): string[] {
  const first = s3.rows[0];
  const rows = s3.rows.map((row) => [row.label, `${row.completed}/${row.workflows}`, fixed(row.workflowsPerSecond, 1), fixed(row.stepsPerSecond, 0), fixed(row.totalMs / 1000, 2)]);
  return section(
    `S3  Many workflows: ${first?.workflows ?? 0} workflows x ${first?.stepsPerWorkflow ?? 0} steps, ${first?.concurrency ?? 0} in flight at once, one process; synchronous=NORMAL.`,
    [
      '',
      ...table(['system', 'completed', 'workflows/s', 'steps/s', 'total s'], rows, ['left', 'right', 'right', 'right', 'right']),
      '',
      'What each row measures:',
      ...s3.rows.map((row) => `  ${row.label}: ${row.measures}`),
    ],
  );
}

function formatRunner(runner: RunnerResult): string[] {
  const rows = runner.rows.map((row) => [
    row.label,
    String(row.call.count),
    us(row.call.meanUs),
    us(row.call.p50Us),
    us(row.call.p99Us),
    us(row.overhead?.meanUs),
    us(row.overhead?.p50Us),
    us(row.overhead?.p99Us),
  ]);
  return section('Runner  Tool runner overhead per successful call of a no-op tool, in process, against calling the tool directly; no journal or audit writes.', [
    `${runner.calls} calls per row after ${runner.warmupCalls} warm-up calls, in ${runner.rounds} rounds in which the rows take turns; one call at a time.`,
    'call = one awaited call; overhead = the row minus the direct call (mean - mean, p50 - p50, p99 - p99).',
    '',
    ...table(['row', 'calls', 'call mean', 'p50', 'p99', 'overhead mean', 'p50', 'p99'], rows, ['left', ...Array<Align>(7).fill('right')]),
    '(times in µs)',
    '',
    'What each row measures:',
    ...runner.rows.map((row) => `  ${row.label}: ${row.measures}`),
  ]);
}

function formatAudit(audit: AuditVerifyResult): string[] {
  return section('Audit  keel audit verify: every entry of a hash-chained audit log read from SQLite, rehashed and linked to the one before.', [
    `${audit.entries} entries (${fixed(audit.databaseBytes / 2 ** 20, 0)} MiB database), written first in batches of 10,000 (not part of the figure).`,
    '',
    ...table(['entries', 'verify s', 'entries/s', 'write s', 'intact'], [[String(audit.entries), fixed(audit.verifyMs / 1000, 2), fixed(audit.entriesPerSecond, 0), fixed(audit.writeMs / 1000, 1), audit.ok ? 'yes' : 'NO']], [
      'right',
      'right',
      'right',
      'right',
      'left',
    ]),
  ]);
}

function formatApproval(approval: ApprovalLatencyResult): string[] {
  const row = (label: string, summary: ApprovalLatencyResult['toStart']) => [label, String(summary.count), ms(summary.p50Ms), ms(summary.p99Ms), ms(summary.meanMs), ms(summary.maxMs)];
  return section('Approval  From keel.approve returning to the approved step running, while the other workflows stay parked waiting for approval; one process, SQLite.', [
    `${approval.parked} workflows parked (in ${fixed(approval.parkMs / 1000, 1)} s, not timed); ${approval.samples} approvals one at a time; keel.work({ concurrency: ${approval.concurrency}, pollMs: ${approval.pollMs} }); ${approval.stillParked} still parked at the end.`,
    `The idle worker's lanes poll every ${approval.pollMs} ms and an approval does not wake them, so each figure includes up to one poll interval (about half on average);`,
    'each approval is made when the worker is idle again, at a random moment of its poll interval.',
    'starts = the approved tool call is entered; completes = that step\'s step-completed event. No target (issue 4 sets none).',
    '',
    ...table(['approval ->', 'samples', 'p50', 'p99', 'mean', 'max'], [row('step starts', approval.toStart), row('step completes', approval.toComplete), row('(keel.approve call itself)', approval.approveCall)], ['left', ...Array<Align>(5).fill('right')]),
    '(times in ms)',
  ]);
}

function formatTelemetry(telemetry: TelemetryOverheadResult): string[] {
  const row = (label: string, figures: TelemetryOverheadResult['off'], spanShare: number) => [label, us(figures.stepUs), us(figures.spansUs), percent(spanShare)];
  return section('Telemetry  What the OpenTelemetry spans (invoke_agent, chat, execute_tool) add to a step: no provider registered, and the SDK with a span processor and an exporter that drops every span.', [
    `step = a real workflow step (scripted model decision, a tool call, commits to SQLite), workflows of ${telemetry.stepsPerWorkflow} steps, ${telemetry.workflows} workflows per mode and round;`,
    `spans = the span work of one step alone (${telemetry.spanSteps} steps per mode and round); ${telemetry.rounds} rounds in which the modes take turns; medians over rounds.`,
    '',
    ...table(['tracing', 'step', 'spans', 'spans / step (off)'], [row('off (no provider)', telemetry.off, telemetry.noopShare), row('SDK, no-op exporter', telemetry.sdk, telemetry.sdkShare)], ['left', 'right', 'right', 'right']),
    '(times in µs)',
    `Whole step, SDK minus off: ${percent(telemetry.stepDeltaShare)} of a step (diagnostic only: the commits' noise is larger than the spans' cost).`,
  ]);
}

export function formatTargets(targets: Target[]): string[] {
  const figure = (target: Target) =>
    target.unit === 'microseconds'
      ? `${us(target.figure)} µs (limit ${target.limit} µs)`
      : target.unit === 'seconds'
        ? `${fixed(target.figure, 2)} s (limit ${target.limit} s)`
        : target.unit === 'share'
          ? `${percent(target.figure)} (limit ${percent(target.limit)})`
          : `${times(target.figure)} (limit ${target.limit}x)`;
  const verdict = (target: Target) => (target.inconclusive ? '[no verdict]' : target.met ? '[met]    ' : '[NOT met]');
  return [
    'Targets (reported, never asserted)',
    ...targets.map((target) => `  ${verdict(target)} ${target.name}: ${figure(target)}${target.inconclusive ? `; ${target.inconclusive}` : ''}`),
  ];
}

function uniqueMeasures(rows: StepRow[]): string[] {
  const seen = new Map<string, string>();
  for (const row of rows) if (!seen.has(row.label)) seen.set(row.label, row.measures);
  return [...seen].map(([label, text]) => `  ${label}: ${text}`);
}

function section(title: string, body: string[]): string[] {
  return [title, ...body.map((line) => (line === '' ? line : `    ${line}`))];
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

function ms(value: number | undefined): string {
  return value === undefined ? '-' : fixed(value, 3);
}

function us(value: number | undefined): string {
  return value === undefined ? '-' : fixed(value, 2);
}

function percent(share: number): string {
  return Number.isFinite(share) ? `${(share * 100).toFixed(2)}%` : '-';
}

function times(ratio: number): string {
  return `${fixed(ratio, 2)}x`;
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
