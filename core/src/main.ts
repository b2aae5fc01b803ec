#!/usr/bin/env node
// Process entry point. Only the version check is imported statically: everything else is loaded once the Node.js
// version is known to be new enough (see node-version.ts).
import { nodeVersionProblem } from './node-version.js';

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(`warren: ${problem}\n`);
  process.exitCode = 1;
} else {
  await import('reflect-metadata');
  const { main } = await import('./cli.js');
  process.exitCode = await main(process.argv.slice(2));
}
