// Finds the agent a command names: a built-in example ('expense-approval') or a path to a JS
// module that exports an Agent as `default` or `agent`, and optionally a `script` for the scripted
// model. Workflows remember where their agent came from ('builtin:<name>' or an absolute path) so
// any `keel worker` can import the agent of a workflow it claims.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Agent } from '../agent/define-agent.js';
import { KeelError, errorMessage } from '../errors.js';
import type { Script } from '../model/scripted-model.js';
import { packageModuleUrl } from './package-files.js';

/** Built-in agents by name: the module (under the package) that exports each. */
export const builtinAgents: Readonly<Record<string, string>> = {
  'expense-approval': 'examples/expense-approval/agent',
};

const builtinPrefix = 'builtin:';

export interface LoadedAgent {
  agent: Agent;
  /** The scripted model's decisions, when the module ships them. */
  script?: Script;
  /** Where a worker imports the agent from: 'builtin:<name>' or an absolute file path. */
  module: string;
  /** The built-in name, for built-in agents. */
  builtin?: string;
}

/** `reference` is a built-in name, 'builtin:<name>', or a path (relative to `cwd`) to a JS module. */
export async function loadAgent(reference: string, cwd: string): Promise<LoadedAgent> {
  const builtin = reference.startsWith(builtinPrefix) ? reference.slice(builtinPrefix.length) : reference;
  if (Object.hasOwn(builtinAgents, builtin)) {
    const url = packageModuleUrl(builtinAgents[builtin]!);
    const exports = await importModule(url.href, `the built-in agent '${builtin}'`);
    return { ...agentExports(exports, `The built-in agent module for '${builtin}'`), module: `${builtinPrefix}${builtin}`, builtin };
  }
  const path = resolve(cwd, reference);
  if (reference.startsWith(builtinPrefix) || !existsSync(path)) {
    throw new KeelError(
      'UNKNOWN_AGENT',
      `Unknown agent '${reference}': it is not a built-in agent (built-ins: ${Object.keys(builtinAgents).join(', ')}) and there is no file ${path}. ` +
        `Name a built-in agent, or give the path to a JS module that exports an agent made with defineAgent (as \`default\` or \`agent\`).`,
      { agent: reference },
    );
  }
  const exports = await importModule(pathToFileURL(path).href, `the agent module ${path}`);
  return { ...agentExports(exports, `The module ${path}`), module: path };
}

/** The Keel `resolveAgent` hook for workers: imports the module a workflow recorded. */
export async function loadRecordedAgent(module: string | null, agentName: string, workflowId: string): Promise<LoadedAgent> {
  if (!module) {
    throw new KeelError(
      'UNKNOWN_AGENT',
      `Workflow ${workflowId} uses agent '${agentName}' but does not record which module it came from. ` +
        `Start the worker with --agent <module> (a built-in name or a path) so it has the agent.`,
      { workflowId, agent: agentName },
    );
  }
  const loaded = await loadAgent(module, process.cwd());
  if (loaded.agent.name !== agentName) {
    throw new KeelError(
      'UNKNOWN_AGENT',
      `Workflow ${workflowId} needs agent '${agentName}', but its module ${module} now exports agent '${loaded.agent.name}'. ` +
        `Start a worker with --agent <module> pointing at the module that defines '${agentName}'.`,
      { workflowId, agent: agentName },
    );
  }
  return loaded;
}

export function isAgent(value: unknown): value is Agent {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'keel.agent';
}

async function importModule(href: string, what: string): Promise<Record<string, unknown>> {
  try {
    return (await import(href)) as Record<string, unknown>;
  } catch (error) {
    const missing = (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(href.replace('file://', ''));
    throw new KeelError(
      'UNKNOWN_AGENT',
      missing
        ? `Cannot find ${what} (${href}): Keel's compiled files are missing. Run \`npm run build\` in the keel folder, then try again.`
        : `Cannot load ${what}: importing it failed with: ${errorMessage(error)}. Fix the module (it must be JavaScript that Node can import), then try again.`,
      { cause: error },
    );
  }
}

function agentExports(exports: Record<string, unknown>, what: string): { agent: Agent; script?: Script } {
  const agent = [exports.default, exports.agent].find(isAgent);
  if (!agent) {
    const names = Object.keys(exports);
    throw new KeelError(
      'UNKNOWN_AGENT',
      `${what} does not export an agent: export the result of defineAgent as \`default\` or as \`agent\`. ` +
        `It exports: ${names.length > 0 ? names.join(', ') : 'nothing'}.`,
    );
  }
  const script = typeof exports.script === 'function' ? (exports.script as Script) : undefined;
  return script ? { agent, script } : { agent };
}
