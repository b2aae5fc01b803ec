import { ErrorCode, WarrenError } from '../errors.js';
import { validAuthority } from '../routes/hosts.js';
import { edgeScheme } from '../routes/listener-scope.js';
import { canonicalRequestTarget, DEFAULT_PATH_POLICY, type PathPolicy } from '../routes/paths.js';
import { headerValue, lowerCase } from '../model/exchange.js';
import type { RequestFacts } from '../routes/types.js';
import type { RawHeaders, RequestHead } from './exchange.js';

/**
 * Request-head checks and header rewriting between the client and the upstream (RFC 9110 §7.6.1 hop-by-hop
 * fields, RFC 9112 §6.3 message framing). One pass to validate, one to build the upstream list; no regex per
 * header on the happy path except the byte checks.
 */

export interface HeaderLimits {
  /** Largest header block in bytes (names + values + 4 per field, as on the HTTP/1.1 wire). */
  readonly maxHeaderBytes: number;
  readonly maxRequestHeaders: number;
  /** How the path is canonicalised (settings `proxy.paths`); the defaults when absent. */
  readonly paths?: PathPolicy | undefined;
}

export interface UpstreamHeaderOptions {
  /** Host sent upstream instead of the client's (annotation `upstream-host`). */
  readonly hostOverride?: string | undefined;
  /** Send the client's Host (setting `proxy.preserveHost`); false lets the client library use the endpoint. */
  readonly preserveHost: boolean;
  /**
   * Validated body length (`validateRequestHead`), sent as the one `content-length`; undefined sends none
   * (streamed body, or no body).
   */
  readonly contentLength: number | undefined;
}

/**
 * What a valid request head says: its canonical target and its framing, and the facts route conditions are
 * checked against (method, header list, raw query). It is the `RequestFacts` the route table's `match` receives,
 * so matching allocates nothing more; the query is cut from the target only when a condition asks for it.
 */
export class RequestFraming implements RequestFacts {
  readonly method: string;
  /** The request's flat header list (lower-case names), as on the exchange head. */
  readonly headers: RawHeaders;
  #query: string | undefined;

  constructor(
    head: RequestHead,
    /** The canonical path (query excluded): what routes are matched on. */
    readonly path: string,
    /** The canonical path plus the query as the client sent it: what the upstream receives. */
    readonly target: string,
    /** Declared body length, or undefined when there is none or it is streamed. */
    readonly contentLength: number | undefined,
    readonly chunked: boolean,
    /** The `content-length` to send upstream: declared by the client, or known and non-zero. */
    readonly sendLength: number | undefined,
  ) {
    this.method = head.method;
    this.headers = head.headers;
  }

  /** The raw query string without `?` (`''` when there is none). */
  get query(): string {
    if (this.#query === undefined) {
      const q = this.target.indexOf('?');
      this.#query = q === -1 ? '' : this.target.slice(q + 1);
    }
    return this.#query;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, space and tab. CR, LF, NUL and other controls are refused.
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\x21-\xff]/;

/**
 * Request fields never copied as they are: hop-by-hop fields (plus whatever `Connection` names), `host` and
 * `content-length` (re-emitted once, from the validated framing), and `expect` (the acceptor answers
 * `100-continue` itself).
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'proxy-connection', 'trailer', 'host', 'content-length', 'expect']);
/**
 * Forwarding fields Warren writes itself (see `upstreamRequestHeaders`): whatever the request carried is
 * replaced, so a backend can trust them as far as it trusts Warren.
 */
const SET_BY_WARREN = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip']);
/**
 * Fields that frameworks read as statements of a trusted proxy about the client, its scheme, host, port or the
 * original URL, and that neither Warren nor Cloudflare's edge sets: a visitor sends them at will. Dropped.
 */
const SPOOFABLE = new Set([
  'forwarded',
  'x-forwarded',
  'forwarded-for',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-ssl',
  'x-forwarded-scheme',
  'x-url-scheme',
  'front-end-https',
  'x-client-ip',
  'x-cluster-client-ip',
  'client-ip',
  'x-original-url',
  'x-rewrite-url',
]);
/**
 * True for a request field that the proxy itself owns on the upstream request — framing, hop-by-hop, `host` and
 * `expect` (see `HOP_BY_HOP`) and `proxy-*` — which a configured header edit therefore may not touch.
 */
export function proxyOwnedRequestField(name: string): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-');
}

/** True for a response field that the proxy owns towards the client: hop-by-hop fields and `content-length` (framing). */
export function proxyOwnedResponseField(name: string): boolean {
  return RESPONSE_HOP_BY_HOP.has(name) || name === 'content-length';
}

/** True when `name` is an HTTP token (a valid field name). */
export function validFieldName(name: string): boolean {
  return TOKEN.test(name);
}

/** True when `value` is a valid field value: no CR, LF, NUL or other control bytes. */
export function validFieldValue(value: string): boolean {
  return !BAD_VALUE.test(value);
}

/** Fields only Cloudflare's edge may set: passed from the edge, dropped from a direct client. */
const EDGE_ONLY = new Set(['cf-connecting-ip', 'cf-connecting-ipv6', 'cf-pseudo-ipv4', 'cf-visitor', 'cf-ipcountry']);

function badRequest(message: string, status = 400): WarrenError {
  return new WarrenError(ErrorCode.BadRequest, message, { status, terminal: true });
}

/**
 * Rejects hostile or malformed request heads: too many or too large header fields (431), invalid bytes in
 * names, values, method or path, a Host that is more than a host and port (see `validAuthority`), a path that canonicalisation refuses (400, or 414 when too long; see
 * `canonicalRequestTarget`), and ambiguous framing (request smuggling: conflicting Content-Length values,
 * Content-Length together with Transfer-Encoding, a Transfer-Encoding that does not end in chunked) (400).
 * Throws a `WarrenError` (`BadRequest`, with `status`) whose message names the offending field; messages go to
 * logs only, never to the client (see `errors.ts`).
 */
export function validateRequestHead(head: RequestHead, limits: HeaderLimits): RequestFraming {
  const fields = head.headers.length >> 1;
  if (fields > limits.maxRequestHeaders) {
    throw badRequest(`request has ${fields} header fields; at most ${limits.maxRequestHeaders} are accepted (proxy.maxRequestHeaders)`, 431);
  }
  const target = checkRequestLine(head, limits.paths ?? DEFAULT_PATH_POLICY);
  const { contentLength, transferEncoding } = scanFields(head.headers, limits.maxHeaderBytes);
  if (transferEncoding !== undefined) checkChunked(transferEncoding, contentLength);
  const chunked = transferEncoding !== undefined;
  const declared = contentLength === undefined ? undefined : Number(contentLength);
  if (declared !== undefined && head.contentLength !== undefined && head.contentLength !== declared) {
    throw badRequest(`request content-length ${declared} differs from the body length ${head.contentLength}`);
  }
  const length = declared ?? head.contentLength;
  const sendLength = declared !== undefined || (length !== undefined && length > 0) ? length : undefined;
  return new RequestFraming(head, target.path, target.target, length, chunked, sendLength);
}

/** Method, path and Host; returns the canonical target. */
function checkRequestLine(head: RequestHead, paths: PathPolicy): { readonly path: string; readonly target: string } {
  if (!TOKEN.test(head.method)) throw badRequest(`request method ${JSON.stringify(head.method)} is not a valid token`);
  if (head.path.length === 0 || BAD_PATH.test(head.path) || (head.path[0] !== '/' && !(head.path === '*' && head.method === 'OPTIONS'))) {
    throw badRequest(`request path ${JSON.stringify(head.path.slice(0, 200))} must start with "/" and contain no spaces or control characters`);
  }
  if (!validAuthority(head.authority)) {
    throw badRequest(`request host ${JSON.stringify(head.authority.slice(0, 200))} is not a host name or address with an optional port`);
  }
  const canonical = canonicalRequestTarget(head.path, paths);
  if (!canonical.ok) throw badRequest(`${canonical.problem}: ${JSON.stringify(head.path.slice(0, 200))}`, canonical.status);
  return canonical;
}

/**
 * One pass over the fields: valid names and values, the block within `maxHeaderBytes`, and the framing fields
 * collected (Content-Length values must agree; Transfer-Encoding values are joined).
 */
function scanFields(headers: RawHeaders, maxHeaderBytes: number): { contentLength: string | undefined; transferEncoding: string | undefined } {
  let bytes = 0;
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    bytes += name.length + value.length + 4;
    if (!TOKEN.test(name)) throw badRequest(`request header name ${JSON.stringify(name.slice(0, 100))} contains invalid characters`);
    if (BAD_VALUE.test(value)) throw badRequest(`request header "${name}" has a value with invalid characters (control characters, CR or LF)`);
    const lower = name.length === 14 || name.length === 17 ? lowerCase(name) : name;
    if (lower === 'content-length') {
      for (const part of value.split(',')) {
        const v = part.trim();
        if (!/^\d{1,15}$/.test(v)) throw badRequest(`request header "content-length" value ${JSON.stringify(value)} is not a number`);
        if (contentLength !== undefined && contentLength !== v) {
          throw badRequest(`request has conflicting content-length values ${contentLength} and ${v}`);
        }
        contentLength = v;
      }
    } else if (lower === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    }
  }
  if (bytes > maxHeaderBytes) {
    throw badRequest(`request header block is ${bytes} bytes; at most ${maxHeaderBytes} are accepted (proxy.maxHeaderBytes)`, 431);
  }
  return { contentLength, transferEncoding };
}

/** A Transfer-Encoding is unambiguous only alone (no Content-Length) and ending in chunked. */
function checkChunked(transferEncoding: string, contentLength: string | undefined): void {
  if (contentLength !== undefined) throw badRequest('request has both content-length and transfer-encoding (ambiguous framing)');
  const codings = transferEncoding
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c.length > 0);
  if (codings.length === 0 || codings[codings.length - 1] !== 'chunked') {
    throw badRequest(`request transfer-encoding ${JSON.stringify(transferEncoding)} must end with "chunked"`);
  }
}

/**
 * Builds the header list sent upstream as a flat `[name, value, …]` array with lower-case names:
 *  - drops hop-by-hop fields (Connection and the fields it names, Keep-Alive, TE unless `te: trailers` is kept,
 *    Transfer-Encoding, Upgrade, Trailer, Proxy-*);
 *  - sets Host (client's, or the override);
 *  - forwarding fields, by who vouches for them (`head.forwardedBy`). From the edge: X-Forwarded-For as the
 *    edge sent it (it already appended the visitor), X-Forwarded-Proto as the edge says (its
 *    X-Forwarded-Proto, else Cf-Visitor's scheme), `cf-*` unchanged. From a direct client: the peer address
 *    appended to X-Forwarded-For, X-Forwarded-Proto from the connection, the edge-only fields dropped. Always:
 *    X-Forwarded-Host is the request's Host, X-Real-IP the client address, True-Client-IP only when it equals
 *    that address, and the spoofable fields (`Forwarded`, `X-Original-URL`, …) dropped.
 * Everything else passes unchanged and in order.
 */
export function upstreamRequestHeaders(head: RequestHead, options: UpstreamHeaderOptions): string[] {
  const edge = head.forwardedBy === 'edge';
  const client = head.clientAddress || undefined;
  const headers = head.headers;
  const named = namedByConnection(headers);
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let visitor: string | undefined;
  const out: string[] = [];
  const host = options.hostOverride ?? (options.preserveHost ? head.authority : undefined);
  if (host !== undefined && host !== '') out.push('host', host);
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = lowerCase(headers[i]!);
    const value = headers[i + 1]!;
    // `te` is hop-by-hop too: a protocol plugin that needs `te: trailers` upstream puts it back itself.
    if (HOP_BY_HOP.has(name)) continue;
    if (name.startsWith('proxy-') || named?.has(name) || SPOOFABLE.has(name)) continue;
    if (SET_BY_WARREN.has(name)) {
      if (name === 'x-forwarded-for') forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      else if (name === 'x-forwarded-proto') forwardedProto ??= value;
      continue;
    }
    if (name === 'true-client-ip' && value.trim() !== client) continue;
    if (!edge && EDGE_ONLY.has(name)) continue;
    if (edge && name === 'cf-visitor') visitor ??= value;
    out.push(name, value);
  }
  if (options.contentLength !== undefined) out.push('content-length', String(options.contentLength));
  pushForwarding(out, head, forwardedFor, edge ? edgeScheme(forwardedProto, visitor) : head.scheme);
  return out;
}

/** The field names the request's `Connection` fields list (lower-case), if any. */
function namedByConnection(headers: RawHeaders): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 10 && lowerCase(name) === 'connection') named = connectionTokens(headers[i + 1]!, named);
  }
  return named;
}

/**
 * The forwarding fields Warren writes: X-Forwarded-For (the edge's as it sent it; for a direct client the peer
 * appended to what it claimed), X-Forwarded-Proto, X-Forwarded-Host and X-Real-IP.
 */
function pushForwarding(out: string[], head: RequestHead, forwardedFor: string | undefined, scheme: string): void {
  const client = head.clientAddress || undefined;
  const xff = head.forwardedBy === 'edge' ? (forwardedFor ?? client) : client ? (forwardedFor ? `${forwardedFor}, ${client}` : client) : forwardedFor;
  if (xff !== undefined) out.push('x-forwarded-for', xff);
  out.push('x-forwarded-proto', scheme);
  if (head.authority) out.push('x-forwarded-host', head.authority);
  if (client !== undefined) out.push('x-real-ip', client);
}

/**
 * The scheme the visitor used: for a request the edge forwarded, what the edge states ({@link edgeScheme}); for a
 * direct client, the scheme of its connection.
 */
export function visitorScheme(head: RequestHead): string {
  if (head.forwardedBy !== 'edge') return head.scheme;
  return edgeScheme(headerValue(head.headers, 'x-forwarded-proto'), headerValue(head.headers, 'cf-visitor'));
}

/** Adds the field names a `Connection` value lists (lower-case) to `into`, creating the set on first use. */
function connectionTokens(value: string, into: Set<string> | undefined): Set<string> | undefined {
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t) (into ??= new Set()).add(t);
  }
  return into;
}

/**
 * Response fields never passed on: hop-by-hop fields, and `Trailer`, which announces trailers on the origin's
 * connection; each acceptor sends the trailers itself in its own framing (HTTP/2 trailing HEADERS in the tunnel).
 */
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'proxy-connection', 'trailer']);

/**
 * Converts an upstream response head to the exchange's flat list, dropping hop-by-hop fields. Names and values
 * come from the parsed header object (so interceptors that changed it are honoured); the origin's spelling of
 * each name is restored from the raw list when the client library exposes one. For a 101 the `Connection` and
 * `Upgrade` fields stay: the acceptor needs them to complete the client's handshake.
 */
export function downstreamResponseHeaders(
  raw: readonly (Buffer | string)[] | null | undefined,
  parsed: Readonly<Record<string, string | string[] | undefined>>,
  status: number,
): string[] {
  const keepUpgrade = status === 101;
  let named: Set<string> | undefined;
  const connection = parsed.connection;
  // `keep-alive`, what nearly every origin sends, names only a field dropped anyway: no set to build per response.
  if (connection !== undefined && !keepUpgrade && connection !== 'keep-alive' && connection !== 'Keep-Alive') named = connectionTokens(String(connection), named);
  // Short raw lists (nearly every response) are searched per name without decoding (see `rawSpelling`); longer
  // ones are decoded once into a map, so the work per name stays bounded.
  const names = Array.isArray(raw) ? raw : undefined;
  const spelling = names && names.length > MAX_SEARCHED ? spellingMap(names) : undefined;
  const out: string[] = [];
  for (const name in parsed) {
    const value = parsed[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* : */) continue;
    const lower = lowerCase(name);
    const drop = keepUpgrade
      ? lower === 'keep-alive' || lower === 'transfer-encoding' || lower === 'proxy-connection' || lower === 'te' || lower === 'trailer'
      : RESPONSE_HOP_BY_HOP.has(lower);
    if (drop || named?.has(lower)) continue;
    const shown = (spelling ? spelling.get(lower) : names && rawSpelling(names, lower)) ?? name;
    if (Array.isArray(value)) for (const v of value) out.push(shown, v);
    else out.push(shown, value);
  }
  return out;
}

function latin1(value: Buffer | string): string {
  return typeof value === 'string' ? value : value.toString('latin1');
}

/** Each response field name's first spelling that is not all lower-case, by lower-case name. */
function spellingMap(raw: readonly (Buffer | string)[]): Map<string, string> {
  const spelling = new Map<string, string>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    const lower = name.toLowerCase();
    if (name !== lower && !spelling.has(lower)) spelling.set(lower, name);
  }
  return spelling;
}

/** Raw lists up to this many entries (32 fields) are searched per name; longer ones go through {@link spellingMap}. */
const MAX_SEARCHED = 64;

/**
 * What {@link spellingMap} would give for `lower`: its first spelling in `raw` that is not all lower-case, found by
 * comparing the names' bytes instead of decoding them (and the decoded name reused, see {@link knownSpelling}).
 */
function rawSpelling(raw: readonly (Buffer | string)[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (sameName(name, lower) && hasUpperCase(name)) return knownSpelling(name, lower);
  }
  return undefined;
}

/** Whether a raw field name is `lower` in any letter case. */
function sameName(name: Buffer | string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  if (typeof name === 'string') return lowerCase(name) === lower;
  for (let i = 0; i < name.length; i++) {
    const b = name[i]!;
    if ((b >= 65 && b <= 90 ? b + 32 : b) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function hasUpperCase(name: Buffer | string): boolean {
  if (typeof name === 'string') return name !== lowerCase(name);
  for (let i = 0; i < name.length; i++) if (name[i]! >= 65 && name[i]! <= 90) return true;
  return false;
}

/**
 * Capitalised field names seen in responses, each decoded once (`Content-Type` on every response is the same
 * string). Bounded in count and name length, since an origin chooses the names.
 */
const SPELLINGS = new Map<string, string>();
const MAX_SPELLINGS = 256;
const MAX_SPELLING_LENGTH = 64;

/** `name` as a string, reusing the copy decoded before when its bytes are the same. */
function knownSpelling(name: Buffer | string, lower: string): string {
  if (typeof name === 'string') return name;
  const known = SPELLINGS.get(lower);
  if (known !== undefined && sameBytes(name, known)) return known;
  const decoded = name.toString('latin1');
  if (name.length <= MAX_SPELLING_LENGTH && (known !== undefined || SPELLINGS.size < MAX_SPELLINGS)) SPELLINGS.set(lower, decoded);
  return decoded;
}

function sameBytes(name: Buffer, text: string): boolean {
  if (name.length !== text.length) return false;
  for (let i = 0; i < name.length; i++) if (name[i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * Flattens a parsed header object (undici's response headers and trailers: lower-case names, repeats as arrays)
 * into a raw list.
 */
export function headersOfObject(parsed: Readonly<Record<string, string | string[] | undefined>> | null | undefined, into: string[] = []): string[] {
  for (const name in parsed) {
    const value = parsed[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) into.push(name, v);
    else into.push(name, value);
  }
  return into;
}
