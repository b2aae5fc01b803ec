/**
 * Wire constants of Cloudflare Tunnel over HTTP/2 (reference: cloudflared-http2-protocol.md §3, §4).
 * Header names are lower-case as they travel in HTTP/2; values are compared exactly (case-sensitive).
 */

/** TLS server name the connector verifies the edge certificate against (§3). */
export const EDGE_SERVER_NAME = 'h2.cftunnel.com';

/** Request header that marks special streams (§4.3). */
export const HEADER_CONNECTION_UPGRADE = 'cf-cloudflared-proxy-connection-upgrade';
/** Request header whose non-empty presence marks a raw TCP ("WARP routing") stream (§4.3, §4.9). */
export const HEADER_PROXY_SRC = 'cf-cloudflared-proxy-src';
/** Response header carrying the origin's headers serialized as unpadded base64 pairs (§4.5). */
export const HEADER_RESPONSE_HEADERS = 'cf-cloudflared-response-headers';
/** Response header telling the edge who produced the response (§4.5, §4.6). */
export const HEADER_RESPONSE_META = 'cf-cloudflared-response-meta';

export const UPGRADE_WEBSOCKET = 'websocket';
export const UPGRADE_CONTROL_STREAM = 'control-stream';
export const UPGRADE_UPDATE_CONFIGURATION = 'update-configuration';

/** Exact meta bytes for a response that came from the origin. */
export const META_ORIGIN = '{"src":"origin"}';
/** Exact meta bytes for a response the connector generated itself (errors). */
export const META_CLOUDFLARED = '{"src":"cloudflared"}';

/** The edge adds this with the eyeball's address; Warren uses it as the exchange's client address. */
export const HEADER_CONNECTING_IP = 'cf-connecting-ip';

/**
 * Settings the connector announces as HTTP/2 server (§4.2, §10): at least as permissive as cloudflared's
 * Go server. MAX_CONCURRENT_STREAMS is cloudflared's `math.MaxUint32`.
 */
export const CONNECTOR_H2_SETTINGS = {
  headerTableSize: 4096,
  maxConcurrentStreams: 4_294_967_295,
  initialWindowSize: 1_048_576,
  maxFrameSize: 1_048_576,
  maxHeaderListSize: 1_048_896,
} as const;

/** Connection-level receive window the connector opens to (§4.2: WINDOW_UPDATE to 1 MiB). */
export const CONNECTOR_CONNECTION_WINDOW = 1_048_576;
