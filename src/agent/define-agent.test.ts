// defineAgent checks a definition once, at start-up, and fingerprints the parts a journal depends
// on (states, allowed tools, next states, tool schemas, side effects) into the agent's versionId.

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KeelError } from '../errors.js';
import { defineTool } from '../tools/tool.js';
import { defineAgent, versionLabel, type AgentDefinition, type StateDefinition } from './define-agent.js';

const lookup = defineTool({ name: 'lookup', description: 'Finds a claim.', input: z.object({ id: z.string() }), execute: (args) => ({ id: args.id }) });
const pay = defineTool({ name: 'pay', description: 'Pays a claim.', input: z.object({ amount: z.number() }), sideEffect: true, execute: () => ({ paid: true }) });

function definition(overrides: Partial<AgentDefinition> = {}, states?: Record<string, StateDefinition>): AgentDefinition {
  return {
    name: 'expenses',
    tools: [lookup, pay],
    initial: 'checking',
    states: states ?? {
      checking: { tools: ['lookup'], next: ['paying'], on: { lookup: 'paying' } },
      paying: { tools: ['pay'], next: ['done'], on: { pay: 'done' } },
      done: { final: true },
    },
    decide: () => ({ tool: 'lookup', args: { id: '1' } }),
    ...overrides,
  };
}

function definitionError(build: () => unknown): KeelError {
  try {
    build();
  } catch (error) {
    if (KeelError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('defineAgent accepted an invalid definition');
}

describe('defineAgent', () => {
  it('builds an agent with its tool registry, tool JSON schemas and a versionId', () => {
    const agent = defineAgent(definition());
    expect(agent.kind).toBe('keel.agent');
    expect([...agent.toolsByName.keys()]).toEqual(['lookup', 'pay']);
    expect(agent.toolParameters.get('pay')).toMatchObject({ type: 'object', properties: { amount: { type: 'number' } }, required: ['amount'] });
    expect(agent.versionId).toMatch(/^1#[0-9a-f]{12}$/);
    expect(versionLabel(agent.versionId)).toBe('1');
    expect(versionLabel(defineAgent(definition({ version: '2.1' })).versionId)).toBe('2.1');
  });

  it.each([
    ['an unknown initial state', definition({ initial: 'nowhere' as never }), "initial state 'nowhere' is not among the states (checking, paying, done)"],
    [
      'an unknown tool in a state',
      definition({}, { checking: { tools: ['lookup', 'refund'], next: ['done'] }, done: { final: true } }),
      "state 'checking' allows tool 'refund', which is not in the agent's tools (lookup, pay)",
    ],
    [
      'a transition target outside next',
      definition({}, { checking: { tools: ['lookup'], next: ['paying'], on: { lookup: 'done' } }, paying: { tools: ['pay'], next: ['done'] }, done: { final: true } }),
      "state 'checking' moves to 'done' on 'lookup', but 'done' is not in its next states",
    ],
    [
      'a next state that does not exist',
      definition({}, { checking: { tools: ['lookup'], next: ['archive'] }, done: { final: true } }),
      "state 'checking' may move to 'archive', which is not a state",
    ],
    [
      'a transition on a tool the state does not allow',
      definition({}, { checking: { tools: ['lookup'], next: ['done'], on: { pay: 'done' } }, done: { final: true } }),
      "state 'checking' has a transition on tool 'pay', which it does not allow",
    ],
    ['a final state with tools', definition({}, { checking: { tools: ['lookup'], next: ['done'] }, done: { final: true, tools: ['pay'] } }), "final state 'done' must not allow tools"],
    [
      'a non-final state without tools',
      definition({}, { checking: { tools: ['lookup'], next: ['limbo'] }, limbo: { next: ['done'] }, done: { final: true } }),
      "state 'limbo' is not final and allows no tools: a workflow would be stuck there",
    ],
    ['a tool listed twice', definition({ tools: [lookup, lookup, pay] }), "tool 'lookup' is listed twice"],
  ])('refuses %s with INVALID_DEFINITION', (_what, invalid, problem) => {
    const error = definitionError(() => defineAgent(invalid));
    expect(error.code).toBe('INVALID_DEFINITION');
    expect(error.source).toBe('user');
    expect(error.agent).toBe('expenses');
    expect(error.message).toContain("Agent 'expenses' is not valid: ");
    expect(error.message).toContain(problem);
    expect(error.message).toContain('Fix the definition');
  });

  it('lists every problem of a definition at once', () => {
    const error = definitionError(() =>
      defineAgent(definition({ initial: 'nowhere' as never }, { checking: { tools: ['refund'] }, done: { final: true, tools: ['pay'] } })),
    );
    expect(error.message).toContain("initial state 'nowhere'");
    expect(error.message).toContain("allows tool 'refund'");
    expect(error.message).toContain("final state 'done' must not allow tools");
  });

  it('accepts a transition to the same state and a function transition', () => {
    const agent = defineAgent(
      definition({}, { checking: { tools: ['lookup'], next: ['done'], on: { lookup: (result: { id: string }) => (result.id ? 'done' : undefined) } }, done: { final: true } }),
    );
    expect(Object.keys(agent.states)).toEqual(['checking', 'done']);
    expect(defineAgent(definition({}, { checking: { tools: ['lookup'], next: ['done'], on: { lookup: 'checking' } }, done: { final: true } })).initial).toBe('checking');
  });
});

describe('versionId', () => {
  const base = defineAgent(definition()).versionId;

  it('is stable for the same shape, whatever the prose or the code behind the tools', () => {
    expect(defineAgent(definition()).versionId).toBe(base);
    const reworded = definition({ description: 'new words', instructions: 'Be brief.', decide: () => ({ tool: 'pay', args: { amount: 1 } }) });
    expect(defineAgent(reworded).versionId).toBe(base);
    const otherCode = defineTool({ ...lookup, description: 'Finds a claim, faster.', execute: () => ({ id: 'cached' }) });
    expect(defineAgent(definition({ tools: [otherCode, pay] })).versionId).toBe(base);
  });

  it('changes when a tool schema, a side effect, a state, next states or the version change', () => {
    const widerLookup = defineTool({ ...lookup, input: z.object({ id: z.string(), year: z.number().optional() }) });
    const payWithoutSideEffect = defineTool({ ...pay, sideEffect: false });
    const moreStates = {
      checking: { tools: ['lookup'], next: ['paying', 'rejected'], on: { lookup: 'paying' } },
      paying: { tools: ['pay'], next: ['done'], on: { pay: 'done' } },
      rejected: { final: true },
      done: { final: true },
    };
    const variants = [
      defineAgent(definition({ tools: [widerLookup, pay] })).versionId,
      defineAgent(definition({ tools: [lookup, payWithoutSideEffect] })).versionId,
      defineAgent(definition({}, moreStates)).versionId,
      defineAgent(definition({ version: '2' })).versionId,
    ];
    for (const variant of variants) expect(variant).not.toBe(base);
    expect(new Set(variants).size).toBe(variants.length);
    expect(variants[3]?.split('#')[1]).toBe(base.split('#')[1]);
  });
});
