#!/usr/bin/env node
// Regenerates docs/configuration.md, docs/annotations.md and chart/values.schema.json from the settings schema,
// core's annotation specs and the built-in plugin manifests. Run it as `npm run generate` (which builds first).
// `node scripts/generate.js --check` writes nothing and exits 1 when a generated file is stale.
// Plugins use tsyringe, which needs the metadata polyfill loaded first (as in core/src/main.ts).
import 'reflect-metadata';
import { fileURLToPath } from 'node:url';
import { syncGeneratedFiles } from '../core/build/src/docgen/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const check = process.argv.includes('--check');
const statuses = await syncGeneratedFiles(root, check);
for (const { path, stale } of statuses) {
  process.stdout.write(`${stale ? (check ? 'stale    ' : 'updated  ') : 'unchanged'} ${path}\n`);
}
if (check && statuses.some((s) => s.stale)) {
  process.stderr.write('generated files are stale: run `npm run generate`\n');
  process.exitCode = 1;
}
