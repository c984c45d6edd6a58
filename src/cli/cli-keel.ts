// The Keel instance a command works with: the store it opened, pino logging to stderr at
// KEEL_LOG_LEVEL, the model choice, and a resolveAgent hook that imports the agent module a
// workflow recorded, so a worker can run workflows that other processes started. Permissions
// (docs/security.md): KEEL_PERMISSIONS=enforce checks every call, =off none; unset, calls are
// checked once the database holds any grant. KEEL_POLICIES names a Cedar file of forbid policies
// (and enforces).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { KeelEventListener } from '../agent/events.js';
import { createKeel, type Keel } from '../agent/keel.js';
import { KeelError, errorMessage } from '../errors.js';
import { readOperatorPolicies } from '../security/operator-policies.js';
import type { SecurityOptions } from '../security/security.js';
import type { Store } from '../store/types.js';
import type { MeterProvider } from '@opentelemetry/api';
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
  /** Where Keel's metrics go (keel worker --metrics-port). */
  meterProvider?: MeterProvider;
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
    meterProvider: options.meterProvider,
    security: cliSecurity(),
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

/** The permission settings of the keel command, from KEEL_PERMISSIONS and KEEL_POLICIES. */
export function cliSecurity(environment: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): SecurityOptions | undefined {
  const mode = (environment.KEEL_PERMISSIONS ?? '').trim().toLowerCase();
  const policyFile = environment.KEEL_POLICIES?.trim() ? resolve(cwd, environment.KEEL_POLICIES.trim()) : undefined;
  if (!['', 'enforce', 'off'].includes(mode)) {
    throw new KeelError('BAD_INPUT', `KEEL_PERMISSIONS is '${environment.KEEL_PERMISSIONS}'; use 'enforce' (check every tool call), 'off' (check none), or leave it unset (check once the database holds a grant).`);
  }
  if (mode === 'off') {
    if (policyFile) throw new KeelError('BAD_INPUT', `KEEL_PERMISSIONS=off turns permission checks off, but KEEL_POLICIES names policies to enforce (${policyFile}); unset one of them.`);
    return undefined;
  }
  if (!policyFile) return { enforce: mode === 'enforce' ? 'always' : 'when-granted' };
  readOperatorPolicies(policyFile);
  return { enforce: 'always', policies: readFileSync(policyFile, 'utf8') };
}
