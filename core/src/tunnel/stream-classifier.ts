import type { IncomingHttpHeaders } from 'node:http2';
import { HEADER_CONNECTION_UPGRADE, HEADER_PROXY_SRC, UPGRADE_CONTROL_STREAM, UPGRADE_UPDATE_CONFIGURATION, UPGRADE_WEBSOCKET } from './protocol.js';

/** What an edge-opened stream carries. */
export type StreamKind = 'configuration' | 'websocket' | 'tcp' | 'control' | 'http';

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Classifies a stream by its request headers, in this precedence: configuration update,
 * WebSocket, raw TCP (any non-empty `cf-cloudflared-proxy-src`), control stream, plain HTTP. Values are
 * compared exactly (case-sensitive); with repeated headers the first value counts.
 */
export function classifyStream(headers: IncomingHttpHeaders): StreamKind {
  const upgrade = first(headers[HEADER_CONNECTION_UPGRADE]);
  if (upgrade === UPGRADE_UPDATE_CONFIGURATION) return 'configuration';
  if (upgrade === UPGRADE_WEBSOCKET) return 'websocket';
  const src = first(headers[HEADER_PROXY_SRC]);
  if (src !== undefined && src !== '') return 'tcp';
  if (upgrade === UPGRADE_CONTROL_STREAM) return 'control';
  return 'http';
}

/** {@link classifyStream} over a flat `[name, value, …]` list (names lower-case, as HTTP/2 delivers them). */
export function classifyRawHeaders(headers: readonly string[]): StreamKind {
  let upgrade: string | undefined;
  let src: string | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    if (name === HEADER_CONNECTION_UPGRADE) upgrade ??= headers[i + 1];
    else if (name === HEADER_PROXY_SRC) src ??= headers[i + 1];
  }
  return classifyStream({ [HEADER_CONNECTION_UPGRADE]: upgrade, [HEADER_PROXY_SRC]: src });
}
