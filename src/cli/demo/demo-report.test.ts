// The demo's verdict: a claim that ended otherwise than its sample expects, a failed workflow,
// or a ledger that does not hold exactly one payment per paid claim makes the demo fail loudly.

import { describe, expect, it } from 'vitest';
import type { WorkflowRecord } from '../../store/types.js';
import { demoReport, verdictOf, type DemoResult, type SampleClaimLike } from './demo-report.js';

function sample(claimId: string, kind: string, expected: 'paid' | 'rejected'): SampleClaimLike {
  return { input: { claimId, document: '...' }, kind, expected };
}

function workflow(id: string, patch: Partial<WorkflowRecord>): WorkflowRecord {
  return {
    id,
    agent: 'expense-approval',
    agentVersion: '1#abc',
    agentModule: 'builtin:expense-approval',
    principal: { id: 'keel-demo' },
    input: {},
    status: 'completed',
    state: 'paid',
    step: 4,
    waitingFor: null,
    outcome: 'paid',
    failure: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    wakeAt: null,
    recoveries: 0,
    contextBytes: 0,
    createdAt: 0,
    updatedAt: 0,
    prunedAt: null,
    ...patch,
  };
}

const paidClean: DemoResult = { sample: sample('C-1', 'clean', 'paid'), workflow: workflow('wf_1', {}) };
const rejectedMalformed: DemoResult = {
  sample: sample('C-2', 'malformed', 'rejected'),
  workflow: workflow('wf_2', { state: 'rejected', outcome: 'rejected', step: 2 }),
};

function report(results: DemoResult[], payments: { claimId: string }[]) {
  return demoReport({ results, payments, elapsedMs: 1234, model: 'model: scripted', databaseFlag: ' --db demo.db' });
}

describe('verdictOf', () => {
  it('accepts only a completed workflow with the expected outcome', () => {
    expect(verdictOf(paidClean.sample, paidClean.workflow)).toEqual({ ok: true, text: 'as expected' });
    expect(verdictOf(sample('C-3', 'over-limit', 'rejected'), workflow('wf_3', {})).text).toBe("MISMATCH: expected 'rejected', got 'paid'");
    const failed = workflow('wf_4', { status: 'failed', outcome: null, failure: { code: 'TOOL_FAILED', message: 'x', state: 'payment', step: 2, at: 0 } });
    expect(verdictOf(paidClean.sample, failed).text).toBe("MISMATCH: expected 'paid', got failed (TOOL_FAILED)");
  });
});

describe('demoReport', () => {
  it('passes when every claim ended as expected and each paid claim was paid once', () => {
    const result = report([paidClean, rejectedMalformed], [{ claimId: 'C-1' }]);
    expect(result.ok).toBe(true);
    expect(result.text).toContain('All 2 claims ended as expected.');
    expect(result.text).toMatch(/ steps +6 in total/);
    expect(result.text).toMatch(/ payments +1 made \(payments service ledger\), exactly one per paid claim/);
    expect(result.text).toMatch(/ elapsed +1\.2 s/);
    expect(result.text).toMatch(/\nclean +1 +1 +0 +0 +0 +1\n/);
    expect(result.text).toContain('keel inspect wf_1 --db demo.db\n');
    expect(result.text).not.toContain('MISMATCH');
  });

  it('names each claim that ended otherwise, with the command to see why', () => {
    const wronglyPaid: DemoResult = { sample: sample('C-3', 'over-limit', 'rejected'), workflow: workflow('wf_3', {}) };
    const result = report([paidClean, wronglyPaid], [{ claimId: 'C-1' }, { claimId: 'C-3' }]);
    expect(result.ok).toBe(false);
    expect(result.text).toContain("MISMATCH  claim C-3 (over-limit): expected 'rejected', got 'paid'. See: keel inspect wf_3 --db demo.db\n");
    expect(result.text).toContain('1 of 2 claims did not end as expected');
  });

  it('expects a held claim to wait for approval, and prints how to decide the waiting ones as the suggested approver', () => {
    const heldSample = { ...sample('C-5', 'clean', 'paid'), needsApproval: true };
    const held: DemoResult = { sample: heldSample, workflow: workflow('wf_5', { status: 'waiting', waitingFor: 'approval', state: 'payment', outcome: null, step: 2 }) };
    expect(verdictOf(held.sample, held.workflow).ok).toBe(true);
    // Paid without a person, a held claim did not end as its policy says.
    expect(verdictOf(heldSample, workflow('wf_6', {})).text).toBe("MISMATCH: expected waiting for approval, got 'paid'");
    expect(verdictOf(paidClean.sample, held.workflow).text).toBe("MISMATCH: expected 'paid', got waiting for approval");

    const result = demoReport({
      results: [paidClean, held],
      payments: [{ claimId: 'C-1' }],
      elapsedMs: 10,
      model: 'scripted',
      databaseFlag: ' --db demo.db',
      approvals: { pending: [{ id: 'apr_1', workflowId: 'wf_5' }], approver: 'fiona@finance' },
    });
    expect(result.ok).toBe(true);
    expect(result.text).toMatch(/ outcomes +1 paid, 0 rejected, 1 waiting for approval/);
    expect(result.text).toContain("1 claim waits for the finance group's approval; fiona@finance (role finance) may decide it:\n");
    expect(result.text).toContain('  keel approvals --db demo.db\n');
    expect(result.text).toContain('  keel approve apr_1 --by fiona@finance --db demo.db\n');
    expect(result.text).toContain('  keel resume wf_5 --db demo.db\n');
    expect(result.text).toContain("  keel reject apr_1 --by fiona@finance --reason 'not pre-approved' --db demo.db\n");
    expect(report([paidClean], [{ claimId: 'C-1' }]).text).not.toContain('keel approve');
  });

  it('fails on a claim paid twice, or a paid claim the ledger does not hold', () => {
    const twice = report([paidClean], [{ claimId: 'C-1' }, { claimId: 'C-1' }]);
    expect(twice.ok).toBe(false);
    expect(twice.text).toContain('MISMATCH  payments: claim C-1 was paid 2 times\n');
    const missing = report([paidClean], []);
    expect(missing.ok).toBe(false);
    expect(missing.text).toContain("MISMATCH  payments: claim C-1 ended 'paid' but the ledger holds no payment for it\n");
    const stray = report([rejectedMalformed], [{ claimId: 'C-2' }]);
    expect(stray.text).toContain("MISMATCH  payments: the ledger holds a payment for claim C-2, which did not end 'paid'\n");
  });
});

describe('demoReport --chaos', () => {
  const chaos = {
    injected: { failed503: 4, rateLimited: 1, unauthorized: 1, hung: 0, tokensIssued: 2, tokensExpired: 1 },
    retries: { transient: 4, 'auth-expired': 1 },
    rateLimitWaits: { inWorker: 3, parked: 0 },
    parks: {},
    breakerOpens: 0,
    deferredByBreaker: 0,
    fallbacks: 0,
  };

  it('adds the chaos counts and says every paid claim was still paid exactly once', () => {
    const result = demoReport({ results: [paidClean, rejectedMalformed], payments: [{ claimId: 'C-1' }], elapsedMs: 10, model: 'scripted', databaseFlag: '', chaos });
    expect(result.ok).toBe(true);
    expect(result.text).toContain('\nChaos: faults the payments service injected, and what Keel did\n');
    expect(result.text).toMatch(/\n  retries +5: transient 4, auth-expired 1\n/);
    expect(result.text).toMatch(/\n  exactly once +every paid claim was still paid exactly once \(1 payment in the ledger for 1 paid claim\)\n/);
  });

  it('does not claim exactly once when the ledger disagrees', () => {
    const result = demoReport({ results: [paidClean], payments: [{ claimId: 'C-1' }, { claimId: 'C-1' }], elapsedMs: 10, model: 'scripted', databaseFlag: '', chaos });
    expect(result.ok).toBe(false);
    expect(result.text).toMatch(/\n  exactly once +NO: see the MISMATCH lines below\n/);
    expect(result.text).toContain('MISMATCH  payments: claim C-1 was paid 2 times\n');
  });

  it('prints no chaos section without --chaos', () => {
    expect(report([paidClean], [{ claimId: 'C-1' }]).text).not.toContain('Chaos');
  });
});
