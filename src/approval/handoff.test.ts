// The escalate_to_human action: the agent hands the task to a person, the workflow waits with its
// context; the person finishes it, or sends it back with instructions the decider then follows.

import { describe, expect, it } from 'vitest';
import { caseWorker } from '../../test/support/case-worker.js';
import { createKeel } from '../agent/keel.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';

function handoffKeel() {
  const closed: string[] = [];
  return { keel: createKeel({ store: openSqliteStore({ path: ':memory:' }), agents: [caseWorker(closed)] }), closed };
}

describe('escalate_to_human', () => {
  it('parks the workflow for a person, who sends it back with instructions the agent follows', async () => {
    const { keel, closed } = handoffKeel();
    const parked = await keel.startAndRun('case-worker', {});
    expect(parked).toMatchObject({ status: 'waiting', waitingFor: 'handoff', failure: { code: 'HUMAN_HANDOFF' } });
    expect(parked.failure!.message).toContain('the customer disputes the contract terms (so far: read the contract)');
    expect(closed).toEqual([]);
    await keel.handBack(parked.id, { by: 'agent-supervisor', instructions: 'offer the standard refund' });
    expect(await keel.run(parked.id)).toMatchObject({ status: 'completed' });
    expect(closed).toEqual(['as instructed: offer the standard refund']);
    await keel.close();
  });

  it('lets a person finish the task, and refuses to answer a workflow that was not handed off', async () => {
    const { keel } = handoffKeel();
    const parked = await keel.startAndRun('case-worker', {});
    expect(await keel.completeHandoff(parked.id, { by: 'agent-supervisor', outcome: 'settled-by-phone' })).toMatchObject({ status: 'completed', outcome: 'settled-by-phone' });
    const audit = await keel.store.readAudit({ workflowId: parked.id });
    expect(audit.at(-1)).toMatchObject({ kind: 'workflow.completed', actor: 'agent-supervisor' });
    await expect(keel.handBack(parked.id, { by: 'x', instructions: 'y' })).rejects.toMatchObject({ code: 'WORKFLOW_NOT_RESUMABLE' });
    await keel.close();
  });
});
