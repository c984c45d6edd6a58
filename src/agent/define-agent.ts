// defineAgent: one agent, a registry of typed tools, and an explicit state machine. Each state
// names the tools allowed in it and the states it may move to; a transition to any other state
// is refused. The definition is checked once, here, so a mistake surfaces at start-up rather
// than in the middle of a workflow.

import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { LanguageModelV3 } from '@ai-sdk/provider';
import { KeelError } from '../errors.js';
import type { AnyTool } from '../tools/tool.js';
import type { ServiceConfig } from '../tools/tool-runner.js';
import type { DecideFunction } from '../model/code-decider.js';
import type { ApprovalPolicy } from '../approval/policy.js';

export interface TransitionContext {
  input: unknown;
  context: Readonly<Record<string, unknown>>;
  args: unknown;
}

/** Where to go after a tool succeeds: a state name, or a function of its result (undefined = stay). */
export type TransitionTarget = string | ((result: any, context: TransitionContext) => string | undefined); // eslint-disable-line @typescript-eslint/no-explicit-any

export interface StateDefinition {
  /** Tools the decider may call in this state. */
  tools?: readonly string[];
  /** States this state may move to. */
  next?: readonly string[];
  /** Transitions taken after a tool call succeeds, by tool name. */
  on?: Readonly<Record<string, TransitionTarget>>;
  /** A final state ends the workflow as completed. */
  final?: boolean;
  /** For final states: the outcome recorded (default: the state's name). */
  outcome?: string;
  /** Decide this state's actions in plain code instead of asking the model. */
  decide?: DecideFunction;
  description?: string;
}

export interface WorkflowSnapshot {
  state: string;
  context: Record<string, unknown>;
}

export interface AgentDefinition<States extends string = string> {
  name: string;
  /** Bump when the state machine or tools change; in-flight workflows then need a migration. */
  version?: string;
  description?: string;
  /** System instructions for the model. */
  instructions?: string;
  tools: readonly AnyTool[];
  states: Readonly<Record<States, StateDefinition>>;
  initial: NoInfer<States>;
  /** Schema of the task input, checked when a workflow starts. */
  input?: z.ZodType;
  /** Decide every step in plain code (overrides the model); per-state `decide` wins over this. */
  decide?: DecideFunction;
  /** The model for this agent (default: the Keel instance's model). */
  model?: LanguageModelV3;
  /** Most steps a workflow may take before it fails (default 50). */
  maxSteps?: number;
  /** Largest context, in bytes of JSON, a workflow may hold (default 1 MiB). */
  maxContextBytes?: number;
  /** The downstream services its tools call (`tool.service`): breaker, rate budget, credentials. */
  services?: Readonly<Record<string, ServiceConfig>>;
  /**
   * The permissions this agent's task type needs (docs/security.md). When permissions are
   * enforced, a call runs only if its tool's permission is listed here and granted to the principal.
   */
  permissions?: readonly string[];
  /** How long a workflow may act on its principal's rights before a person must re-authorise it (default 1 h). */
  sessionTtlMs?: number;
  /** A denied call: 'feedback' (default) hands the denial to the decider; 'fail' fails the workflow. */
  onPermissionDenied?: 'feedback' | 'fail';
  /** When a decided action waits for a person's approval before it runs (src/approval). */
  approval?: ApprovalPolicy;
  /** Offers the built-in `escalate_to_human` action in every state: the decider may hand the whole task to a person (src/approval/handoff.ts). */
  humanHandoff?: boolean;
  /** Upgrades workflows started on an older version, keyed by that version. */
  migrations?: Readonly<Record<string, (snapshot: WorkflowSnapshot) => WorkflowSnapshot>>;
}

export interface Agent extends AgentDefinition {
  readonly kind: 'keel.agent';
  /** `<version>#<fingerprint>`: changes whenever states, transitions or tool schemas change. */
  readonly versionId: string;
  readonly toolsByName: ReadonlyMap<string, AnyTool>;
  /** JSON Schema of each tool's arguments, computed once. */
  readonly toolParameters: ReadonlyMap<string, Record<string, unknown>>;
}

export function defineAgent<States extends string>(definition: AgentDefinition<States>): Agent {
  const problems: string[] = [];
  const toolsByName = new Map<string, AnyTool>();
  for (const tool of definition.tools) {
    if (toolsByName.has(tool.name)) problems.push(`tool '${tool.name}' is listed twice`);
    toolsByName.set(tool.name, tool);
  }
  const states = definition.states as Record<string, StateDefinition>;
  const stateNames = Object.keys(states);
  for (const tool of definition.tools) {
    const fallback = tool.fallback;
    if (fallback && 'tool' in fallback && (!toolsByName.has(fallback.tool) || fallback.tool === tool.name)) {
      problems.push(`tool '${tool.name}' falls back to tool '${fallback.tool}', which is ${fallback.tool === tool.name ? 'itself' : "not in the agent's tools"}`);
    }
  }
  if (!(definition.initial in states)) problems.push(`initial state '${definition.initial}' is not among the states (${stateNames.join(', ')})`);
  for (const [name, state] of Object.entries(states)) {
    for (const tool of state.tools ?? []) {
      if (!toolsByName.has(tool)) problems.push(`state '${name}' allows tool '${tool}', which is not in the agent's tools (${[...toolsByName.keys()].join(', ')})`);
    }
    for (const target of state.next ?? []) {
      if (!(target in states)) problems.push(`state '${name}' may move to '${target}', which is not a state`);
    }
    for (const [tool, target] of Object.entries(state.on ?? {})) {
      if (!(state.tools ?? []).includes(tool)) problems.push(`state '${name}' has a transition on tool '${tool}', which it does not allow`);
      if (typeof target === 'string' && target !== name && !(state.next ?? []).includes(target)) {
        problems.push(`state '${name}' moves to '${target}' on '${tool}', but '${target}' is not in its next states`);
      }
    }
    if (state.final && (state.tools?.length ?? 0) > 0) problems.push(`final state '${name}' must not allow tools`);
    if (!state.final && (state.tools?.length ?? 0) === 0) problems.push(`state '${name}' is not final and allows no tools: a workflow would be stuck there`);
  }
  if (problems.length > 0) {
    throw new KeelError('INVALID_DEFINITION', `Agent '${definition.name}' is not valid: ${problems.join('; ')}. Fix the definition and start again.`, {
      agent: definition.name,
    });
  }
  const toolParameters = new Map<string, Record<string, unknown>>();
  for (const tool of definition.tools) {
    toolParameters.set(tool.name, z.toJSONSchema(tool.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>);
  }
  return {
    ...(definition as AgentDefinition),
    kind: 'keel.agent',
    versionId: `${definition.version ?? '1'}#${fingerprint(definition as AgentDefinition, toolParameters)}`,
    toolsByName,
    toolParameters,
  };
}

/** The shape a journal depends on: states, allowed tools, transitions, tool schemas and side effects. */
function fingerprint(definition: AgentDefinition, toolParameters: Map<string, Record<string, unknown>>): string {
  const shape = {
    initial: definition.initial,
    states: Object.fromEntries(
      Object.entries(definition.states as Record<string, StateDefinition>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, state]) => [
          name,
          { tools: [...(state.tools ?? [])].sort(), next: [...(state.next ?? [])].sort(), final: state.final ?? false },
        ]),
    ),
    tools: [...toolParameters.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, parameters]) => [name, parameters, definition.tools.find((tool) => tool.name === name)?.sideEffect ?? false]),
  };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 12);
}

export function versionLabel(versionId: string): string {
  return versionId.split('#')[0] ?? versionId;
}
