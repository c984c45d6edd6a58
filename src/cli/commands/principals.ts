// keel principals: the records of the people workflows act for: their roles and department, which
// operator policies can test (principal.roles, principal.department) and which count as a trusted
// source for provenance. `keel run --user <id>` uses the record when there is one. Every change is
// audited (principal.saved).

import { Command } from 'commander';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTable } from '../format/table.js';
import { databaseChoice, databaseOption } from '../options.js';

export function principalsCommand(context: CommandContext): Command {
  const principals = new Command('principals').description('record the roles and department of the users workflows act for');
  principals.addCommand(
    new Command('add')
      .description("create or replace a user's record")
      .argument('<id>', 'the user id (as in keel run --user)')
      .option('--role <role>', 'a role (repeat for several)', (value: string, previous: string[]) => [...previous, value], [])
      .option('--department <name>', 'the department')
      .requiredOption('--by <operator>', 'who records it (recorded in the audit log)')
      .addOption(databaseOption())
      .action(async (id: string, options: { role: string[]; department?: string; by: string }, command: Command) => {
        const { io } = context;
        const database = databaseChoice(command, io.cwd);
        const saved = await withDatabase(database.path, { mustExist: false }, (store) => store.savePrincipal({ id, roles: options.role, department: options.department }, options.by));
        io.stdout.write(`Recorded ${saved.id}: roles ${saved.roles?.join(', ') || 'none'}; department ${saved.department ?? 'none'}. Audited as principal.saved by ${options.by}.\n`);
      }),
  );
  principals.addCommand(
    new Command('list')
      .description('list the recorded users')
      .option('--json', 'print a JSON array')
      .addOption(databaseOption())
      .action(async (options: { json?: boolean }, command: Command) => {
        const { io } = context;
        const database = databaseChoice(command, io.cwd);
        const principals = await withDatabase(database.path, { mustExist: true }, (store) => store.listPrincipals());
        if (options.json) io.stdout.write(`${JSON.stringify(principals)}\n`);
        else if (principals.length === 0) io.stdout.write(`No users recorded in ${database.path}. Record one with \`keel principals add <id> --role <role> --by <operator>\`.\n`);
        else io.stdout.write(formatTable(['ID', 'ROLES', 'DEPARTMENT'], principals.map((principal) => [principal.id, principal.roles?.join(',') || '-', principal.department ?? '-'])));
      }),
  );
  return principals;
}
