// keel permissions review: the permission review from the grants and the audit log. Grants not
// used for N days are candidates to revoke; grants about to expire need renewing or letting go;
// denials show who is missing what (or what is being tried); the broadest rights show whose
// workflows start with the most.

import { Command, Option } from 'commander';
import { reviewPermissions, type PermissionReview } from '../../security/review.js';
import type { CommandContext } from '../command-context.js';
import { withDatabase } from '../database.js';
import { formatTable } from '../format/table.js';
import { formatTimestamp } from '../format/time.js';
import { databaseChoice, databaseOption, positiveInteger } from '../options.js';
import { describeScope } from './grants.js';

export function permissionsCommand(context: CommandContext): Command {
  const permissions = new Command('permissions').description('review permissions from the grants and the audit log');
  permissions.addCommand(
    new Command('review')
      .description('grants unused for N days, grants expiring soon, denials by user and permission, the broadest rights')
      .addOption(new Option('--unused-days <n>', 'report grants not used for this many days; count denials and starts over them').argParser(positiveInteger).default(30))
      .addOption(new Option('--expiring-days <n>', 'report grants expiring within this many days').argParser(positiveInteger).default(7))
      .option('--json', 'print the review as one JSON object')
      .addOption(databaseOption())
      .action(async (options: { unusedDays: number; expiringDays: number; json?: boolean }, command: Command) => {
        const { io } = context;
        const database = databaseChoice(command, io.cwd);
        const review = await withDatabase(database.path, { mustExist: true }, (store) =>
          reviewPermissions(store, { now: Date.now(), unusedDays: options.unusedDays, expiringDays: options.expiringDays }),
        );
        io.stdout.write(options.json ? `${JSON.stringify(review)}\n` : formatReview(review, database.flag));
      }),
  );
  return permissions;
}

export function formatReview(review: PermissionReview, databaseFlag: string): string {
  const sections = [
    `Permission review, ${formatTimestamp(review.generatedAt)}: ${review.liveGrants} live grant${review.liveGrants === 1 ? '' : 's'}; ` +
      `in the last ${review.unusedDays} days ${review.decisions.permit} call${review.decisions.permit === 1 ? '' : 's'} permitted, ${review.decisions.deny} denied.\n`,
  ];
  sections.push(
    section(
      `Grants not used in the last ${review.unusedDays} days (revoke what is not needed: keel grants revoke <id> --by <operator>${databaseFlag})`,
      ['GRANT', 'USER', 'PERMISSION', 'SCOPE', 'LAST USED', 'GIVEN'],
      review.unusedGrants.map((grant) => [grant.id, grant.principal, grant.permission, describeScope({ ...grant }), grant.lastUsedAt === null ? 'never' : formatTimestamp(grant.lastUsedAt), formatTimestamp(grant.createdAt)]),
    ),
    section(
      `Grants expiring within ${review.expiringDays} days`,
      ['GRANT', 'USER', 'PERMISSION', 'EXPIRES'],
      review.expiringGrants.map((grant) => [grant.id, grant.principal, grant.permission, formatTimestamp(grant.expiresAt)]),
    ),
    section(
      `Denials in the last ${review.unusedDays} days, by user and permission`,
      ['USER', 'PERMISSION', 'DENIALS', 'WHY', 'LAST'],
      review.denials.map((denial) => [
        denial.principal,
        denial.permission,
        String(denial.count),
        Object.entries(denial.codes)
          .map(([code, count]) => `${code} ${count}`)
          .join(', '),
        formatTimestamp(denial.lastAt),
      ]),
    ),
    section(
      `Broadest rights: users whose workflows started with the most permissions in the last ${review.unusedDays} days`,
      ['USER', 'MOST AT ONCE', 'PERMISSIONS (ALL STARTS)', 'WORKFLOWS', 'AGENTS'],
      review.broadestRights.map((rights) => [rights.principal, String(rights.mostPermissions), rights.permissions.join(', '), String(rights.workflows), rights.agents.join(', ')]),
    ),
  );
  return sections.join('\n');
}

function section(title: string, headers: string[], rows: string[][]): string {
  const table = rows.length === 0 ? 'none\n' : formatTable(headers, rows);
  return `${title}:\n${table.split('\n').map((line) => (line ? `  ${line}` : line)).join('\n')}`;
}
