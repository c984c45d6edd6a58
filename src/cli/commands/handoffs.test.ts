// keel handoffs list / back / finish, in-process, on a database where case workers handed their
// tasks to a person: listing them with what the agent said, sending one back (the agent follows
// the instructions once a worker takes it up), finishing one, and the clear refusals.

import { describe, expect, it } from 'vitest';
import { caseWorker } from '../../../test/support/case-worker.js';
import { useCliWorkspace } from '../../../test/support/cli-harness.js';
import { createKeel } from '../../agent/keel.js';
import { openSqliteStore } from '../../store/sqlite/sqlite-store.js';

const cli = useCliWorkspace();

async function handedOff(cases: string[]): Promise<string[]> {
  const keel = createKeel({ store: openSqliteStore({ path: cli.db }), agents: [caseWorker([])] });
  try {
    const ids = [];
    for (const name of cases) ids.push((await keel.startAndRun('case-worker', { case: name }, { principal: { id: 'dana' } })).id);
    return ids;
  } finally {
    await keel.close();
  }
}

describe('keel handoffs', () => {
  it('lists the handed-off tasks with what the agent said; one sent back is finished by the agent as instructed, one finished by the person completes', async () => {
    const [first, second] = await handedOff(['A-1', 'A-2']);

    const listed = await cli.run(['handoffs', 'list', '--db', cli.db]);
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out).toMatch(new RegExp(`${first} +case-worker +dana +\\S.*case A-1 disputes the contract terms`));
    expect(listed.out).toContain(`keel handoffs back ${first} --by <you> --instructions <text>`);
    expect(listed.out).toContain('Send one back with `keel handoffs back <workflow> --by <you> --instructions <text> --db');

    const back = await cli.run(['handoffs', 'back', first!, '--by', 'supervisor', '--instructions', 'offer the standard refund', '--db', cli.db]);
    expect(back.code, back.err).toBe(0);
    expect(back.out).toContain(`Sent workflow ${first} back to agent 'case-worker'`);
    const finished = await cli.run(['handoffs', 'finish', second!, '--by', 'supervisor', '--outcome', 'settled-by-phone', '--note', 'called the customer', '--db', cli.db]);
    expect(finished.code, finished.err).toBe(0);
    expect(finished.out).toContain(`Workflow ${second} completed with outcome 'settled-by-phone', finished by supervisor.`);
    expect(JSON.parse((await cli.run(['handoffs', 'list', '--json', '--db', cli.db])).out)).toEqual([]);

    const closed: string[] = [];
    const keel = createKeel({ store: openSqliteStore({ path: cli.db }), agents: [caseWorker(closed)] });
    try {
      expect(await keel.run(first!)).toMatchObject({ status: 'completed' });
      expect(closed).toEqual(['as instructed: offer the standard refund']);
      const audit = await keel.store.readAudit({ workflowId: second! });
      expect(audit.at(-1)).toMatchObject({ kind: 'workflow.completed', actor: 'supervisor', subject: 'settled-by-phone' });
    } finally {
      await keel.close();
    }
  });

  it('refuses a workflow that is not waiting for a person, and an unknown one, with exit code 2', async () => {
    const [first] = await handedOff(['B-1']);
    expect((await cli.run(['handoffs', 'finish', first!, '--by', 'supervisor', '--outcome', 'done', '--db', cli.db])).code).toBe(0);

    const again = await cli.run(['handoffs', 'back', first!, '--by', 'supervisor', '--instructions', 'retry', '--db', cli.db]);
    expect(again.code).toBe(2);
    expect(again.err).toContain(`Workflow ${first} is completed, not handed to a person; there is no handoff to answer.`);
    const unknown = await cli.run(['handoffs', 'finish', 'wf_nope', '--by', 'supervisor', '--outcome', 'done', '--db', cli.db]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('wf_nope');
    const missing = await cli.run(['handoffs', 'back', first!, '--by', 'supervisor', '--db', cli.db]);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain("required option '--instructions <text>' not specified");
  });
});
