/**
 * Wire constants of Cloudflare Tunnel over HTTP/2.
 * Header names are lower-case as they travel in HTTP/2; values are compared exactly (case-sensitive).
 */

/** TLS server name the connector verifies the edge certificate against. */
export const EDGE_SERVER_NAME = 'h2.cftunnel.com';

/** Request header that marks special streams. */
export const HEADER_CONNECTION_UPGRADE = 'cf-cloudflared-proxy-connection-upgrade';
/** Request header whose non-empty presence marks a raw TCP ("WARP routing") stream. */
export const HEADER_PROXY_SRC = 'cf-cloudflared-proxy-src';
/** Response header carrying the origin's headers serialized as unpadded base64 pairs. */
export const HEADER_RESPONSE_HEADERS = 'cf-cloudflared-response-headers';
/** Response header telling the edge who produced the response. */
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
 * Settings the connector announces as HTTP/2 server: at least as permissive as what the edge is used to from
 * other connectors. MAX_CONCURRENT_STREAMS is 2^32 − 1, in effect unlimited.
 */
export const CONNECTOR_H2_SETTINGS = {
  headerTableSize: 4096,
  maxConcurrentStreams: 4_294_967_295,
  initialWindowSize: 1_048_576,
  maxFrameSize: 1_048_576,
  maxHeaderListSize: 1_048_896,
} as const;

/** Connection-level receive window the connector opens to (WINDOW_UPDATE to 1 MiB). */
export const CONNECTOR_CONNECTION_WINDOW = 1_048_576;
