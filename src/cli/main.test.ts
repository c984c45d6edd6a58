// The keel program as a whole: usage errors go through commander with exit code 2, --version
// prints the package version, and a database path that is not a usable Keel database is refused
// with exit 2 by reading and writing commands alike, leaving the file exactly as it was.

import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { useCliWorkspace } from '../../test/support/cli-harness.js';
import { repositoryFilePath } from './package-files.js';

const cli = useCliWorkspace();

describe('usage', () => {
  it('prints the package version', async () => {
    const packageJson = JSON.parse(readFileSync(repositoryFilePath('package.json')!, 'utf8'));
    const result = await cli.run(['--version']);
    expect(result).toEqual({ code: 0, out: `${packageJson.version}\n`, err: '' });
  });

  it('lists the commands in --help', async () => {
    const result = await cli.run(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['demo', 'run', 'list', 'inspect', 'resume', 'worker', 'prune']) expect(result.out).toMatch(new RegExp(`\\n  ${command} `));
  });

  it('exits 2 with commander\'s message for an unknown command, option or missing argument', async () => {
    const unknownCommand = await cli.run(['lsit']);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.err).toContain("error: unknown command 'lsit'");
    expect(unknownCommand.err).toContain('(Did you mean list?)');

    const unknownOption = await cli.run(['list', '--colour']);
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.err).toContain("error: unknown option '--colour'");

    const missingArgument = await cli.run(['inspect']);
    expect(missingArgument.code).toBe(2);
    expect(missingArgument.err).toContain("error: missing required argument 'id'");

    const badNumber = await cli.run(['demo', '--claims', 'many']);
    expect(badNumber.code).toBe(2);
    expect(badNumber.err).toContain("error: option '--claims <n>' argument 'many' is invalid. Expected a whole number of at least 1, got 'many'.");
  });

  it('exits 2 and shows the commands when none is given', async () => {
    const result = await cli.run([]);
    expect(result.code).toBe(2);
    expect(result.err).toContain('Usage: keel [options] [command]');
  });
});

describe('unusable databases', () => {
  const readingCommands = [['list'], ['inspect', 'wf_1'], ['resume', 'wf_1'], ['prune', '--completed-before', '1d'], ['worker', '--once']];

  it('refuses a path where no database exists, without creating one', async () => {
    for (const command of readingCommands) {
      const result = await cli.run([...command, '--db', cli.db]);
      expect(result.code, command.join(' ')).toBe(2);
      expect(result.err).toContain(`There is no Keel database at ${cli.db}.`);
    }
    expect(existsSync(cli.db)).toBe(false);
  });

  it('refuses a folder', async () => {
    const folder = join(cli.dir, 'data');
    mkdirSync(folder);
    for (const command of [...readingCommands, ['run', 'expense-approval', '--input', '-'], ['demo', '--claims', '1']]) {
      const result = await cli.run([...command, '--db', folder], { stdin: '{"claimId":"C-1","document":"x"}' });
      expect(result.code, command.join(' ')).toBe(2);
      expect(result.err).toContain(`${folder} is a folder, not a database file. Point --db (or KEEL_DB) at a file inside it, e.g. ${join(folder, 'keel.db')}.`);
    }
  });

  it('refuses a file that is not a database and leaves it byte for byte', async () => {
    const notes = join(cli.dir, 'notes.db');
    writeFileSync(notes, 'these are my notes, not a database\n'.repeat(200));
    const before = readFileSync(notes);
    for (const command of [...readingCommands, ['run', 'expense-approval', '--input', '-'], ['demo', '--claims', '1']]) {
      const result = await cli.run([...command, '--db', notes], { stdin: '{"claimId":"C-1","document":"x"}' });
      expect(result.code, command.join(' ')).toBe(2);
      expect(result.err).toContain(`The file ${notes} is not a usable SQLite database`);
      expect(result.err).toContain('The file was not changed.');
    }
    expect(readFileSync(notes).equals(before)).toBe(true);
    expect(existsSync(`${notes}-wal`)).toBe(false);
  });

  it('refuses a database written by a newer Keel and leaves it byte for byte', async () => {
    const newer = new Database(cli.db);
    newer.exec('CREATE TABLE workflows (id TEXT PRIMARY KEY)');
    newer.pragma('user_version = 99');
    newer.close();
    const before = readFileSync(cli.db);
    for (const command of [...readingCommands, ['run', 'expense-approval', '--input', '-']]) {
      const result = await cli.run([...command, '--db', cli.db], { stdin: '{"claimId":"C-1","document":"x"}' });
      expect(result.code, command.join(' ')).toBe(2);
      expect(result.err).toContain(`The database ${cli.db} was written by a newer Keel (schema version 99;`);
    }
    expect(readFileSync(cli.db).equals(before)).toBe(true);
  });

  it('takes the database from KEEL_DB when --db is not given', async () => {
    vi.stubEnv('KEEL_DB', join(cli.dir, 'from-env.db'));
    const result = await cli.run(['list']);
    expect(result.code).toBe(2);
    expect(result.err).toContain(`There is no Keel database at ${join(cli.dir, 'from-env.db')}.`);
  });
});
