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
export { TOKENS } from './tokens.js';
// The DI library's decorators and types, from core's own copy: a plugin needs no tsyringe dependency of its own.
export { inject, injectable, injectAll, Lifecycle, type DependencyContainer, type InjectionToken } from 'tsyringe';
export type { Route, RouteTable, ServiceBackend, Endpoint, BackendProtocol, IngressRef, RouteOwnerKind, Diagnostic } from '../model/routes.js';
export { routeOwnerKind, isIngressOwned, routeOwnerRef, routeOwnerKey, routeOwnerText } from '../model/route-owner.js';
export type { Exchange, RequestHead, ResponseHead, RawHeaders, ExchangeHandler, ExchangeFailure } from '../model/exchange.js';
export { headerValue } from '../model/exchange.js';
export { WarrenError, ErrorCode, isWarrenError } from '../errors.js';
export { duration, durationAnnotation, parseDuration } from '../config/duration.js';
