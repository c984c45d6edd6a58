// Smoke test of `npm run bench`: the quick sizes run in-process through every scenario and the
// result has the structure the report and --json promise (a row for every system, positive
// figures, every target with a met flag). It also checks that the floor writes the rows Keel
// writes, so the Keel/floor ratio compares equal work. No timing is asserted: targets are
// reported, never enforced.

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { genesisHash } from '../src/audit/audit-entry.js';
import { hashAuditEntry } from '../src/audit/chain.js';
import { BenchUsageError, parseBenchArgs } from './bench-args.js';
import { runFloorLoop } from './floor.js';
import { runKeelLoop } from './keel-scenarios.js';
import { formatReport } from './report.js';
import { RunnerVariant } from './runner-overhead.js';
import { BenchSystem, runBench, type BenchResult, type StepRow } from './scenarios.js';
import { BenchDurability, quickSizes } from './workload.js';

describe('npm run bench --quick', () => {
  let result: BenchResult;
  const progress: string[] = [];

  beforeAll(async () => {
    result = await runBench({ sizes: quickSizes, quick: true, scenarios: ['s1', 's2', 's3', 'runner'], log: (line) => progress.push(line) });
  });

  it('S1 has a row per system and durability, with positive figures', () => {
    const rows = result.s1!.rows;
    const row = (system: string, durability: string) => rows.filter((candidate) => candidate.system === system && candidate.durability === durability);
    for (const durability of [BenchDurability.normal, BenchDurability.full]) {
      const steps = durability === BenchDurability.normal ? quickSizes.s1Steps : quickSizes.s1FullSteps;
      for (const system of [BenchSystem.keel, BenchSystem.langgraph, BenchSystem.floor, BenchSystem.floorWithModel]) {
        const [measured, ...extra] = row(system, durability);
        expect(extra).toEqual([]);
        expect(measured!.synchronous).toBe(durability.toUpperCase());
        expectMeasuredRow(measured!, steps);
      }
    }
    const [defaults] = row(BenchSystem.langgraph, BenchDurability.langgraphDefault);
    expectMeasuredRow(defaults!, quickSizes.s1Steps);
    const [decisions] = row(BenchSystem.aiSdk, BenchDurability.normal);
    expect(decisions!.model!.meanMs).toBeGreaterThan(0);
    expect(decisions!.overhead).toBeNull();
    // Keel, LangGraph and the diagnostic floor decide with a model; the floor has none, so its overhead is its whole step.
    for (const system of [BenchSystem.keel, BenchSystem.langgraph, BenchSystem.floorWithModel]) {
      const [withModel] = row(system, BenchDurability.normal);
      expect(withModel!.model!.meanMs).toBeGreaterThan(0);
      expect(withModel!.overhead!.meanMs).toBeLessThan(withModel!.perStep.meanMs);
    }
    const [floor] = row(BenchSystem.floor, BenchDurability.normal);
    expect(floor!.model).toBeNull();
    expect(floor!.overhead).toEqual(floor!.perStep);
  });

  it('S1 compares Keel with LangGraph and the floor in both NORMAL and FULL', () => {
    const comparisons = result.s1!.comparisons;
    expect(comparisons.map((comparison) => [comparison.durability, comparison.steps])).toEqual([
      ['normal', quickSizes.s1Steps],
      ['full', quickSizes.s1FullSteps],
    ]);
    for (const comparison of comparisons) {
      for (const ratio of [comparison.keelOverLangGraph, comparison.keelOverFloor, comparison.keelOverFloorWithModel, comparison.keelOverLangGraphWholeStep]) {
        expectPositive(ratio);
      }
    }
  });

  it('S2 probes the growing workflow of Keel and LangGraph at the chosen steps', () => {
    const s2 = result.s2!;
    expect(s2.messageBytes).toBe(1024);
    expect(s2.rows.map((row) => row.system)).toEqual([BenchSystem.keel, BenchSystem.langgraph]);
    for (const row of s2.rows) {
      expect(row.steps).toBe(quickSizes.s2Steps);
      expect(row.probes.map((probe) => probe.step)).toEqual([...quickSizes.s2Probes]);
      for (const probe of row.probes) {
        expectPositive(probe.stepMs);
        expectPositive(probe.overheadMs);
        expectPositive(probe.writeMs);
        expect(probe.overheadMs).toBeLessThan(probe.stepMs);
      }
      for (const growth of [row.growth, row.overheadGrowth, row.writeGrowth]) expectPositive(growth);
      // Every step stored at least its 1 KB message.
      expect(row.databaseBytes).toBeGreaterThan(quickSizes.s2Steps * 1024);
    }
  });

  it('S3 completes every workflow in both systems', () => {
    const rows = result.s3!.rows;
    expect(rows.map((row) => row.system)).toEqual([BenchSystem.keel, BenchSystem.langgraph]);
    for (const row of rows) {
      expect(row).toMatchObject({ workflows: quickSizes.s3Workflows, completed: quickSizes.s3Workflows, concurrency: quickSizes.s3Concurrency });
      expectPositive(row.workflowsPerSecond);
      expectPositive(row.stepsPerSecond);
    }
  });

  it('runner times the direct call and each runner variant, with overheads against the direct call', () => {
    const runner = result.runner!;
    expect(runner).toMatchObject({ calls: quickSizes.runnerCalls, warmupCalls: quickSizes.runnerWarmupCalls, rounds: quickSizes.runnerRounds });
    expect(runner.rows.map((row) => row.variant)).toEqual([RunnerVariant.direct, RunnerVariant.runner, RunnerVariant.service, RunnerVariant.rateBudget]);
    const [direct, ...throughRunner] = runner.rows;
    expect(direct!.overhead).toBeNull();
    for (const row of runner.rows) {
      expect(row.call.count).toBe(quickSizes.runnerCalls);
      for (const figure of [row.call.meanUs, row.call.p50Us, row.call.p99Us]) expectPositive(figure);
      expect(row.call.p50Us).toBeLessThanOrEqual(row.call.p99Us);
      expect(row.measures.length).toBeGreaterThan(20);
    }
    for (const row of throughRunner) {
      expect(row.overhead).toEqual({
        meanUs: row.call.meanUs - direct!.call.meanUs,
        p50Us: row.call.p50Us - direct!.call.p50Us,
        p99Us: row.call.p99Us - direct!.call.p99Us,
      });
    }
  });

  it('reports every target with its figure and a met flag', () => {
    expect(result.targets.map((target) => target.name)).toEqual([
      "S1 NORMAL: Keel's per-step overhead at most 1/5 of LangGraph's with equal durability",
      "S1 NORMAL: Keel's per-step overhead within 3x of the floor",
      "S1 FULL: Keel's per-step overhead at most 1/5 of LangGraph's with equal durability",
      "S1 FULL: Keel's per-step overhead within 3x of the floor",
      `S2: Keel's per-step overhead (step minus model decision) at step ${quickSizes.s2Probes.at(-1)} within 1.5x of step ${quickSizes.s2Probes[0]}`,
      "Runner: the tool runner's mean overhead per successful call (service with breaker, no rate budget) under 50 µs",
    ]);
    expect(result.targets.map((target) => target.unit)).toEqual(['ratio', 'ratio', 'ratio', 'ratio', 'ratio', 'microseconds']);
    for (const target of result.targets) {
      expect(Number.isFinite(target.figure)).toBe(true);
      // A quick run on a loaded machine can measure a cost at or below zero; it then gets no verdict.
      if (target.figure > 0) {
        expect(target.inconclusive).toBeUndefined();
        expect(target.met).toBe(target.figure <= target.limit);
      } else {
        expect(target.inconclusive).toMatch(/noise/);
        expect(target.met).toBe(false);
      }
    }
  });

  it('prints every row with what it measures, and survives a JSON round trip', () => {
    const report = formatReport(result);
    for (const row of [...result.s1!.rows, ...result.s2!.rows, ...result.s3!.rows, ...result.runner!.rows]) expect(report).toContain(`${row.label}: ${row.measures}`);
    expect(report.match(/\[(met|NOT met|no verdict)\]/g)).toHaveLength(result.targets.length);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(progress.length).toBeGreaterThan(0);
  });
});

describe('npm run bench --quick --scenario approval', () => {
  it('parks every workflow, times each approval to its step starting and completing, and leaves the rest parked', async () => {
    const result = await runBench({ sizes: quickSizes, quick: true, scenarios: ['approval'], log: () => undefined });
    const approval = result.approval!;
    expect(approval).toMatchObject({
      parked: quickSizes.approvalParked,
      samples: quickSizes.approvalSamples,
      concurrency: quickSizes.approvalConcurrency,
      pollMs: quickSizes.approvalPollMs,
      stillParked: quickSizes.approvalParked - quickSizes.approvalSamples,
    });
    for (const summary of [approval.approveCall, approval.toStart, approval.toComplete]) {
      expect(summary.count).toBe(quickSizes.approvalSamples);
      expect(summary.p50Ms).toBeLessThanOrEqual(summary.p99Ms);
    }
    // A step completes after its tool call starts, sample by sample, so also in the mean.
    expect(approval.toComplete.meanMs).toBeGreaterThan(approval.toStart.meanMs);
    expect(result.s1).toBeUndefined();
    const report = formatReport(result);
    expect(report).toContain(`${quickSizes.approvalParked} workflows parked`);
    expect(report).toMatch(/step starts\s+10\s/);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });
});

describe('the floor', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'keel-bench-floor-'));
  });
  afterEach(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  it('writes the rows a Keel run of the same length writes, in every table', async () => {
    const steps = 5;
    await runKeelLoop({ path: join(directory, 'keel.db'), steps, durability: 'normal' });
    await runFloorLoop({ path: join(directory, 'floor.db'), steps, durability: 'normal' });
    const [keel, floor] = [readRows(join(directory, 'keel.db')), readRows(join(directory, 'floor.db'))];
    expect(keel.journal).toHaveLength(2 * steps + 3);
    expect(floor.journal).toEqual(keel.journal);
    expect(floor.workflows).toEqual(keel.workflows);
    expect(floor.audit).toEqual(keel.audit);
    expect(floor.rowCounts).toEqual(keel.rowCounts);
    // The floor's audit rows form a valid chain, so it pays for the same hashing Keel does.
    expect(floor.auditHashesValid).toBe(true);
  });
});

describe('bench flags', () => {
  it('runs every scenario by default, in S1, S2, S3, runner, audit, approval, telemetry order', () => {
    expect(parseBenchArgs([])).toEqual({ json: false, quick: false, help: false, scenarios: ['s1', 's2', 's3', 'runner', 'audit', 'approval', 'telemetry'] });
  });

  it('takes scenarios repeated or as a comma list', () => {
    expect(parseBenchArgs(['--json', '--quick', '--scenario', 's3', '--scenario=S1,s3']).scenarios).toEqual(['s1', 's3']);
    expect(parseBenchArgs(['--scenario', 's2']).scenarios).toEqual(['s2']);
    expect(parseBenchArgs(['--scenario', 'runner,s1']).scenarios).toEqual(['s1', 'runner']);
  });

  it('refuses unknown flags and scenarios, naming them', () => {
    expect(() => parseBenchArgs(['--fast'])).toThrow(BenchUsageError);
    expect(() => parseBenchArgs(['--fast'])).toThrow(/--fast[\s\S]*Valid options: --json, --quick/);
    expect(() => parseBenchArgs(['--scenario', 's4'])).toThrow(/Unknown scenario 's4'.*s1, s2, s3, runner/);
    expect(() => parseBenchArgs(['s1'])).toThrow(BenchUsageError);
  });
});

function expectMeasuredRow(row: StepRow, steps: number): void {
  expect(row.steps).toBe(steps);
  expect(row.perStep.count).toBe(steps);
  for (const figure of [row.stepsPerSecond, row.totalMs, row.perStep.meanMs, row.perStep.p50Ms, row.perStep.p99Ms, row.overhead!.meanMs, row.write!.meanMs]) {
    expectPositive(figure);
  }
  expect(row.perStep.p50Ms).toBeLessThanOrEqual(row.perStep.p99Ms);
  expect(row.measures.length).toBeGreaterThan(20);
}

function expectPositive(figure: number): void {
  expect(Number.isFinite(figure)).toBe(true);
  expect(figure).toBeGreaterThan(0);
}

/** The rows a run left, without what differs by run by design: ids, times, measured durations and token counts. */
function readRows(path: string) {
  const database = new Database(path, { readonly: true });
  try {
    const journal = (database.prepare('SELECT * FROM journal ORDER BY seq').all() as Record<string, unknown>[]).map((row) => ({
      step: row.step,
      kind: row.kind,
      name: row.name,
      status: row.status,
      attempt: row.attempt,
      hasDuration: row.duration_ms !== null,
      hasTokens: [row.tokens_in !== null, row.tokens_out !== null],
      data: shapeOf(JSON.parse(String(row.data))),
    }));
    const workflows = (database.prepare('SELECT * FROM workflows').all() as Record<string, unknown>[]).map(
      ({ id, agent_version, created_at, updated_at, ...rest }) => ({ ...rest, hasVersion: typeof agent_version === 'string', times: [typeof created_at, typeof updated_at] }),
    );
    const auditRows = database.prepare('SELECT * FROM audit ORDER BY seq').all() as Record<string, unknown>[];
    const audit = auditRows.map((row) => ({
      seq: row.seq,
      kind: row.kind,
      actor: row.actor,
      step: row.step,
      subject: row.subject,
      outcome: row.outcome,
      data: shapeOf(JSON.parse(String(row.data))),
    }));
    const auditHashesValid = auditRows.every((row, index) => {
      const sealed = {
        seq: Number(row.seq),
        at: Number(row.at),
        kind: String(row.kind),
        actor: String(row.actor),
        workflowId: row.workflow_id as string | null,
        step: row.step as number | null,
        subject: row.subject as string | null,
        outcome: row.outcome as string | null,
        dataJson: String(row.data),
        prevHash: String(row.prev_hash),
      };
      return sealed.prevHash === (index === 0 ? genesisHash : auditRows[index - 1]!.hash) && row.hash === hashAuditEntry(sealed);
    });
    // Every table with rows, so rows Keel starts writing elsewhere (context, a new table) show up here.
    const tables = database.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    const rowCounts = Object.fromEntries(
      tables.map(({ name }) => [name, (database.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n]).filter(([, count]) => count !== 0),
    );
    return { journal, workflows, audit, auditHashesValid, rowCounts };
  } finally {
    database.close();
  }
}

/** Keys and values, with the values that vary by run (measured durations, token counts, version hashes) reduced to their kind; the result fingerprint does not vary. */
function shapeOf(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((item) => shapeOf(item));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, shapeOf(item, name)]));
  if (typeof value === 'number' && key !== 'step') return 'number';
  if (key === 'agentVersion' && typeof value === 'string' && /^\d+#\w+$/.test(value)) return 'version';
  return value;
}
