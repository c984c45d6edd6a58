// The demo runs with permissions enforced, as production should: before it submits its claims it
// grants its principal exactly what the expense-approval agent declares, for that task type only,
// for a day, and payments only to claims and German accounts (every sample payee is one). Any
// further call, or a payment elsewhere, would be denied and show up in `keel permissions review`.

import type { Agent } from '../../agent/define-agent.js';
import { addGrant, grantState } from '../../security/grants.js';
import type { Grant, Store } from '../../store/types.js';

const grantedBy = 'keel-demo-setup';
const oneDayMs = 86_400_000;
/** Narrower resources for the permissions that move money. */
const resourceScopes: Readonly<Record<string, readonly string[]>> = { 'payments:write': ['claim:*', 'payee:DE*'] };

/** Grants `principal` what `agent` declares, unless a live grant of it for the agent is already there. */
export async function grantDemoRights(store: Store, agent: Agent, principal: string, now = Date.now()): Promise<Grant[]> {
  const held = (await store.listGrants({ principalId: principal })).filter((grant) => grantState(grant, now) === 'live' && (grant.taskTypes?.includes(agent.name) ?? true));
  const grants: Grant[] = [];
  for (const permission of agent.permissions ?? []) {
    const existing = held.find((grant) => grant.permission === permission);
    grants.push(
      existing ??
        (await addGrant(store, { principalId: principal, permission, taskTypes: [agent.name], resources: resourceScopes[permission], expiresAt: now + oneDayMs, by: grantedBy }, now)),
    );
  }
  return grants;
}
