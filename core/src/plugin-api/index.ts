/**
 * `@warren/core/plugin`: the public contract custom plugins are written against. Everything else in
 * `@warren/core` is private and may change without notice.
 */
export * from './manifest.js';
export * from './module.js';
export * from './lifecycle.js';
export * from './upstream.js';
export * from './exchange-key.js';
export * from './control.js';
export { TOKENS, pluginConfigToken } from '../di/tokens.js';
export type { Route, RouteTable, ServiceBackend, Endpoint, BackendProtocol, IngressRef, Diagnostic } from '../routes/types.js';
export type { Exchange, RequestHead, ResponseHead, RawHeaders, ExchangeHandler, ExchangeFailure } from '../proxy/exchange.js';
export { WarrenError, ErrorCode, isWarrenError } from '../errors.js';
export { duration, parseDuration } from '../config/duration.js';
