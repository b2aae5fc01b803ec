/** Where the repository, the built controller and the pinned Node 24 binary are, seen from the compiled tests. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file compiles to core/build/test/e2e/support/paths.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

/** The controller's process entry point, as `npm start` and the container image run it. */
export const MAIN_JS = join(REPO_ROOT, 'core', 'build', 'src', 'main.js');

/** Node 24 from the `node` devDependency (the system Node is older and must not run Warren). */
export const NODE_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'node');

/**
 * A child environment with only what a process needs to run (PATH, HOME, TMPDIR, locale): no KUBECONFIG, no
 * tokens and no WARREN_* settings leak in from the test runner's own environment.
 */
export function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TERM']) if (process.env[key] !== undefined) env[key] = process.env[key];
  return { ...env, ...extra };
}
