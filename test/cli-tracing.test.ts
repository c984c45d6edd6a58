// The keel command's tracing from the OTEL_* environment variables, run as the real program
// (bin/keel.js over dist/): with OTEL_TRACES_EXPORTER=console a run's spans go to stderr as JSON
// lines under the service name asked for, while stdout still holds only the --json result;
// otlp, which is not bundled, says so and how to wire it.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const keelBin = join(root, 'bin', 'keel.js');
const compiledCli = join(root, 'dist', 'src', 'cli', 'main.js');
const cleanClaim = join(root, 'examples', 'expense-approval', 'claims', 'clean-claim.json');

let directory: string;

beforeAll(() => {
  if (!existsSync(compiledCli)) throw new Error(`This test runs the compiled keel command, and ${compiledCli} is missing. Run \`npm run build\` first (npm test does).`);
});

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-cli-tracing-'));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

interface Finished {
  code: number | null;
  out: string;
  err: string;
}

function keel(args: string[], environment: Record<string, string>): Promise<Finished> {
  return new Promise((resolvePromise, reject) => {
    const env = { ...process.env, ...environment };
    for (const name of Object.keys(env)) if (name.startsWith('OTEL_') && !(name in environment)) delete env[name];
    const child = spawn(process.execPath, [keelBin, ...args], { cwd: directory, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, out, err });
    });
  });
}

interface SpanLine {
  name: string;
  traceId: string;
  id: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  resource: { attributes: Record<string, unknown> };
}

function spanLines(stderr: string): SpanLine[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as SpanLine);
}

describe('keel with OTEL_TRACES_EXPORTER', () => {
  it('prints a run’s spans to stderr with console, keeping stdout to the --json result', async () => {
    const result = await keel(['run', 'expense-approval', '--input', cleanClaim, '--json', '--db', join(directory, 'keel.db')], {
      OTEL_TRACES_EXPORTER: 'console',
      OTEL_SERVICE_NAME: 'expense-clerk',
    });
    expect(result.code, result.err).toBe(0);
    const workflow = JSON.parse(result.out) as { id: string; status: string };
    expect(workflow.status).toBe('completed');

    const spans = spanLines(result.err);
    const run = spans.find((span) => span.name === 'invoke_agent expense-approval');
    expect(run, result.err).toBeDefined();
    expect(run!.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'keel.workflow.id': workflow.id });
    expect(run!.resource.attributes['service.name']).toBe('expense-clerk');
    const children = spans.filter((span) => span.parentSpanId === run!.id);
    expect(children.some((span) => span.attributes['gen_ai.operation.name'] === 'chat')).toBe(true);
    expect(children.some((span) => span.name === 'execute_tool pay_claim')).toBe(true);
  });

  it('exports nothing when the variable is unset or none, or the sampler samples nothing', async () => {
    const environments: Record<string, string>[] = [{}, { OTEL_TRACES_EXPORTER: 'none' }, { OTEL_TRACES_EXPORTER: 'console', OTEL_TRACES_SAMPLER: 'always_off' }];
    for (const environment of environments) {
      const result = await keel(['run', 'expense-approval', '--input', cleanClaim, '--json', '--db', join(directory, 'keel.db')], environment);
      expect(result.code, result.err).toBe(0);
      expect(JSON.parse(result.out)).toMatchObject({ status: 'completed' });
      expect(spanLines(result.err)).toEqual([]);
    }
  });

  it('says that otlp is not bundled and how to wire it, and still runs the command', async () => {
    const result = await keel(['run', 'expense-approval', '--input', cleanClaim, '--json', '--db', join(directory, 'keel.db')], { OTEL_TRACES_EXPORTER: 'otlp' });
    expect(result.code, result.err).toBe(0);
    expect(JSON.parse(result.out)).toMatchObject({ status: 'completed' });
    expect(result.err).toContain('no OTLP exporter is bundled with keel');
    expect(result.err).toContain('createKeel');
    expect(spanLines(result.err)).toEqual([]);
  });
});
