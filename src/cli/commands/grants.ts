// keel grants: who may do what (docs/security.md). `add` gives a principal a permission, narrowed
// to task types (agents), resource patterns and an expiry; `revoke` takes a grant back (it stays
// stored, marked revoked); `list` shows them. Every change is audited with the operator named by
// --by, in the transaction that makes it.

import { Command, Option } from 'commander';
import { addGrant, grantState, revokeGrant } from '../../security/grants.js';
import type { Grant } from '../../store/types.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTable } from '../format/table.js';
import { formatTimestamp } from '../format/time.js';
import { databaseChoice, databaseOption, parseFutureTime, shellQuote } from '../options.js';

interface AddOptions {
  user: string;
  permission: string;
  task: string[];
  resource: string[];
  expires?: number;
  by: string;
  json?: boolean;
}

export function grantsCommand(context: CommandContext): Command {
  const grants = new Command('grants').description('give, take back and list permissions (docs/security.md)');
  grants.addCommand(addCommand(context));
  grants.addCommand(revokeCommand(context));
  grants.addCommand(listCommand(context));
  return grants;
}

function addCommand(context: CommandContext): Command {
  return new Command('add')
    .description('give a user a permission, optionally for some task types, resources and time only')
    .requiredOption('--user <id>', 'the principal (user id) it is given to')
    .requiredOption('--permission <name>', 'the permission, e.g. payments:write')
    .option('--task <agent>', 'only for workflows of this agent (repeat for several; default: any)', collect, [])
    .option('--resource <pattern>', "only on resources matching this pattern, '*' as wildcard, e.g. 'payee:DE89*' (repeat for several; default: any)", collect, [])
    .addOption(new Option('--expires <time>', 'when it ends: an ISO time or a duration from now (8h, 30d)').argParser((value) => parseFutureTime(value)))
    .requiredOption('--by <operator>', 'who gives it (recorded in the audit log)')
    .option('--json', 'print the grant as one JSON object')
    .addOption(databaseOption())
    .action(async (options: AddOptions, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const grant = await withDatabase(database.path, { mustExist: false }, (store) =>
        addGrant(store, { principalId: options.user, permission: options.permission, taskTypes: options.task, resources: options.resource, expiresAt: options.expires, by: options.by }, Date.now()),
      );
      if (options.json) {
        io.stdout.write(`${JSON.stringify(grant)}\n`);
        return;
      }
      io.stdout.write(
        `Granted '${grant.permission}' to ${grant.principalId} as ${grant.id}: ${describeScope(grant)}.\n` +
          `Audited as grant.added by ${grant.createdBy}. Take it back with \`keel grants revoke ${grant.id} --by <operator>${database.flag}\`.\n`,
      );
    });
}

function revokeCommand(context: CommandContext): Command {
  return new Command('revoke')
    .description('take a grant back: the next tool call that needed it is denied, also in running workflows')
    .argument('<grant-id>', 'the grant (see keel grants list)')
    .requiredOption('--by <operator>', 'who revokes it (recorded in the audit log)')
    .option('--reason <text>', 'why (recorded in the audit log)')
    .addOption(databaseOption())
    .action(async (id: string, options: { by: string; reason?: string }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const grant = await withDatabase(database.path, { mustExist: true }, (store) => revokeGrant(store, id, { by: options.by, reason: options.reason }));
      io.stdout.write(`Revoked ${grant.id} ('${grant.permission}' of ${grant.principalId}). Audited as grant.revoked by ${grant.revokedBy}.\n`);
    });
}

function listCommand(context: CommandContext): Command {
  return new Command('list')
    .description('list grants: live and expired ones, with --all revoked ones too')
    .option('--user <id>', "only this principal's grants")
    .option('--all', 'include revoked grants')
    .option('--json', 'print a JSON array of grants')
    .addOption(databaseOption())
    .action(async (options: { user?: string; all?: boolean; json?: boolean }, command: Command) => {
      const { io } = context;
      const database = databaseChoice(command, io.cwd);
      const grants = await withDatabase(database.path, { mustExist: true }, (store) => store.listGrants({ principalId: options.user, includeRevoked: options.all === true }));
      const now = Date.now();
      if (options.json) {
        io.stdout.write(`${JSON.stringify(grants.map((grant) => ({ ...grant, state: grantState(grant, now) })))}\n`);
        return;
      }
      if (grants.length === 0) {
        io.stdout.write(
          `No ${options.all ? '' : 'unrevoked '}grants${options.user ? ` of ${options.user}` : ''} in ${database.path}. ` +
            `Give one with \`keel grants add --user <id> --permission <name> --by <operator>${database.flag}\`.\n`,
        );
        return;
      }
      io.stdout.write(
        formatTable(
          ['ID', 'USER', 'PERMISSION', 'TASKS', 'RESOURCES', 'EXPIRES', 'STATE', 'LAST USED', 'GIVEN BY'],
          grants.map((grant) => [
            grant.id,
            grant.principalId,
            grant.permission,
            grant.taskTypes?.join(',') ?? 'any',
            grant.resources?.join(',') ?? 'any',
            grant.expiresAt === null ? 'never' : formatTimestamp(grant.expiresAt),
            grantState(grant, now) + (grant.revokedBy ? ` by ${grant.revokedBy}` : ''),
            grant.lastUsedAt === null ? 'never' : formatTimestamp(grant.lastUsedAt),
            grant.createdBy,
          ]),
        ),
      );
    });
}

export function describeScope(grant: Pick<Grant, 'taskTypes' | 'resources' | 'expiresAt'>): string {
  return [
    grant.taskTypes ? `task type${grant.taskTypes.length === 1 ? '' : 's'} ${grant.taskTypes.join(', ')}` : 'any task type',
    grant.resources ? `resources ${grant.resources.map((pattern) => shellQuote(pattern)).join(', ')}` : 'any resource',
    grant.expiresAt === null ? 'no expiry' : `until ${formatTimestamp(grant.expiresAt)}`,
  ].join('; ');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
