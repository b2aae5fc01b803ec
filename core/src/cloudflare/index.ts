/** Cloudflare account integration: the SDK client factory, request budget, zones, ownership and the tunnel lifecycle. */
export type { default as Cloudflare } from 'cloudflare';
export * from './api-token.js';
export * from './client.js';
export * from './errors.js';
export * from './metrics.js';
export * from './ownership.js';
export * from './plans.js';
export * from './redact.js';
export * from './request-budget.js';
export * from './secret-store.js';
export * from './tunnel-credentials.js';
export * from './tunnel-lifecycle.js';
export * from './zones.js';
