/** The proxy pipeline's public surface inside `@warren/core` (wiring and tests). */
export { Pipeline, type PipelineOptions, type RouteTableSource } from './pipeline.js';
export { PluginSetMembers, sortPlugins } from './plugin-set.js';
export { HttpEntry, startHttpEntry, type HttpEntryOptions } from './http-entry.js';
export { failExchange, toWarrenError, httpStatusOf } from './errors.js';
export { createProxyMetrics, type ProxyMetrics } from './metrics.js';
