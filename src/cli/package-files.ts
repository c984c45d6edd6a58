// Finds files that ship with Keel (the built-in examples) relative to the CLI's own module, so
// the keel command works from any folder. Compiled, the CLI lives in dist/src/cli/ and the
// examples in dist/examples/; under vitest the sources run from src/cli/ and examples/.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const runningFromSource = import.meta.url.endsWith('.ts');

/** URL of a compiled module of the package, e.g. 'examples/expense-approval/agent'. */
export function packageModuleUrl(modulePath: string): URL {
  return new URL(`../../${modulePath}${runningFromSource ? '.ts' : '.js'}`, import.meta.url);
}

/**
 * Path of a data file kept in the repository next to the sources (not compiled), e.g.
 * 'examples/expense-approval/claims/clean-claim.json'; undefined when it is not there.
 */
export function repositoryFilePath(relativePath: string): string | undefined {
  const path = fileURLToPath(new URL(`${runningFromSource ? '../../' : '../../../'}${relativePath}`, import.meta.url));
  return existsSync(path) ? path : undefined;
}
