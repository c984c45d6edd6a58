// One Cedar `permit` policy per live grant; its policy id is the grant's id, so the ids Cedar
// reports as deciding a request name the grants that allowed it. Policies are built as Cedar's
// JSON form, never as text: a principal id, a permission or a resource pattern can hold any
// character without changing what the policy says.

import type { Grant } from '../store/types.js';
import { CedarType, type Expr, type PolicyJson } from './cedar.js';

export function grantPolicy(grant: Grant): PolicyJson {
  const conditions: Expr[] = [];
  if (grant.taskTypes) conditions.push(anyOf(grant.taskTypes.map((taskType) => ({ '==': { left: attribute('context', 'taskType'), right: { Value: taskType } } }))));
  if (grant.expiresAt !== null) conditions.push({ '<': { left: attribute('context', 'now'), right: { Value: grant.expiresAt } } });
  if (grant.resources) conditions.push(anyOf(grant.resources.map((pattern) => ({ like: { left: attribute('resource', 'id'), pattern: likePattern(pattern) } }))));
  return {
    effect: 'permit',
    principal: { op: '==', entity: { type: CedarType.user, id: grant.principalId } },
    action: { op: '==', entity: { type: CedarType.action, id: grant.permission } },
    resource: { op: 'All' },
    conditions: conditions.length === 0 ? [] : [{ kind: 'when', body: allOf(conditions) }],
  };
}

/** Whether a resource name fits a grant's pattern ('*' matches any run of characters), as Cedar's `like` decides it. */
export function matchesPattern(name: string, pattern: string): boolean {
  const parts = pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('[\\s\\S]*')}$`).test(name);
}

function likePattern(pattern: string): ('Wildcard' | { Literal: string })[] {
  const elements: ('Wildcard' | { Literal: string })[] = [];
  pattern.split('*').forEach((literal, index) => {
    if (index > 0) elements.push('Wildcard');
    for (const character of literal) elements.push({ Literal: character });
  });
  return elements;
}

function attribute(variable: 'context' | 'resource', name: string): Expr {
  return { '.': { left: { Var: variable }, attr: name } };
}

function anyOf(expressions: Expr[]): Expr {
  return expressions.reduce((left, right) => ({ '||': { left, right } }));
}

function allOf(expressions: Expr[]): Expr {
  return expressions.reduce((left, right) => ({ '&&': { left, right } }));
}
