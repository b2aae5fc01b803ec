/**
 * The native Cloudflare Tunnel connector (HTTP/2 transport). See docs/tunnel.md.
 */
export { TunnelConnector, DEFAULT_FEATURES, LOCAL_CONFIG_JSON } from './connector.js';
export type { TunnelConnectorOptions, TunnelConfig } from './connector.js';
export { EdgeConnection, originLocalIp } from './connection.js';
export type { EdgeConnectionOptions, ConnectionLimits } from './connection.js';
export {
  parseTunnelToken,
  parseCredentialsJson,
  loadTunnelCredentials,
  encodeTunnelToken,
  encodeCredentialsJson,
  makeCredentials,
  describeCredentials,
  uuidToBytes,
  bytesToUuid,
} from './credentials.js';
export type { TunnelCredentials, CredentialSources } from './credentials.js';
export { discoverEdge, parseEdgeAddress, srvServiceName, EdgeAddressPool, EdgeRegion, FAMILY_FALLBACK_MS } from './discovery.js';
export type { EdgeAddress, EdgeResolver, EdgeIpVersion, SrvAnswer, DiscoveryOptions } from './discovery.js';
export { createEdgeSecureContext, edgeTrustRoots, dialEdge } from './edge-tls.js';
export { CLOUDFLARE_EDGE_ROOTS } from './cloudflare-roots.js';
export { serializeHeaders, deserializeHeaders, isExcludedResponseHeader } from './header-serialization.js';
export type { DecodedHeader } from './header-serialization.js';
export { classifyStream } from './stream-classifier.js';
export type { StreamKind } from './stream-classifier.js';
export { buildRequestHead } from './request-head.js';
export { TunnelExchange } from './tunnel-exchange.js';
export { ConfigurationVersions, parseConfigurationUpdate } from './configuration-update.js';
export { TunnelConnectionError } from './errors.js';
export type { ConnectionFailureKind } from './errors.js';
export { TunnelMetrics } from './metrics.js';
export { Backoff } from './backoff.js';
export * from './protocol.js';
