// keel audit: the hash-chained audit log. `keel audit` queries it, `verify` checks the whole
// chain and names the first bad entry, `export` writes a part of it as JSON Lines with the
// hashes needed to check it elsewhere, `verify-export` checks such a file. A broken chain exits
// with 1: it is a finding about the data, not a usage error.

import { Command, InvalidArgumentError, Option } from 'commander';
import { closeSync, existsSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AuditEntry, AuditHead } from '../../audit/audit-entry.js';
import { exportAudit, verifyExport, type ExportVerification } from '../../audit/export.js';
import { verifyAuditChain, type AuditVerification } from '../../audit/verify.js';
import { KeelError } from '../../errors.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { ExitCode } from '../exit.js';
import { formatTable } from '../format/table.js';
import { formatTimestamp } from '../format/time.js';
import { databaseChoice, databaseOption, parsePointInTime, shellQuote } from '../options.js';

/** A query returns at most this many entries; a longer answer is cut and the user told how to narrow it. */
const queryLimit = 1000;

interface QueryOptions {
  workflow?: string;
  user?: string;
  since?: number;
  json?: boolean;
}

export function auditCommand(context: CommandContext): Command {
  const audit = new Command('audit')
    .description('show the audit log (who did what, when); verify, export and verify-export check it')
    .option('--workflow <id>', 'only entries of this workflow')
    .option('--user <id>', "only entries by this actor: a principal id, 'operator', or 'keel:<worker>'")
    .addOption(new Option('--since <time>', 'only entries at or after an ISO time or a duration ago (7d, 12h, 30m)').argParser((value) => parsePointInTime(value)))
    .option('--json', 'print a JSON array of entries')
    .addOption(databaseOption())
    .action(async (options: QueryOptions, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const entries = await withDatabase(database.path, { mustExist: true }, (store) =>
        store.readAudit({ workflowId: options.workflow, actor: options.user, since: options.since, limit: queryLimit }),
      );
      if (options.json) io.stdout.write(`${JSON.stringify(entries)}\n`);
      else if (entries.length === 0) io.stdout.write(`No audit entries${describeQuery(options)} in ${database.path}.\n`);
      else io.stdout.write(formatAuditTable(entries));
      if (entries.length === queryLimit) {
        io.stderr.write(`keel: showing the oldest ${queryLimit} entries only; narrow the query with --workflow, --user or --since.\n`);
      }
    });
  audit.addCommand(verifyCommand(context));
  audit.addCommand(exportCommand(context));
  audit.addCommand(verifyExportCommand(context));
  return audit;
}

function verifyCommand(context: CommandContext): Command {
  return new Command('verify')
    .description('check every entry of the audit chain; exits 1 naming the first bad entry')
    .addOption(anchorOption())
    .option('--json', 'print the result as one JSON object')
    .addOption(databaseOption())
    .action(async (options: { json?: boolean; anchor?: AuditHead }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const anchors = options.anchor ? [options.anchor] : [];
      const result = await withDatabase(database.path, { mustExist: true }, (store) => verifyAuditChain(store.iterateAudit(), { anchors }));
      if (options.json) io.stdout.write(`${JSON.stringify({ database: database.path, ...result })}\n`);
      else io.stdout.write(result.ok ? describeIntact(result, `the audit log in ${database.path}`, database.flag) : describeBroken(result, `the audit log in ${database.path}`));
      context.exitWith(result.ok ? ExitCode.ok : ExitCode.auditBroken);
    });
}

function exportCommand(context: CommandContext): Command {
  return new Command('export')
    .description('write audit entries with their hashes as JSON Lines, to check them elsewhere (keel audit verify-export)')
    .addOption(new Option('--since <time>', 'start at the first entry at or after an ISO time or a duration ago (default: the whole log)').argParser((value) => parsePointInTime(value)))
    .addOption(new Option('--format <format>', 'the file format').choices(['jsonl']).default('jsonl'))
    .option('--out <file>', 'write to this file instead of standard output')
    .addOption(databaseOption())
    .action(async (options: { since?: number; out?: string }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const out = options.out === undefined ? undefined : resolve(io.cwd, options.out);
      const sink = out ? fileSink(out) : { write: (text: string) => io.stdout.write(text), close() {}, discard() {} };
      let exported;
      try {
        exported = await withDatabase(database.path, { mustExist: true }, (store) => exportAudit(store, { since: options.since, write: (text) => sink.write(text) }));
      } catch (error) {
        sink.close();
        sink.discard();
        throw error;
      }
      sink.close();
      const { header, verification } = exported;
      if (!verification.ok) {
        sink.discard();
        io.stderr.write(
          `keel: the export stopped: ${describeBroken(verification, `the audit log in ${database.path}`)}` +
            (out ? `No file was left at ${out}.\n` : 'What was written above is incomplete; do not use it.\n'),
        );
        context.exitWith(ExitCode.auditBroken);
        return;
      }
      if (out) {
        const range = header.count === 0 ? 'no entries' : `${header.count} entr${header.count === 1 ? 'y' : 'ies'} (${header.fromSeq}-${header.toSeq})`;
        io.stdout.write(`Exported ${range} to ${out}.\nCheck it anywhere with \`keel audit verify-export ${shellQuote(options.out!)}\` (or the script in docs/audit.md).\n`);
      }
    });
}

function verifyExportCommand(context: CommandContext): Command {
  return new Command('verify-export')
    .description('check an export written by keel audit export: every hash and link, and that nothing is missing')
    .argument('<file>', 'the JSON Lines file')
    .addOption(anchorOption())
    .option('--json', 'print the result as one JSON object')
    .action(async (file: string, options: { json?: boolean; anchor?: AuditHead }) => {
      const { io } = context;
      const path = resolve(io.cwd, file);
      if (!existsSync(path) || statSync(path).isDirectory()) {
        throw new KeelError('BAD_INPUT', `There is no export file at ${path}. Write one with \`keel audit export --out <file>\`, or check the path.`);
      }
      const result: ExportVerification = await verifyExport(path, { anchors: options.anchor ? [options.anchor] : [] });
      if (options.json) io.stdout.write(`${JSON.stringify({ file: path, ...result })}\n`);
      else io.stdout.write(result.ok ? describeIntact(result, `the export ${path}`, undefined) : describeBroken(result, `the export ${path}`));
      context.exitWith(result.ok ? ExitCode.ok : ExitCode.auditBroken);
    });
}

function anchorOption(): Option {
  return new Option('--anchor <seq:hash>', 'an entry recorded earlier (e.g. a past head): fail if it is gone or changed').argParser(parseAnchor);
}

export function parseAnchor(value: string): AuditHead {
  const match = /^(\d+):([0-9a-f]{64})$/.exec(value.trim());
  if (!match || !Number.isSafeInteger(Number(match[1])) || Number(match[1]) < 1) {
    throw new InvalidArgumentError(`Expected <seq>:<hash>, a sequence number and a 64-digit hex sha256 as \`keel audit verify\` prints them; got '${value}'.`);
  }
  return { seq: Number(match[1]), hash: match[2]! };
}

function describeIntact(result: AuditVerification, what: string, databaseFlag: string | undefined): string {
  if (!result.last) return `${capitalise(what)} holds no audit entries: nothing to verify.\n`;
  const first = result.last.seq - result.count + 1;
  const lines = [
    `Intact: ${what} holds ${result.count} entr${result.count === 1 ? 'y' : 'ies'} (${first}-${result.last.seq}), every hash and link checks out.`,
    `Head: entry ${result.last.seq}, hash ${result.last.hash}.`,
  ];
  if (databaseFlag !== undefined) {
    lines.push(
      'Keep the head somewhere else (a ticket, a log, another system): a hash chain alone cannot show entries cut off its end, or a chain rewritten whole.',
      `\`keel audit verify --anchor ${result.last.seq}:${result.last.hash}${databaseFlag}\` later checks that they were not.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function describeBroken(result: AuditVerification, what: string): string {
  const bad = result.firstBad!;
  const where = [bad.kind, bad.workflowId && `workflow ${bad.workflowId}`, bad.step !== null && `step ${bad.step}`].filter(Boolean).join(', ');
  const verified = result.last ? `Entries ${result.last.seq - result.count + 1}-${result.last.seq} before it verified.` : 'No entry before it verified.';
  return (
    `Broken: ${what} fails at entry ${bad.seq}${where ? ` (${where})` : ''}: ${bad.reason}: ${bad.detail}.\n` +
    `${verified}\n` +
    `What to do: treat entry ${bad.seq} and everything after it as untrusted. Compare them with a backup or an earlier export ` +
    `(keel audit export), find who could write to this file, and restore the log from a copy you trust. Keel does not repair an audit log: it is evidence.\n`
  );
}

export function formatAuditTable(entries: readonly AuditEntry[]): string {
  return formatTable(
    ['SEQ', 'TIME', 'ACTOR', 'KIND', 'WORKFLOW', 'STEP', 'SUBJECT', 'OUTCOME'],
    entries.map((entry) => [
      String(entry.seq),
      formatTimestamp(entry.at),
      entry.actor,
      entry.kind,
      entry.workflowId ?? '-',
      entry.step === null ? '-' : String(entry.step),
      entry.subject ?? '-',
      entry.outcome ?? '-',
    ]),
  );
}

function describeQuery(options: QueryOptions): string {
  const parts = [
    options.workflow && ` of workflow ${options.workflow}`,
    options.user && ` by ${options.user}`,
    options.since !== undefined && ` since ${formatTimestamp(options.since)}`,
  ];
  return parts.filter(Boolean).join('');
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Writes an export file with plain synchronous writes: bounded memory for any size of log. */
function fileSink(path: string): { write(text: string): void; close(): void; discard(): void } {
  let descriptor: number | undefined;
  try {
    descriptor = openSync(path, 'w');
  } catch (error) {
    throw new KeelError('BAD_INPUT', `Cannot write the export to ${path}: ${(error as Error).message}. Choose another --out path.`, { cause: error });
  }
  return {
    write: (text) => void writeSync(descriptor!, text),
    close: () => {
      if (descriptor !== undefined) closeSync(descriptor);
      descriptor = undefined;
    },
    discard: () => rmSync(path, { force: true }),
  };
}
