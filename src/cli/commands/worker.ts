// keel worker: runs runnable workflows (new ones, due ones, and those whose worker died) until
// SIGINT/SIGTERM, or with --once until nothing is runnable. A stop request is graceful: the worker
// claims nothing more and each running workflow stops after its step in flight, back to pending
// for the next worker; a second signal stops at once (leases then expire and others recover).
//
// The expense-approval example pays through a payments service. A worker never starts a
// throwaway one: its ledger would vanish with the worker, and a payment retried after a crash
// could not be recognised as already made. It needs EXPENSE_PAYMENTS_URL instead.

import { Command, Option } from 'commander';
import { KeelError } from '../../errors.js';
import type { Store, WorkflowRecord, WorkflowStatus } from '../../store/types.js';
import { loadAgent, type LoadedAgent } from '../agent-loader.js';
import { createCliKeel, registerLoaded } from '../cli-keel.js';
import type { CommandContext } from '../command-context.js';
import { openDatabase } from '../database.js';
import { paymentsUrlVariable } from '../example-services.js';
import { ExitCode } from '../exit.js';
import type { CliIo } from '../io.js';
import { chooseModel } from '../model-choice.js';
import type { MetricsEndpoint } from '../../telemetry/prometheus.js';
import { databaseChoice, databaseOption, nonNegativeInteger, positiveInteger } from '../options.js';

interface WorkerOptions {
  once?: boolean;
  concurrency: number;
  agent?: string[];
  leaseMs?: number;
  maxRecoveries?: number;
  pollMs: number;
  metricsPort?: number;
}

const paymentsAgentModule = 'builtin:expense-approval';
const shutdownSignals = ['SIGINT', 'SIGTERM'] as const;

export function workerCommand(context: CommandContext): Command {
  return new Command('worker')
    .description('run runnable workflows, including those whose worker died, until stopped (Ctrl-C finishes the steps in flight)')
    .option('--once', 'stop when no workflow is runnable instead of waiting for more')
    .addOption(new Option('--concurrency <n>', 'workflows to run at the same time').argParser(positiveInteger).default(4))
    .option('--agent <agent...>', 'agents to load up front (built-in names or module paths); others are imported from the module each workflow recorded')
    .addOption(new Option('--lease-ms <ms>', "how long a claim lasts without renewal: a dead worker's workflows are taken over after it (default: 30000)").argParser(positiveInteger).env('KEEL_LEASE_MS'))
    .addOption(new Option('--max-recoveries <n>', 'crash recoveries of one workflow before it is parked for review (default: 5)').argParser(nonNegativeInteger).env('KEEL_MAX_RECOVERIES'))
    .addOption(new Option('--poll-ms <ms>', 'how often an idle worker looks for work').argParser(positiveInteger).default(250))
    .addOption(new Option('--metrics-port <port>', 'serve Prometheus metrics on http://127.0.0.1:<port>/metrics').argParser(positiveInteger))
    .addOption(databaseOption())
    .action(async (options: WorkerOptions, command: Command) => {
      context.exitWith(await runWorker(options, databaseChoice(command, context.io.cwd).path, context.io));
    });
}

async function runWorker(options: WorkerOptions, databasePath: string, io: CliIo): Promise<number> {
  const models = chooseModel();
  const preloaded: LoadedAgent[] = [];
  for (const reference of options.agent ?? []) {
    const loaded = await loadAgent(reference, io.cwd);
    models.assertCanDecide(loaded);
    preloaded.push(loaded);
  }
  const store = openDatabase(databasePath, { mustExist: true });
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      io.stderr.write(`worker: ${signal} again: stopping now; workflows still running are taken over by another worker when their lease expires.\n`);
      process.exit(130);
    }
    io.stderr.write(`worker: ${signal}: finishing the steps in flight, then stopping (send it again to stop at once).\n`);
    stop.abort();
  };
  const listeners = shutdownSignals.map((signal) => [signal, () => onSignal(signal)] as const);
  let metricsEndpoint: MetricsEndpoint | undefined;
  try {
    await assertPaymentsConfigured(store, preloaded);
    if (options.metricsPort !== undefined) {
      // Loaded only when asked for: the SDK and the exporter stay out of workers that do not serve metrics.
      const { startMetricsEndpoint } = await import('../../telemetry/prometheus.js');
      metricsEndpoint = await startMetricsEndpoint(options.metricsPort);
      io.stderr.write(`worker: serving metrics on ${metricsEndpoint.url}\n`);
    }
    const counts = new Map<WorkflowStatus, number>();
    const described = new Set<string>();
    const describe = (loaded: LoadedAgent) => {
      if (described.has(loaded.module)) return;
      described.add(loaded.module);
      io.stderr.write(`worker: agent '${loaded.agent.name}' (${loaded.module}): ${models.describe(loaded)}\n`);
    };
    const keel = createCliKeel({
      store,
      models,
      leaseMs: options.leaseMs,
      maxRecoveries: options.maxRecoveries,
      meterProvider: metricsEndpoint?.meterProvider,
      onAgentLoaded: (loaded) => {
        if (loaded.module === paymentsAgentModule && !process.env[paymentsUrlVariable]) {
          const message =
            `An expense-approval workflow arrived, but ${paymentsUrlVariable} is not set, so this worker cannot pay its claim: it parks it (waiting for unknown-agent). ` +
            `${paymentsUrlAdvice} Then restart the worker and resume the parked workflows (keel list --status waiting shows them).`;
          io.stderr.write(`worker: ${message}\n`);
          throw new KeelError('BAD_INPUT', message);
        }
        describe(loaded);
      },
      onEvent: (event) => {
        if (event.type !== 'workflow-stopped') return;
        counts.set(event.workflow.status, (counts.get(event.workflow.status) ?? 0) + 1);
        io.stdout.write(finishedLine(event.workflow));
      },
    });
    for (const loaded of preloaded) {
      registerLoaded(keel, models, loaded);
      describe(loaded);
    }
    for (const [signal, listener] of listeners) process.on(signal, listener);
    io.stderr.write(
      `worker ${keel.workerId}: running workflows from ${databasePath}, up to ${options.concurrency} at a time` +
        (options.once ? ', until none is runnable.\n' : '; Ctrl-C stops it after the steps in flight.\n'),
    );
    const { processed } = await keel.work({ concurrency: options.concurrency, once: options.once === true, pollMs: options.pollMs, signal: stop.signal });
    io.stdout.write(summaryLine(processed, counts, stop.signal.aborted));
    return (counts.get('failed') ?? 0) > 0 ? ExitCode.workflowFailed : ExitCode.ok;
  } finally {
    for (const [signal, listener] of listeners) process.off(signal, listener);
    await metricsEndpoint?.close();
    await store.close();
  }
}

/** Refuses to start when expense-approval workflows would run without the payments service they pay through. */
async function assertPaymentsConfigured(store: Store, preloaded: readonly LoadedAgent[]): Promise<void> {
  if (process.env[paymentsUrlVariable]) return;
  if (preloaded.some((loaded) => loaded.module === paymentsAgentModule)) {
    throw new KeelError('BAD_INPUT', paymentsUrlMissing('--agent expense-approval was given'));
  }
  let waiting = 0;
  for (const status of ['pending', 'running'] as const) {
    const workflows = await store.listWorkflows({ agent: 'expense-approval', status });
    waiting += workflows.filter((workflow) => workflow.agentModule === paymentsAgentModule).length;
  }
  if (waiting > 0) {
    throw new KeelError('BAD_INPUT', paymentsUrlMissing(`${waiting} workflow${waiting === 1 ? '' : 's'} of the expense-approval example ${waiting === 1 ? 'is' : 'are'} waiting to run`));
  }
}

const paymentsUrlAdvice =
  `A worker does not start a throwaway payments service: its ledger would vanish with the worker, and a payment retried after a crash could be made twice. ` +
  `Start one that outlives the workers (node dist/examples/expense-approval/payments-service.js prints its URL) and set ${paymentsUrlVariable} to that URL.`;

function paymentsUrlMissing(why: string): string {
  return `${why}, and the expense-approval example pays claims through its payments service, but ${paymentsUrlVariable} is not set. ${paymentsUrlAdvice} Then start the worker again.`;
}

function finishedLine(workflow: WorkflowRecord): string {
  const result =
    workflow.status === 'completed'
      ? `outcome ${workflow.outcome}`
      : workflow.status === 'failed'
        ? `${workflow.failure?.code ?? 'failed'}: ${workflow.failure?.message ?? ''}`
        : workflow.status === 'waiting'
          ? `waiting for ${workflow.waitingFor ?? 'an event'}`
          : workflow.status === 'pending'
            ? 'handed back: stopped between steps, any worker can continue it'
            : workflow.status;
  return `${workflow.status.padEnd(9)}  ${workflow.id}  ${workflow.agent}  step ${workflow.step}  ${result}\n`;
}

function summaryLine(processed: number, counts: ReadonlyMap<WorkflowStatus, number>, stopped: boolean): string {
  const parts = (['completed', 'failed', 'waiting', 'pending', 'running', 'cancelled'] as const)
    .filter((status) => (counts.get(status) ?? 0) > 0)
    .map((status) => `${counts.get(status)} ${status === 'pending' ? 'handed back' : status}`);
  const how = stopped ? 'stopped on request' : 'nothing left to run';
  return `worker: ${how}; ran ${processed} workflow${processed === 1 ? '' : 's'}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}.\n`;
}
