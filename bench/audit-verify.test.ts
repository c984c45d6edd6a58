// Smoke test of the bench's audit scenario: a small log is written and verified the way the
// full run does it, and its figure becomes a target and a report section. No timing is
// asserted: targets are reported, never enforced.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAuditVerify } from './audit-verify.js';
import { evaluateTargets } from './targets.js';

let directory: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keel-bench-audit-'));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

describe('the audit scenario', () => {
  it('writes a log of the asked size, verifies it intact and yields the verification target', async () => {
    const result = await runAuditVerify({ path: join(directory, 'audit.db'), entries: 12_345 });
    expect(result).toMatchObject({ entries: 12_345, ok: true });
    expect(result.verifyMs).toBeGreaterThan(0);
    expect(result.databaseBytes).toBeGreaterThan(12_345 * 100);

    const [target] = evaluateTargets({ audit: result });
    expect(target).toMatchObject({ name: 'Audit: keel audit verify over 1,000,000 entries in under 10 s', unit: 'seconds', limit: 10 });
    expect(target!.figure).toBeCloseTo((result.verifyMs / 1000) * (1_000_000 / 12_345));
  });
});
