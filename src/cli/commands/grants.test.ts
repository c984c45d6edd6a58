// keel grants, keel principals and keel permissions review, in-process, and what they do to
// `keel run` on a database that holds grants: permissions are then enforced, a missing grant fails
// the claim with the command that fixes it, granting and resuming finishes it, a KEEL_POLICIES
// file adds hard limits, and the review reports unused and expiring grants, denials and rights.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { useCliWorkspace } from '../../../test/support/cli-harness.js';
import { repositoryFilePath } from '../package-files.js';

const cli = useCliWorkspace();
const cleanClaim = repositoryFilePath('examples/expense-approval/claims/clean-claim.json')!;
const expensePermissions = ['claims:read', 'payments:read', 'payments:write', 'reports:write', 'claims:reject'];

async function grant(user: string, permission: string, ...more: string[]): Promise<string> {
  const result = await cli.run(['grants', 'add', '--user', user, '--permission', permission, ...more, '--by', 'ops', '--json', '--db', cli.db]);
  expect(result.code, result.err).toBe(0);
  return JSON.parse(result.out).id as string;
}

describe('keel grants', () => {
  it('adds, lists and revokes grants, each change in the audit log', async () => {
    const added = await cli.run(['grants', 'add', '--user', 'alice', '--permission', 'payments:write', '--task', 'expense-approval', '--resource', 'payee:DE89*', '--resource', 'claim:*', '--expires', '30d', '--by', 'ops', '--db', cli.db]);
    expect(added.code, added.err).toBe(0);
    const id = /as (gr_\w+):/.exec(added.out)![1]!;
    expect(added.out).toMatch(new RegExp(`^Granted 'payments:write' to alice as ${id}: task type expense-approval; resources 'payee:DE89\\*', 'claim:\\*'; until \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\.\\n`));

    const listed = await cli.run(['grants', 'list', '--db', cli.db]);
    expect(listed.out).toMatch(new RegExp(`${id} +alice +payments:write +expense-approval +payee:DE89\\*,claim:\\* +\\d{4}-.* +live +never +ops`));

    const revoked = await cli.run(['grants', 'revoke', id, '--by', 'security', '--reason', 'left the team', '--db', cli.db]);
    expect(revoked.out).toBe(`Revoked ${id} ('payments:write' of alice). Audited as grant.revoked by security.\n`);
    expect((await cli.run(['grants', 'list', '--db', cli.db])).out).toContain('No unrevoked grants in ');
    const all = JSON.parse((await cli.run(['grants', 'list', '--all', '--json', '--db', cli.db])).out);
    expect(all).toMatchObject([{ id, state: 'revoked', revokedBy: 'security' }]);
    const audit = JSON.parse((await cli.run(['audit', '--json', '--db', cli.db])).out) as { kind: string; actor: string; subject: string }[];
    expect(audit.map((entry) => [entry.kind, entry.actor, entry.subject])).toEqual([
      ['grant.added', 'ops', id],
      ['grant.revoked', 'security', id],
    ]);
    expect((await cli.run(['audit', 'verify', '--db', cli.db])).code).toBe(0);
  });

  it('refuses a bad grant, an unknown grant and a missing --by with exit 2 and a message', async () => {
    const badName = await cli.run(['grants', 'add', '--user', 'alice', '--permission', 'payments write', '--by', 'ops', '--db', cli.db]);
    expect(badName.code).toBe(2);
    expect(badName.err).toContain(`'payments write' is not a permission name`);
    const badTime = await cli.run(['grants', 'add', '--user', 'alice', '--permission', 'payments:write', '--expires', 'tomorrow', '--by', 'ops', '--db', cli.db]);
    expect(badTime.code).toBe(2);
    expect(badTime.err).toContain('a duration from now such as 8h, 30d or 2w');
    const noBy = await cli.run(['grants', 'add', '--user', 'alice', '--permission', 'payments:write', '--db', cli.db]);
    expect(noBy.code).toBe(2);
    expect(noBy.err).toContain("required option '--by <operator>' not specified");
    await grant('alice', 'claims:read');
    const unknown = await cli.run(['grants', 'revoke', 'gr_nope', '--by', 'ops', '--db', cli.db]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("No grant with id 'gr_nope' in this database.");
  });
});

describe('keel run on a database with grants', () => {
  it("fails a claim its user lacks a grant for, naming the fix; after the grant, resuming finishes it", async () => {
    for (const permission of expensePermissions.filter((name) => name !== 'payments:write')) await grant('alice', permission, '--task', 'expense-approval');

    const denied = await cli.run(['run', 'expense-approval', '--input', cleanClaim, '--user', 'alice', '--db', cli.db]);

    expect(denied.code).toBe(1);
    const id = /Workflow (wf_\w+)/.exec(denied.out)![1]!;
    expect(denied.out).toContain("Permission denied: tool 'pay_claim'");
    expect(denied.out).toContain("'alice' holds no grant of 'payments:write'");
    expect(denied.out).toContain('keel grants add --user alice --permission payments:write --task expense-approval --by <operator>');

    await grant('alice', 'payments:write', '--task', 'expense-approval', '--resource', 'payee:DE89*', '--resource', 'claim:*');
    const resumed = await cli.run(['resume', id, '--by', 'ops-lead', '--json', '--db', cli.db]);

    expect(resumed.code, resumed.err).toBe(0);
    expect(JSON.parse(resumed.out)).toMatchObject({ status: 'completed', outcome: 'paid' });
    const audit = JSON.parse((await cli.run(['audit', '--workflow', id, '--json', '--db', cli.db])).out) as { kind: string; actor: string; subject: string; outcome: string }[];
    expect(audit.filter((entry) => entry.kind === 'permission.decided' && entry.subject === 'pay_claim').map((entry) => entry.outcome)).toEqual(['deny', 'permit']);
    expect(audit.find((entry) => entry.kind === 'workflow.resumed')).toMatchObject({ actor: 'ops-lead' });
  });

  it("runs with the user's recorded roles and department, which policies in KEEL_POLICIES can test", async () => {
    for (const permission of expensePermissions) await grant('alice', permission);
    const recorded = await cli.run(['principals', 'add', 'alice', '--role', 'clerk', '--department', 'sales', '--by', 'hr', '--db', cli.db]);
    expect(recorded.out).toBe('Recorded alice: roles clerk; department sales. Audited as principal.saved by hr.\n');
    const policies = join(cli.dir, 'policies.cedar');
    writeFileSync(policies, `@id("payments-from-finance") forbid (principal, action == Keel::Action::"payments:write", resource) unless { principal has department && principal.department == "finance" };\n`);
    vi.stubEnv('KEEL_POLICIES', policies);

    const denied = await cli.run(['run', 'expense-approval', '--input', cleanClaim, '--user', 'alice', '--json', '--db', cli.db]);

    expect(denied.code).toBe(1);
    const workflow = JSON.parse(denied.out);
    expect(workflow.failure.message).toContain("operator policy 'payments-from-finance' forbids it");
    const inspected = JSON.parse((await cli.run(['inspect', workflow.id, '--json', '--db', cli.db])).out);
    expect(inspected.principal).toEqual({ id: 'alice', roles: ['clerk'], department: 'sales' });

    await cli.run(['principals', 'add', 'alice', '--role', 'clerk', '--department', 'finance', '--by', 'hr', '--db', cli.db]);
    const paid = await cli.run(['run', 'expense-approval', '--input', cleanClaim, '--user', 'alice', '--json', '--db', cli.db]);
    expect(JSON.parse(paid.out)).toMatchObject({ status: 'completed', outcome: 'paid' });
    expect(JSON.parse((await cli.run(['principals', 'list', '--json', '--db', cli.db])).out)).toEqual([{ id: 'alice', roles: ['clerk'], department: 'finance' }]);
  });

  it('refuses a KEEL_POLICIES file it cannot use, and KEEL_PERMISSIONS values it does not know, before running anything', async () => {
    const policies = join(cli.dir, 'policies.cedar');
    writeFileSync(policies, '@id("all") permit (principal, action, resource);\n');
    vi.stubEnv('KEEL_POLICIES', policies);
    const permit = await cli.run(['run', 'expense-approval', '--input', cleanClaim, '--db', cli.db]);
    expect(permit.code).toBe(2);
    expect(permit.err).toContain(`Keel cannot use the policy file ${policies}:`);
    expect(permit.err).toContain('is a permit policy; operator policies may only forbid');
    vi.stubEnv('KEEL_POLICIES', undefined);
    vi.stubEnv('KEEL_PERMISSIONS', 'strict');
    const unknown = await cli.run(['run', 'expense-approval', '--input', cleanClaim, '--db', cli.db]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("KEEL_PERMISSIONS is 'strict'; use 'enforce'");
  });
});

describe('keel permissions review', () => {
  it('reports unused and expiring grants, denials by user and permission, and the broadest rights', async () => {
    for (const permission of expensePermissions) await grant('alice', permission, '--task', 'expense-approval');
    const unused = await grant('bob', 'payments:write', '--expires', '2d');
    await grant('carol', 'claims:read');
    await cli.run(['run', 'expense-approval', '--input', cleanClaim, '--user', 'alice', '--db', cli.db]);
    await cli.run(['run', 'expense-approval', '--input', cleanClaim, '--user', 'carol', '--db', cli.db]);

    const review = JSON.parse((await cli.run(['permissions', 'review', '--json', '--db', cli.db])).out);

    // alice's clean claim never needed claims:reject; bob never ran anything.
    expect(review.unusedGrants.map((entry: { principal: string; permission: string }) => `${entry.principal} ${entry.permission}`).sort()).toEqual(['alice claims:reject', 'bob payments:write']);
    expect(review.expiringGrants).toMatchObject([{ id: unused, principal: 'bob', permission: 'payments:write' }]);
    expect(review.denials).toEqual([{ principal: 'carol', permission: 'payments:read', count: 1, codes: { 'no-grant': 1 }, lastAt: expect.any(Number) }]);
    expect(review.broadestRights[0]).toMatchObject({ principal: 'alice', mostPermissions: 5, workflows: 1, agents: ['expense-approval'] });
    expect(review.broadestRights[1]).toMatchObject({ principal: 'carol', mostPermissions: 1, permissions: ['claims:read'] });
    expect(review.decisions.deny).toBe(1);

    const text = (await cli.run(['permissions', 'review', '--unused-days', '7', '--db', cli.db])).out;
    expect(text).toMatch(/^Permission review, .*: 7 live grants; in the last 7 days \d+ calls permitted, 1 denied\.\n/);
    expect(text).toMatch(new RegExp(`Grants not used in the last 7 days .*:\\n  GRANT +USER .*\\n(  .*\\n)*  ${unused} +bob +payments:write +any task type; any resource; until `));
    expect(text).toMatch(/Denials in the last 7 days, by user and permission:\n  USER .*\n  carol +payments:read +1 +no-grant 1 /);
  });
});
