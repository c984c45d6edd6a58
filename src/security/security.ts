// Least privilege for one Keel instance (docs/security.md): whether permissions are enforced,
// the operator's forbid policies, the session length, and what a workflow may do when it starts.
// Keel creates it from createKeel({ security }); without that option nothing is enforced.

import type { Agent } from '../agent/define-agent.js';
import type { Grant, JournalEntry, Principal, Store, WorkflowRecord } from '../store/types.js';
import type { Clock } from '../util/clock.js';
import { Authorizer } from './authorizer.js';
import { WorkflowGuard } from './call-guard.js';
import { grantState } from './grants.js';
import { parseOperatorPolicies } from './operator-policies.js';

export interface SecurityOptions {
  /**
   * 'always' (default): every tool call is checked. 'when-granted': calls are checked once the
   * store holds any grant (live or revoked), so a database never drops back to unenforced; the CLI
   * uses it, so that every process on a database enforces as soon as an operator grants anything.
   */
  enforce?: 'always' | 'when-granted';
  /** Operator forbid policies in Cedar, each with an @id("...") (KEEL_POLICIES holds a file of them). */
  policies?: string | readonly string[];
  /** The default session length of a workflow (default 1 h); an agent's sessionTtlMs wins. */
  sessionTtlMs?: number;
}

/** What the principal may do in a new workflow, recorded in its workflow-started entry. */
export interface StartPermissions {
  /** Permissions the principal may use in this task now: declared by the agent and its tools, and granted. */
  effective: string[];
  /** The live grants behind them. */
  grants: string[];
  /** Permissions the agent's tools need that the principal holds no live grant of for this task. */
  notGranted: string[];
  /** Tools that declare no permission (or one the agent does not declare): they cannot run. */
  blockedTools: string[];
}

export const defaultSessionTtlMs = 60 * 60 * 1000;

export class Security {
  readonly authorizer: Authorizer;
  readonly sessionTtlMs: number;
  private readonly enforce: 'always' | 'when-granted';
  private granted = false;
  /** When this process last noted each grant's use: the store is told at most once a minute per grant. */
  private readonly notedUse = new Map<string, number>();

  constructor(
    options: SecurityOptions,
    readonly store: Store,
    readonly clock: Clock,
  ) {
    const texts = typeof options.policies === 'string' ? [options.policies] : (options.policies ?? []);
    this.authorizer = new Authorizer(parseOperatorPolicies(texts));
    this.sessionTtlMs = options.sessionTtlMs ?? defaultSessionTtlMs;
    this.enforce = options.enforce ?? 'always';
  }

  /** Whether calls are checked now. In 'when-granted' mode, true from the first grant on, for good. */
  async enforced(): Promise<boolean> {
    if (this.enforce === 'always' || this.granted) return true;
    this.granted = (await this.store.listGrants({ includeRevoked: true, limit: 1 })).length > 0;
    return this.granted;
  }

  /** The permissions a workflow of `agent` starts with, or undefined when nothing is enforced. */
  async startPermissions(agent: Agent, principal: Principal): Promise<StartPermissions | undefined> {
    if (!(await this.enforced())) return undefined;
    const now = this.clock.now();
    const declared = new Set(agent.permissions ?? []);
    const needed = new Set<string>();
    const blockedTools: string[] = [];
    for (const tool of agent.tools) {
      if (tool.permission && declared.has(tool.permission)) needed.add(tool.permission);
      else blockedTools.push(tool.name);
    }
    const live = (await this.store.listGrants({ principalId: principal.id })).filter(
      (grant: Grant) => needed.has(grant.permission) && grantState(grant, now) === 'live' && (grant.taskTypes === null || grant.taskTypes.includes(agent.name)),
    );
    const effective = [...needed].filter((permission) => live.some((grant) => grant.permission === permission)).sort();
    return {
      effective,
      grants: live.map((grant) => grant.id),
      notGranted: [...needed].filter((permission) => !effective.includes(permission)).sort(),
      blockedTools,
    };
  }

  /** Records that these grants permitted a call, for the review (`Grant.lastUsedAt`). */
  async noteUse(grantIds: readonly string[], now: number): Promise<void> {
    const due = grantIds.filter((id) => (this.notedUse.get(id) ?? -Infinity) <= now - 60_000);
    if (due.length === 0) return;
    for (const id of due) this.notedUse.set(id, now);
    if (this.notedUse.size > 10_000) this.notedUse.clear();
    await this.store.markGrantsUsed(due, now);
  }

  /** The gate of one claimed workflow's calls, given the journal the claim started from. */
  guard(workflow: WorkflowRecord, agent: Agent, journal: readonly JournalEntry[]): WorkflowGuard {
    return new WorkflowGuard(this, workflow, agent, journal);
  }
}
