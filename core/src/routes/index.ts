/** The routing model: snapshot in, immutable route table out, published through the store. */
export * from './snapshot.js';
export { RouteTableBuilder, routingConfig, type RoutingConfig, type RouteTableBuilderOptions } from './build.js';
export { RouteStore, type RouteTableListener, type WaitForOptions } from './store.js';
export { emptyRouteTable } from './table.js';
export { RoutingPlugins } from './plugins.js';
export { CORE_APP_PROTOCOLS, ProtocolCatalog } from './protocol.js';
export { CORE_ANNOTATIONS, CORE_PROTOCOL_VALUES } from './core-annotations.js';
export { MAX_PATHS_PER_INGRESS } from './translate.js';
export { LEGACY_CLASS_ANNOTATION, DEFAULT_CLASS_ANNOTATION, type IngressClassConfig } from './ingress-class.js';
export { requestHost } from './hosts.js';
export { requestPath } from './paths.js';
