import type { IncomingHttpHeaders } from 'node:http2';
import { deserializeHeaders, type DecodedHeader } from '../tunnel/header-serialization.js';
import { HEADER_RESPONSE_HEADERS, HEADER_RESPONSE_META } from '../tunnel/protocol.js';

/** What the connector answered on a tunnel stream, decoded the way the edge decodes it. */
export interface TunnelResponseHead {
  /** `:status` as sent (200 for an accepted WebSocket, never 101). */
  readonly status: number;
  /** Parsed `cf-cloudflared-response-meta`, undefined when absent. */
  readonly meta: { readonly src?: string; readonly flow_rate_limited?: boolean } | undefined;
  /** The meta header's exact bytes. */
  readonly metaRaw: string | undefined;
  /** True when the serialized header set was present (origin responses always carry it, maybe empty). */
  readonly hasSerializedHeaders: boolean;
  /** The origin's headers from `cf-cloudflared-response-headers`, in order, case and repeats as sent. */
  readonly headers: readonly DecodedHeader[];
  /** The real HTTP/2 response headers. */
  readonly h2Headers: IncomingHttpHeaders;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Decodes a response head; throws a WarrenError (TunnelProtocol) when the serialized headers are malformed. */
export function decodeTunnelResponse(h2Headers: IncomingHttpHeaders): TunnelResponseHead {
  const metaRaw = single(h2Headers[HEADER_RESPONSE_META]);
  let meta: TunnelResponseHead['meta'];
  if (metaRaw !== undefined) {
    try {
      const parsed: unknown = JSON.parse(metaRaw);
      meta = typeof parsed === 'object' && parsed !== null ? (parsed as TunnelResponseHead['meta']) : undefined;
    } catch {
      meta = undefined;
    }
  }
  const serialized = single(h2Headers[HEADER_RESPONSE_HEADERS]);
  return {
    status: Number(h2Headers[':status']),
    meta,
    metaRaw,
    hasSerializedHeaders: serialized !== undefined,
    headers: serialized === undefined ? [] : deserializeHeaders(serialized),
    h2Headers,
  };
}

/** Hop-by-hop headers an edge never forwards as such to the eyeball. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);
