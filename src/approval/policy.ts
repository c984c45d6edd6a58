// Approval policies: when a decided action must wait for a person before it runs. A policy is a
// list of small rules; each rule that fires gives a reason, and the request lists them all.
// Evaluated after the action is decided, its arguments validated and its permission checked,
// before it runs. Pure: no store, no clock; the step loop owns what happens next.

import type { DecisionRecord } from '../model/decision.js';
import type { Principal } from '../store/types.js';
import type { AnyTool } from '../tools/tool.js';

/** What a rule sees of the proposed action. */
export interface ProposedAction {
  tool: AnyTool;
  /** The arguments as validated against the tool's schema. */
  args: unknown;
  decision: Pick<DecisionRecord, 'reasoning' | 'confidence'>;
  principal: Principal;
  agent: string;
  state: string;
}

export interface ApprovalRule {
  /** Names the rule in the request's reasons and in the journal. */
  readonly name: string;
  /** A reason when the action needs approval under this rule; undefined when it does not. */
  check(action: ProposedAction): string | undefined;
}

export interface ApprovalPolicy {
  /** Rules for every call of the agent. A tool's `requiresApproval` adds the `toolRequiresApproval` rule for it. */
  rules?: readonly ApprovalRule[];
  /** Rules for calls of one tool, by tool name. */
  tools?: Readonly<Record<string, readonly ApprovalRule[]>>;
  /**
   * The group or role that may decide: recorded on the request, and only a principal holding it
   * (`keel principals add <id> --role <group>`) may approve or reject. Without it anyone but the requester may.
   */
  approvers?: string;
  /** How long a request may wait for each group before it escalates, or expires and counts as rejected (default: never). */
  expiresAfterMs?: number;
  /**
   * The groups an undecided request goes to next, in order, each given `expiresAfterMs` again;
   * after the last one it expires. E.g. approvers 'team-lead', escalation ['finance', 'cfo'].
   */
  escalation?: readonly string[];
  /** Lets the principal the agent acts for approve their own request (default false). */
  allowSelfApproval?: boolean;
}

export const defaultConfidenceThreshold = 0.8;

/** Fires when the decider's confidence is below the threshold, or missing. Only side-effecting calls by default: a read repeats nothing. */
export function confidenceBelow(threshold = defaultConfidenceThreshold, options: { readsToo?: boolean } = {}): ApprovalRule {
  return {
    name: 'confidence-below',
    check: ({ tool, decision }) => {
      if (!tool.sideEffect && !options.readsToo) return undefined;
      if (decision.confidence === undefined) return `the decider gave no confidence (threshold ${threshold})`;
      return decision.confidence < threshold ? `confidence ${decision.confidence} is below ${threshold}` : undefined;
    },
  };
}

/** Fires for every call of a tool marked `requiresApproval`. */
export function toolRequiresApproval(): ApprovalRule {
  return { name: 'tool-requires-approval', check: ({ tool }) => (tool.requiresApproval ? `tool '${tool.name}' always requires approval` : undefined) };
}

/** Fires when the predicate holds for the call's arguments; `describe` says why in words (e.g. 'amount over 1000'). */
export function argsMatch<Args = Record<string, unknown>>(describe: string, predicate: (args: Args) => boolean, name = 'args-match'): ApprovalRule {
  return {
    name,
    check: ({ args }) => {
      try {
        return predicate(args as Args) ? describe : undefined;
      } catch {
        // A predicate that cannot read the arguments cannot clear them either.
        return `${describe} (the rule could not read the arguments)`;
      }
    },
  };
}

/** Fires when a keyword appears (case-insensitive, whole word) in the tool's name or description, the reasoning, or the arguments. */
export function keywords(words: readonly string[]): ApprovalRule {
  const patterns = words.map((word) => ({ word, pattern: new RegExp(`\\b${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'i') }));
  return {
    name: 'keywords',
    check: ({ tool, args, decision }) => {
      const text = [tool.name.replaceAll('_', ' '), tool.description, decision.reasoning ?? '', JSON.stringify(args ?? null)].join('\n');
      const found = patterns.filter(({ pattern }) => pattern.test(text)).map(({ word }) => word);
      return found.length > 0 ? `the action mentions ${found.map((word) => `'${word}'`).join(', ')}` : undefined;
    },
  };
}

/** Fires when the principal holds none of the roles that may act without approval. */
export function principalLacksRole(roles: readonly string[]): ApprovalRule {
  return {
    name: 'principal-role',
    check: ({ principal }) =>
      (principal.roles ?? []).some((role) => roles.includes(role)) ? undefined : `principal '${principal.id}' has none of the roles ${roles.map((role) => `'${role}'`).join(', ')}`,
  };
}

/** Fires when the principal holds one of these roles (e.g. 'contractor', 'trainee'). */
export function principalHasRole(roles: readonly string[]): ApprovalRule {
  return {
    name: 'principal-role',
    check: ({ principal }) => {
      const held = (principal.roles ?? []).filter((role) => roles.includes(role));
      return held.length > 0 ? `principal '${principal.id}' acts as ${held.map((role) => `'${role}'`).join(', ')}` : undefined;
    },
  };
}

/** All of the rules must fire; their reasons are joined. */
export function allOf(...rules: readonly ApprovalRule[]): ApprovalRule {
  return {
    name: `all-of(${rules.map((rule) => rule.name).join(', ')})`,
    check: (action) => {
      const reasons: string[] = [];
      for (const rule of rules) {
        const reason = rule.check(action);
        if (reason === undefined) return undefined;
        reasons.push(reason);
      }
      return reasons.join(' and ');
    },
  };
}

/** The reasons the proposed action needs approval; empty when it may run. */
export function evaluateApproval(policy: ApprovalPolicy | undefined, action: ProposedAction): string[] {
  const rules = [toolRequiresApproval(), ...(policy?.rules ?? []), ...(policy?.tools?.[action.tool.name] ?? [])];
  const reasons: string[] = [];
  for (const rule of rules) {
    const reason = rule.check(action);
    if (reason !== undefined && !reasons.includes(reason)) reasons.push(reason);
  }
  return reasons;
}
