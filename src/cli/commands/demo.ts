// keel demo: the expense-approval example end to end on a fresh database. It starts the
// example's payments service on 127.0.0.1, submits a fixed batch of sample claims (clean ones,
// policy violations, malformed documents), runs them four at a time with live progress, and
// scores every outcome against what the sample expects. Payments the agent's approval policy holds
// (above 1,000 EUR, or near a category limit) are left waiting for the finance group: the demo
// records a finance approver and prints how to decide them. Exit 1 when any claim did not end as
// expected, so the demo doubles as a smoke test. With --chaos the service injects faults (503s,
// 429s, expiring tokens, hanging calls) and the summary counts what Keel's tool runner did.

import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { randomUUID } from 'node:crypto';
import { loadAgent } from '../agent-loader.js';
import { cliSecurity, createCliKeel, registerLoaded } from '../cli-keel.js';
import type { CommandContext } from '../command-context.js';
import { chaosFaults, countChaos, describeChaosFaults, type ChaosCounts } from '../demo/chaos.js';
import { displayPath, openDemoDatabase } from '../demo/demo-database.js';
import { grantDemoRights } from '../demo/demo-grants.js';
import { startDemoProgress, type DemoClaim, type DemoProgress } from '../demo/demo-progress.js';
import { demoReport, type SampleClaimLike } from '../demo/demo-report.js';
import { startExamplePayments, usePaymentsUrl, type ExamplePaymentsService } from '../example-services.js';
import { ExitCode } from '../exit.js';
import { formatFields } from '../format/table.js';
import type { CliIo } from '../io.js';
import { chooseModel } from '../model-choice.js';
import { databaseChoice, databaseOption, positiveInteger, shellQuote, type DatabaseChoice } from '../options.js';
import { packageModuleUrl, repositoryFilePath } from '../package-files.js';

const defaultClaims = 24;
/** The same seed every time: the same claims, so runs can be compared. */
const sampleSeed = 1;
const concurrency = 4;
const demoPrincipal = { id: 'keel-demo' };
/** Who the printed commands decide held payments as: in the finance group, and not the requester. */
const demoApprover = { id: 'fiona@finance', roles: ['finance'] };
const defaultDemoDatabase = '.keel/demo.db';

export function demoCommand(context: CommandContext): Command {
  return new Command('demo')
    .description('run the expense-approval example on a fresh database, with live progress and a summary')
    .addOption(new Option('--claims <n>', 'how many sample claims to submit').argParser(positiveInteger).default(defaultClaims))
    .option('--chaos', 'inject faults into the payments service (503s, 429s, expiring tokens, hanging calls) and count what Keel did about them')
    .addOption(databaseOption())
    .action(async (options: { claims: number; chaos?: boolean }, command: Command) => {
      context.exitWith(await runDemo(options.claims, options.chaos === true, demoDatabaseChoice(command, context.io.cwd), context.io));
    });
}

/**
 * The demo's database: the one named by --db or KEEL_DB, else its own file beside the default one.
 * The demo grants its principal the example's permissions, and a database that holds grants
 * enforces permissions for every agent run on it: that must not happen to the user's own database.
 */
function demoDatabaseChoice(command: Command, cwd: string): DatabaseChoice {
  if (command.getOptionValueSource('db') !== 'default') return databaseChoice(command, cwd);
  return { path: resolve(cwd, defaultDemoDatabase), flag: ` --db ${defaultDemoDatabase}` };
}

async function runDemo(claimCount: number, chaos: boolean, choice: DatabaseChoice, io: CliIo): Promise<number> {
  const models = chooseModel();
  const loaded = await loadAgent('expense-approval', io.cwd);
  models.assertCanDecide(loaded);
  const samples = await loadSampleClaims(claimCount);
  const database = await openDemoDatabase(choice, io.cwd);
  let payments: ExamplePaymentsService | undefined;
  let restorePaymentsUrl = () => {};
  try {
    // Least privilege on (docs/security.md), unless KEEL_PERMISSIONS=off says otherwise.
    const grants = cliSecurity() ? await grantDemoRights(database.store, loaded.agent, demoPrincipal.id) : [];
    await database.store.savePrincipal(demoApprover, 'keel-demo-setup');
    payments = await startExamplePayments(chaos ? chaosFaults : {});
    restorePaymentsUrl = usePaymentsUrl(payments.url);
    io.stdout.write(`Keel demo: ${samples.length} expense claims through agent 'expense-approval', ${concurrency} at a time\n`);
    io.stdout.write(
      formatFields([
        ['database', displayPath(database.path, io.cwd)],
        ['payments', `example payments service at ${payments.url}`],
        ['model', models.describe(loaded).replace(/^model: /, '')],
        [
          'permissions',
          grants.length > 0
            ? `enforced: ${demoPrincipal.id} holds ${grants.length} grants for '${loaded.agent.name}' (keel grants list${database.flag})`
            : 'not enforced (KEEL_PERMISSIONS=off)',
        ],
        ...(chaos ? ([['chaos', describeChaosFaults()]] as [string, string][]) : []),
      ]),
    );
    io.stdout.write(database.note ? `\nNote: ${database.note}\n\n` : '\n');

    const claims: DemoClaim[] = [];
    let progress: DemoProgress | undefined;
    const keel = createCliKeel({ store: database.store, models, onEvent: (event) => progress?.onEvent(event) });
    registerLoaded(keel, models, loaded);

    const started = performance.now();
    // Ids sort in submission order, so workers take the claims in batch order even when many
    // are created within one millisecond: a resubmitted claim then comes after its original.
    const batch = randomUUID().replaceAll('-', '').slice(0, 8);
    const width = Math.max(3, String(samples.length).length);
    for (const [index, sample] of samples.entries()) {
      const id = `wf_${batch}_${String(index + 1).padStart(width, '0')}`;
      await keel.start(loaded.agent.name, sample.input, { id, principal: demoPrincipal });
      claims.push({ workflowId: id, sample });
    }
    progress = startDemoProgress(io.stdout, claims);
    await keel.work({ concurrency, once: true });
    const elapsedMs = performance.now() - started;

    const results = await Promise.all(
      claims.map(async (claim) => ({ sample: claim.sample, workflow: (await database.store.getWorkflow(claim.workflowId))! })),
    );
    let chaosCounts: ChaosCounts | undefined;
    if (chaos) {
      const journals = await Promise.all(claims.map((claim) => database.store.readJournal(claim.workflowId)));
      chaosCounts = countChaos(journals, payments.stats(), keel.runner.breakers.counters());
    }
    const report = demoReport({
      results,
      chaos: chaosCounts,
      payments: payments.ledger(),
      elapsedMs,
      model: models.describe(loaded),
      databaseFlag: database.flag,
      sampleInput: sampleInputPath(io.cwd),
      approvals: { pending: await keel.approvals({ limit: samples.length }), approver: demoApprover.id },
    });
    io.stdout.write(report.text);
    return report.ok ? ExitCode.ok : ExitCode.workflowFailed;
  } finally {
    restorePaymentsUrl();
    await payments?.close();
    await database.store.close();
  }
}

interface ClaimsModule {
  sampleClaims(count: number, seed?: number): SampleClaimLike[];
}

async function loadSampleClaims(count: number): Promise<SampleClaimLike[]> {
  const module = (await import(packageModuleUrl('examples/expense-approval/claims').href)) as ClaimsModule;
  return module.sampleClaims(count, sampleSeed);
}

function sampleInputPath(cwd: string): string | undefined {
  const path = repositoryFilePath('examples/expense-approval/claims/clean-claim.json');
  return path ? shellQuote(displayPath(path, cwd)) : undefined;
}
