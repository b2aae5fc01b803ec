import type { RequestHead } from '../proxy/exchange.js';
import { HEADER_CONNECTING_IP } from './protocol.js';

/**
 * Turns the HTTP/2 request headers of a tunnel stream into the pipeline's `RequestHead`.
 * `:method`, `:path` and `:authority` (or `host`) carry the eyeball request; `:scheme` is ignored (the edge
 * terminated TLS, so the scheme is `https`). Every other header is passed in wire order, except the
 * transport-internal `cf-cloudflared-*` ones. Cookie crumbs are joined with "; " (RFC 9113 §8.2.3) because
 * the request continues over HTTP/1.1.
 */

export type RequestHeadResult = { ok: true; head: RequestHead } | { ok: false; field: string; problem: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^\d{1,15}$/;

/**
 * Builds the head from Node's flat `rawHeaders` (`[name, value, name, value, …]`, lower-case names).
 * `endStream` is true when the HEADERS frame ended the request (no body: `contentLength` 0).
 * Returns the offending field instead of throwing for malformed input.
 */
export function buildRequestHead(rawHeaders: readonly string[], upgrade: 'websocket' | undefined, endStream = false): RequestHeadResult {
  let method: string | undefined;
  let path: string | undefined;
  let authority: string | undefined;
  let host: string | undefined;
  let clientAddress: string | undefined;
  let contentLength: string | undefined;
  let cookies: string[] | undefined;
  const headers: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':authority') authority = value;
      continue;
    }
    if (name.startsWith('cf-cloudflared-')) continue;
    if (name === 'cookie') {
      (cookies ??= []).push(value);
      continue;
    }
    if (name === 'host') host ??= value;
    else if (name === 'content-length') {
      if (contentLength !== undefined && contentLength !== value) return { ok: false, field: 'content-length', problem: 'differing values' };
      contentLength = value;
    } else if (name === HEADER_CONNECTING_IP) clientAddress ??= value;
    headers.push(name, value);
  }
  if (cookies) headers.push('cookie', cookies.join('; '));
  if (method === undefined || !TOKEN.test(method)) return { ok: false, field: ':method', problem: method === undefined ? 'missing' : 'not a token' };
  if (path === undefined || path === '') return { ok: false, field: ':path', problem: 'missing' };
  if (path[0] !== '/' && !(path === '*' && method === 'OPTIONS')) return { ok: false, field: ':path', problem: 'must start with "/"' };
  const effectiveAuthority = authority ?? host;
  if (effectiveAuthority === undefined || effectiveAuthority === '') return { ok: false, field: ':authority', problem: 'missing' };
  let length: number | undefined;
  if (contentLength !== undefined) {
    if (!DIGITS.test(contentLength)) return { ok: false, field: 'content-length', problem: 'not a decimal number' };
    length = Number(contentLength);
  }
  return {
    ok: true,
    head: {
      method,
      scheme: 'https',
      authority: effectiveAuthority,
      path,
      headers,
      clientAddress,
      forwardedBy: 'edge',
      upgrade,
      contentLength: upgrade ? undefined : (length ?? (endStream ? 0 : undefined)),
    },
  };
}
