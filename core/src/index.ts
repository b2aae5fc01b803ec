export * from './config/index.js';
export * from './errors.js';
export * from './plugin-api/index.js';
export * from './plugins/registry.js';
export { BUILTIN_PLUGINS } from './plugins/builtin.js';
export { CORE_VERSION } from './version.js';
export type * from './routes/types.js';
export * from './routes/index.js';
export * from './cloudflare/index.js';
