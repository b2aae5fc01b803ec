import { headerValue, lowerCase } from '../model/exchange.js';
import type { ListenerScope, RequestFacts } from './types.js';

/**
 * Which Gateway listener a request reaches (see {@link ListenerScope}): by the port the visitor used at
 * Cloudflare's edge, and by its host.
 *
 * The tunnel does not carry the port the edge received a request on; the Host does, as the visitor sent it
 * (`shop.example.com:8080`; the edge passes it through unchanged), but it is only the client's statement. A Host
 * port is therefore taken when the edge serves the visitor's scheme on it — then it is the port the visitor
 * connected to, as clients state it — and otherwise (no port, or one the edge accepts no connection on, such as
 * `:1234`) the request came to the scheme's default port.
 */

/** The default port of each scheme a visitor may use. */
const DEFAULT_PORTS: Readonly<Record<'http' | 'https', number>> = { http: 80, https: 443 };
/** The ports Cloudflare's edge serves each scheme on (proxied hostnames). */
const EDGE_PORTS: Readonly<Record<'http' | 'https', ReadonlySet<number>>> = {
  http: new Set([80, 8080, 8880, 2052, 2082, 2086, 2095]),
  https: new Set([443, 2053, 2083, 2087, 2096, 8443]),
};

/** The visitor's scheme as Cloudflare's edge states it: its X-Forwarded-Proto, else Cf-Visitor's `scheme`, else `https`. */
export function edgeScheme(forwardedProto: string | undefined, visitor: string | undefined): 'http' | 'https' {
  const stated = forwardedProto === undefined ? undefined : lowerCase(forwardedProto.trim());
  if (stated === 'http' || stated === 'https') return stated;
  if (visitor !== undefined) {
    try {
      const scheme = (JSON.parse(visitor) as { scheme?: unknown } | null)?.scheme;
      if (scheme === 'http' || scheme === 'https') return scheme;
    } catch {
      // not JSON: fall through to the tunnel's own scheme
    }
  }
  return 'https';
}

/**
 * The port a request arrived on at the edge: its Host's port (`authority` as sent: `host`, `host:port`,
 * `[v6]:port`) when the edge serves the scheme it states in `request`'s headers on that port, else that scheme's
 * default port.
 */
export function edgeRequestPort(authority: string, request: RequestFacts | undefined): number {
  const headers = request?.headers ?? [];
  const scheme = edgeScheme(headerValue(headers, 'x-forwarded-proto'), headerValue(headers, 'cf-visitor'));
  const close = authority.charCodeAt(0) === 91 /* [ */ ? authority.indexOf(']') : -1;
  const colon = authority.indexOf(':', close + 1);
  if (colon !== -1) {
    const port = Number(authority.slice(colon + 1));
    if (EDGE_PORTS[scheme].has(port)) return port;
  }
  return DEFAULT_PORTS[scheme];
}

/** True when listener hostname `pattern` (lower-case; a wildcard covers one or more labels) matches request `host`. */
export function listenerHostMatches(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === host;
  return host.length > pattern.length - 1 && host.endsWith(pattern.slice(1));
}

/** True when one of `scopes` is the listener its Gateway picks for a request to `host` (lower-case, no port) on `port`. */
export function listenerPicked(scopes: readonly ListenerScope[], host: string, port: number): boolean {
  for (const s of scopes) {
    if (!s.ports.includes(port)) continue;
    if (s.hostname !== undefined && !listenerHostMatches(s.hostname, host)) continue;
    if (s.yieldsTo.some((h) => listenerHostMatches(h, host))) continue;
    return true;
  }
  return false;
}
