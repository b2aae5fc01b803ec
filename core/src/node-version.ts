/**
 * The Node.js version check that runs before anything else. This module imports nothing, so it loads on any
 * Node: the rest of Warren imports APIs that older versions lack (a missing named export fails while modules are
 * linked, before any code could explain it).
 */

/** The oldest Node.js Warren runs on (the root package's `engines.node`). */
const MIN_NODE_VERSION = '24.12.0';

/** Undefined when `version` (e.g. `process.versions.node`) is new enough, else the line to print. */
export function nodeVersionProblem(version: string, min: string = MIN_NODE_VERSION): string | undefined {
  const have = version
    .replace(/^v/, '')
    .split('.')
    .map((n) => Number.parseInt(n, 10) || 0);
  const need = min.split('.').map(Number);
  for (let i = 0; i < need.length; i++) {
    const a = have[i] ?? 0;
    const b = need[i]!;
    if (a > b) return undefined;
    if (a < b) {
      return `Warren needs Node.js ${min} or newer, but runs on Node.js ${version.replace(/^v/, '')}. Install Node.js 24 LTS, or in the repository use the pinned one: npm run … scripts and npx node use it.`;
    }
  }
  return undefined;
}
