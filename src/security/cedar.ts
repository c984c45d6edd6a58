// The Cedar policy engine (@cedar-policy/cedar-wasm), loaded on first use: its WebAssembly takes
// about 0.1 s to instantiate, and only Keel instances that enforce permissions pay for it. The
// Node build of the package is CommonJS, so it is required synchronously: a policy mistake is then
// reported when Keel is created, not at the first tool call.

import { createRequire } from 'node:module';
import type * as CedarWasm from '@cedar-policy/cedar-wasm/nodejs';

export type Cedar = typeof CedarWasm;
export type { AuthorizationAnswer, Context as CedarContext, CedarValueJson, EntityJson, Expr, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';

let loaded: Cedar | undefined;

export function cedar(): Cedar {
  loaded ??= createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as Cedar;
  return loaded;
}

/** Entity types of Keel's Cedar model (docs/security.md): who asks, to do what, to which resource. */
export const CedarType = {
  user: 'Keel::User',
  action: 'Keel::Action',
  resource: 'Keel::Resource',
} as const;
