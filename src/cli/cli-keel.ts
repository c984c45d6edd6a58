// The Keel instance a command works with: the store it opened, pino logging to stderr at
// KEEL_LOG_LEVEL, the model choice, and a resolveAgent hook that imports the agent module a
// workflow recorded, so a worker can run workflows that other processes started.

import type { KeelEventListener } from '../agent/events.js';
import { createKeel, type Keel } from '../agent/keel.js';
import { errorMessage } from '../errors.js';
import type { Store } from '../store/types.js';
import { createLogger } from '../util/logger.js';
import { loadRecordedAgent, type LoadedAgent } from './agent-loader.js';
import type { ModelChoice } from './model-choice.js';

export interface CliKeelOptions {
  store: Store;
  models: ModelChoice;
  leaseMs?: number;
  maxRecoveries?: number;
  onEvent?: KeelEventListener;
  /** Called for each agent module a worker imports on demand, e.g. to start services it needs. */
  onAgentLoaded?: (loaded: LoadedAgent) => void;
}

export function createCliKeel(options: CliKeelOptions): Keel {
  const logger = createLogger();
  return createKeel({
    store: options.store,
    model: options.models.model,
    logger,
    leaseMs: options.leaseMs,
    maxRecoveries: options.maxRecoveries,
    onEvent: options.onEvent,
    resolveAgent: async (workflow) => {
      try {
        const loaded = await loadRecordedAgent(workflow.agentModule, workflow.agent, workflow.id);
        options.onAgentLoaded?.(loaded);
        return options.models.prepare(loaded);
      } catch (error) {
        // Keel parks the workflow as waiting for its agent; the log says why the import failed.
        logger.warn({ workflowId: workflow.id, agent: workflow.agent, module: workflow.agentModule }, errorMessage(error));
        return undefined;
      }
    },
  });
}

/** Registers an agent the command loaded itself, as it will run (with its scripted model if any). */
export function registerLoaded(keel: Keel, models: ModelChoice, loaded: LoadedAgent): void {
  keel.register(models.prepare(loaded), loaded.module);
}
