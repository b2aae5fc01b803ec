import { ErrorCode, WarrenError } from '../errors.js';
import type { RawHeaders } from '../proxy/exchange.js';
import { lowerCase } from '../model/exchange.js';

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
  // Every excluded prefix is ':' or starts with 'cf': most names are decided by their first two characters.
  const first = name.charCodeAt(0);
  if (first === 58 /* : */) return true;
  if ((first | 0x20) !== 99 /* c */ || (name.charCodeAt(1) | 0x20) !== 102 /* f */) return false;
  const lower = lowerCase(name);
  for (const prefix of EXCLUDED_PREFIXES) if (lower.startsWith(prefix)) return true;
  return false;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is all of Latin-1, control characters included
const NON_LATIN1 = /[^\u0000-\u00ff]/;

/** The standard base64 alphabet, by 6-bit value. */
const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');

/** Where the serialized set is built (grown as needed, up to the largest set serialized). */
let scratch = Buffer.allocUnsafe(4096);

/**
 * Writes the unpadded base64 of `text`'s bytes at `at` and returns where it ends. `text` is one byte per
 * character (latin1); `out` has room for 4 characters per 3 of `text`, rounded up.
 */
function writeBase64(text: string, out: Buffer, at: number): number {
  const n = text.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (text.charCodeAt(i) << 16) | (text.charCodeAt(i + 1) << 8) | text.charCodeAt(i + 2);
    out[at++] = BASE64[v >>> 18]!;
    out[at++] = BASE64[(v >>> 12) & 63]!;
    out[at++] = BASE64[(v >>> 6) & 63]!;
    out[at++] = BASE64[v & 63]!;
  }
  if (n - i === 2) {
    const v = (text.charCodeAt(i) << 8) | text.charCodeAt(i + 1);
    out[at++] = BASE64[v >>> 10]!;
    out[at++] = BASE64[(v >>> 4) & 63]!;
    out[at++] = BASE64[(v << 2) & 63]!;
  } else if (n - i === 1) {
    const v = text.charCodeAt(i);
    out[at++] = BASE64[v >>> 2]!;
    out[at++] = BASE64[(v << 4) & 63]!;
  }
  return at;
}

/** The string's bytes, one per character: itself when it is latin1, else its UTF-8 bytes. */
function byteString(text: string): string {
  return NON_LATIN1.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

/**
 * Serializes headers in the given order (names keep their case, repeated names stay repeated), dropping
 * excluded names and empty names. Returns `""` for an empty set.
 */
export function serializeHeaders(headers: RawHeaders): string {
  let out = scratch;
  let at = 0;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 0 || isExcludedResponseHeader(name)) continue;
    const nameBytes = byteString(name);
    const valueBytes = byteString(headers[i + 1]!);
    const need = at + 2 + Math.ceil(nameBytes.length / 3) * 4 + Math.ceil(valueBytes.length / 3) * 4;
    if (need > out.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * out.length));
      out.copy(grown, 0, 0, at);
      scratch = out = grown;
    }
    if (at > 0) out[at++] = 59; /* ; */
    at = writeBase64(nameBytes, out, at);
    out[at++] = 58; /* : */
    at = writeBase64(valueBytes, out, at);
  }
  return out.toString('latin1', 0, at);
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
