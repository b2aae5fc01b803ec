export { configSchema, type Config, type ConfigInput } from './schema.js';
export { loadConfig, parseConfig, formatIssues, type ConfigSources } from './load.js';
export { duration, parseDuration } from './duration.js';
export { deepFreeze } from './freeze.js';
