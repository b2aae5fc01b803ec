/**
 * Generators of the references that must never drift from the code: `docs/configuration.md` (from the settings
 * schema), `docs/annotations.md` (from core's and the plugins' annotation specs) and `chart/values.schema.json`
 * (the settings schema laid out as Helm values). Run them with `npm run generate`; tests fail when a committed
 * file differs from what these functions produce.
 */
export { generateReferences, syncGeneratedFiles, GENERATED_PATHS } from './generate.js';
export { envVarFor } from './configuration.js';
export { chartValueFor } from './chart-values.js';
