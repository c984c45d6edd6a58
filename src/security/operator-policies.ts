// Operator policies: the hard limits an operator sets in Cedar (KEEL_POLICIES, or
// createKeel({ security: { policies } })), e.g. never pay above an amount, never call a tool for a
// task type. They are `forbid` policies only: every right anyone has comes from a grant, so that
// `keel grants list` and the permission review see all of them. Each policy names itself with
// @id("..."): the id is what the audit records when the policy decides a call.

import { readFileSync } from 'node:fs';
import { KeelError, errorMessage } from '../errors.js';
import { cedar } from './cedar.js';

/** Policy text by policy id. */
export type OperatorPolicies = Readonly<Record<string, string>>;

const policyId = /^[A-Za-z][\w.:-]{0,99}$/;

/** Parses the policy texts (each may hold several policies); throws INVALID_POLICY naming what to fix. */
export function parseOperatorPolicies(texts: readonly string[], source = 'the operator policies'): OperatorPolicies {
  const policies: Record<string, string> = {};
  for (const text of texts) {
    if (!text.trim()) continue;
    const parts = cedar().policySetTextToParts(text);
    if (parts.type === 'failure') throw invalid(source, `they do not parse: ${parts.errors.map((error) => error.message).join('; ')}`);
    if (parts.policy_templates.length > 0) throw invalid(source, 'they hold policy templates, which Keel does not use; write plain forbid policies');
    for (const policy of parts.policies) {
      const json = cedar().policyToJson(policy);
      if (json.type === 'failure') throw invalid(source, `a policy does not parse: ${json.errors.map((error) => error.message).join('; ')}`);
      const id = json.json.annotations?.id;
      const shown = oneLine(policy);
      if (json.json.effect !== 'forbid') {
        throw invalid(source, `${shown} is a permit policy; operator policies may only forbid (rights come from grants: keel grants add)`);
      }
      if (!id) throw invalid(source, `${shown} has no @id("...") annotation; give each policy an id, which the audit records when it decides a call`);
      if (!policyId.test(id) || id.startsWith('gr_')) {
        throw invalid(source, `policy id '${id}' is not usable: use letters, digits, '_', '.', ':' or '-', starting with a letter and not with 'gr_' (grant ids)`);
      }
      if (id in policies) throw invalid(source, `two policies have the id '${id}'`);
      policies[id] = policy;
    }
  }
  return policies;
}

/** Reads a policy file (KEEL_POLICIES). */
export function readOperatorPolicies(path: string): OperatorPolicies {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new KeelError('INVALID_POLICY', `Cannot read the policy file ${path} (KEEL_POLICIES): ${errorMessage(error)}. Point KEEL_POLICIES at a Cedar file, or unset it.`, { cause: error });
  }
  return parseOperatorPolicies([text], `the policy file ${path}`);
}

function invalid(source: string, problem: string): KeelError {
  return new KeelError('INVALID_POLICY', `Keel cannot use ${source}: ${problem}. Fix the policies and start again; nothing ran with them.`);
}

function oneLine(policy: string): string {
  const text = policy.replace(/\s+/g, ' ').trim();
  return `'${text.length > 80 ? `${text.slice(0, 77)}...` : text}'`;
}
