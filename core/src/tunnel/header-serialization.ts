import { ErrorCode, WarrenError } from '../errors.js';
import type { RawHeaders } from '../proxy/exchange.js';

/**
 * The `cf-cloudflared-response-headers` format: each (name, value) pair becomes
 * `B(name) ":" B(value)`, pairs joined by `";"`, where B is standard-alphabet base64 WITHOUT padding.
 * Values are raw bytes; they never pass HTTP/2 header validation, which is the point of the scheme.
 *
 * Strings are turned into bytes as latin1 when every code unit fits in a byte (Node's own mapping of raw
 * HTTP/1.1 header bytes to strings, so origin bytes round-trip exactly) and as UTF-8 otherwise.
 */

/** Lower-case prefixes of header names that are never serialized (transport-internal). */
const EXCLUDED_PREFIXES = [':', 'cf-int-', 'cf-cloudflared-', 'cf-proxy-'] as const;

/** True when a response header must not be carried in the serialized set. */
export function isExcludedResponseHeader(name: string): boolean {
  const lower = name.toLowerCase();
  for (const prefix of EXCLUDED_PREFIXES) if (lower.startsWith(prefix)) return true;
  return false;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is all of Latin-1, control characters included
const NON_LATIN1 = /[^\u0000-\u00ff]/;

function toBytes(text: string): Buffer {
  return Buffer.from(text, NON_LATIN1.test(text) ? 'utf8' : 'latin1');
}

function encode(text: string): string {
  const b64 = toBytes(text).toString('base64');
  let end = b64.length;
  while (end > 0 && b64.charCodeAt(end - 1) === 61 /* = */) end--;
  return end === b64.length ? b64 : b64.slice(0, end);
}

/**
 * Serializes headers in the given order (names keep their case, repeated names stay repeated), dropping
 * excluded names and empty names. Returns `""` for an empty set.
 */
export function serializeHeaders(headers: RawHeaders): string {
  let out = '';
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 0 || isExcludedResponseHeader(name)) continue;
    if (out.length > 0) out += ';';
    out += `${encode(name)}:${encode(headers[i + 1]!)}`;
  }
  return out;
}

/** One decoded pair; `name`/`value` are the bytes as latin1 strings, so they round-trip byte for byte. */
export type DecodedHeader = readonly [name: string, value: string];

const UNPADDED_B64 = /^[A-Za-z0-9+/]*$/;

function decodeToken(token: string, what: string, index: number): string {
  if (!UNPADDED_B64.test(token) || token.length % 4 === 1) {
    throw malformed(`pair ${index}: ${what} is not unpadded standard base64`);
  }
  return Buffer.from(token, 'base64').toString('latin1');
}

function malformed(detail: string): WarrenError {
  return new WarrenError(ErrorCode.TunnelProtocol, `unable to deserialize cf-cloudflared-response-headers: ${detail}`);
}

/**
 * Decodes a serialized header set (what the edge does with the response header). Empty items are skipped; every other item must
 * hold exactly one `:` between two valid unpadded base64 tokens, and the name must not be empty.
 * Throws a WarrenError (TunnelProtocol) naming the offending pair otherwise.
 */
export function deserializeHeaders(serialized: string): DecodedHeader[] {
  const out: DecodedHeader[] = [];
  if (serialized.length === 0) return out;
  const items = serialized.split(';');
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (item.length === 0) continue;
    const colon = item.indexOf(':');
    if (colon < 0 || item.indexOf(':', colon + 1) >= 0) throw malformed(`pair ${i}: expected exactly one ":"`);
    const name = decodeToken(item.slice(0, colon), 'name', i);
    if (name.length === 0) throw malformed(`pair ${i}: empty header name`);
    out.push([name, decodeToken(item.slice(colon + 1), 'value', i)]);
  }
  return out;
}
