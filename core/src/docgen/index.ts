/**
 * Generators of the references that must never drift from the code: `docs/configuration.md` (from the settings
 * schema), `docs/annotations.md` (from core's and the plugins' annotation specs) and `chart/values.schema.json`
 * (the settings schema laid out as Helm values). Run them with `npm run generate`; tests fail when a committed
 * file differs from what these functions produce.
 */
export { generateReferences, syncGeneratedFiles, GENERATED_PATHS, type GeneratedFile, type GeneratedFileStatus } from './generate.js';
export { renderConfigurationReference, envVarFor } from './configuration.js';
export { renderAnnotationReference } from './annotations.js';
export { buildValuesJsonSchema, chartValuesSchema, chartValueFor, CHART_MAPPING } from './chart-values.js';
export { loadBuiltinPluginModules } from './plugins.js';
