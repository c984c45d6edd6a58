// Which model decides for the agents a command runs, and the one line that tells the user.
// KEEL_MODEL set: that provider's model. Otherwise the scripted model, when the agent's module
// ships a script. An agent that decides in code, or brings its own model, needs neither.

import type { LanguageModelV3 } from '@ai-sdk/provider';
import type { Agent } from '../agent/define-agent.js';
import { KeelError } from '../errors.js';
import { modelFromEnv } from '../model/model-from-env.js';
import { scriptedModel } from '../model/scripted-model.js';
import type { LoadedAgent } from './agent-loader.js';

export interface ModelChoice {
  /** The model for agents without their own (from KEEL_MODEL), if set. */
  model?: LanguageModelV3;
  /** One line for stderr saying which model runs the agents. */
  describe(loaded?: LoadedAgent): string;
  /** The agent as it will run: given a scripted model when KEEL_MODEL is unset and its module has a script. */
  prepare(loaded: LoadedAgent): Agent;
  /** Refuses, before anything is stored, an agent that would have nothing to decide with. */
  assertCanDecide(loaded: LoadedAgent): void;
}

export function chooseModel(env: NodeJS.ProcessEnv = process.env): ModelChoice {
  const fromEnv = modelFromEnv(env);
  const scripted = 'model: scripted (set KEEL_MODEL to use a real model)';
  return {
    model: fromEnv?.model,
    describe(loaded) {
      if (loaded && decidesInCode(loaded.agent)) return `model: none (agent '${loaded.agent.name}' decides in code)`;
      if (loaded?.agent.model) return `model: ${loaded.agent.model.provider}:${loaded.agent.model.modelId} (agent '${loaded.agent.name}' brings its own)`;
      if (fromEnv) return `model: ${fromEnv.spec.provider}:${fromEnv.spec.model} (from KEEL_MODEL)`;
      return scripted;
    },
    prepare(loaded) {
      const { agent, script } = loaded;
      if (fromEnv || agent.model || decidesInCode(agent) || !script) return agent;
      // A copy, so the module's own agent object stays as its author wrote it.
      return { ...agent, model: scriptedModel(script) };
    },
    assertCanDecide(loaded) {
      if (fromEnv || loaded.agent.model || loaded.script || decidesInCode(loaded.agent)) return;
      throw new KeelError(
        'MODEL_CONFIG',
        `Agent '${loaded.agent.name}' (${loaded.module}) has no model to decide with: KEEL_MODEL is not set, the agent has no decide function ` +
          `and no model of its own, and its module exports no \`script\` for the scripted model. Set KEEL_MODEL (e.g. openai:gpt-4.1-mini), ` +
          `or export a script from the module.`,
        { agent: loaded.agent.name },
      );
    },
  };
}

/** Every state that needs a decision is decided in plain code. */
export function decidesInCode(agent: Agent): boolean {
  if (agent.decide) return true;
  return Object.values(agent.states).every((state) => state.final || state.decide !== undefined);
}
