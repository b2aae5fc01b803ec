import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CORE_ANNOTATIONS } from '../routes/core-annotations.js';
import { renderAdmissionPolicy } from './admission-policy.js';
import { renderAnnotationReference } from './annotations.js';
import { buildValuesJsonSchema } from './chart-values.js';
import { renderConfigurationReference } from './configuration.js';
import { loadBuiltinPluginModules } from './plugins.js';

/** A generated file: its path relative to the repository root, and its full text. */
export interface GeneratedFile {
  readonly path: string;
  readonly text: string;
}

/** The files `npm run generate` writes, relative to the repository root. */
export const GENERATED_PATHS = ['docs/configuration.md', 'docs/annotations.md', 'chart/values.schema.json', 'chart/templates/validating-admission-policy.yaml'] as const;

/**
 * Produces every generated reference from the sources of truth: `config/schema.ts`, core's annotation specs
 * and the built-in plugins' manifests and settings schemas. Pure apart from importing the plugin packages;
 * the same sources always give byte-identical text.
 */
export async function generateReferences(): Promise<GeneratedFile[]> {
  const plugins = await loadBuiltinPluginModules();
  return [
    { path: 'docs/configuration.md', text: renderConfigurationReference(plugins) },
    { path: 'docs/annotations.md', text: renderAnnotationReference(CORE_ANNOTATIONS, plugins) },
    { path: 'chart/values.schema.json', text: `${JSON.stringify(buildValuesJsonSchema(plugins), null, 2)}\n` },
    { path: 'chart/templates/validating-admission-policy.yaml', text: renderAdmissionPolicy(CORE_ANNOTATIONS, plugins) },
  ];
}

/** Outcome for one generated file. */
export interface GeneratedFileStatus {
  readonly path: string;
  /** True when the file on disk differs from freshly generated text (or is missing). */
  readonly stale: boolean;
}

/**
 * Compares (and unless `check` is set, rewrites) the generated files under `root`. Returns which were stale;
 * with `check`, nothing is written.
 */
export async function syncGeneratedFiles(root: string, check = false): Promise<GeneratedFileStatus[]> {
  const statuses: GeneratedFileStatus[] = [];
  for (const file of await generateReferences()) {
    const target = join(root, file.path);
    const current = await readFile(target, 'utf8').catch(() => undefined);
    const stale = current !== file.text;
    if (stale && !check) await writeFile(target, file.text);
    statuses.push({ path: file.path, stale });
  }
  return statuses;
}
