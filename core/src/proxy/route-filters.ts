import { ErrorCode, WarrenError } from '../errors.js';
import {
  ForwardingHandler,
  type DispatchController,
  type DispatchHandler,
  type ResponseHeaders,
  type UpstreamDispatch,
  type UpstreamInterceptor,
} from '../plugin-api/upstream.js';
import { validAuthority } from '../routes/hosts.js';
import { edgeRequestPort } from '../routes/listener-scope.js';
import type { HeaderEdits, PathReplacement, Route, RouteFilters } from '../routes/types.js';
import { RequestController } from './controller.js';
import type { RequestHead } from './exchange.js';
import { proxyOwnedRequestField, proxyOwnedResponseField, validFieldName, validFieldValue, visitorScheme } from './headers.js';

/**
 * A route's filters (`Route.filters`, from Gateway API rules) as one core interceptor, the innermost of the route's
 * chain (directly around core's dispatch), compiled once per route:
 *
 *  - request header edits and the URL rewrite (Host, path) change the request exactly as it goes upstream, after
 *    every plugin's interceptor saw the client's own request;
 *  - response header edits change the upstream's response head before the plugins' handlers see it;
 *  - a redirect answers the request itself and never calls on: no endpoint, no upstream.
 *
 * Edits that would touch what the proxy owns (framing, hop-by-hop fields, `host`; see `proxyOwnedRequestField`) or
 * carry invalid names or values make the route unavailable (500) with a message naming the route and the field:
 * they are refused, never applied in part.
 */

type Redirect = NonNullable<RouteFilters['redirect']>;

/** Header edits compiled for one pass: names whose fields go, and the fields appended, in order. */
interface CompiledEdits {
  /** Lower-case names whose present fields are dropped: set (replaced) and remove. */
  readonly drop: ReadonlySet<string>;
  /** Flat `[name, value, …]` appended after the kept fields: set first, then add; never a removed name. */
  readonly append: readonly string[];
}

/** The route's filters as an interceptor, or undefined when it has none. Throws a `WarrenError` (500) for an edit it refuses. */
export function filtersInterceptor(route: Route): UpstreamInterceptor | undefined {
  const filters = route.filters;
  if (!filters) return undefined;
  const request = filters.requestHeaders && compileEdits(route, filters.requestHeaders, 'request');
  const response = filters.responseHeaders && compileEdits(route, filters.responseHeaders, 'response');
  if (filters.redirect) {
    const redirect = checkRedirect(route, filters.redirect);
    return () => redirectAnswer(route, redirect, response);
  }
  const rewrite = filters.rewrite;
  const host = rewrite?.hostname;
  if (host !== undefined && !validHostname(host)) throw refused(route, 'rewrite.hostname', 'is not a host name');
  const path = rewrite?.path;
  // Request edits may not name Host, so the rewritten Host joins them as one more replacement.
  const upstream = host === undefined ? request : { drop: new Set([...(request?.drop ?? []), 'host']), append: [...(request?.append ?? []), 'host', host] };
  if (!upstream && !response && path === undefined) return undefined;
  return (next) =>
    function routeFilters(options, handler) {
      if (upstream) options.headers = editList(options.headers, upstream);
      if (path !== undefined) options.path = rewriteTarget(options.path, route, path);
      next(options, response ? new ResponseEdits(handler, response) : handler);
    };
}

function refused(route: Route, field: string, problem: string): WarrenError {
  return new WarrenError(ErrorCode.InvalidObject, `route ${route.id}: filter ${field} ${problem}`, { status: 500 });
}

/** A host name or address (no port) that may stand in a Host field or a URL. */
function validHostname(host: string): boolean {
  return host !== '' && !host.includes(':', host.lastIndexOf(']') + 1) && validAuthority(host);
}

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

function checkRedirect(route: Route, redirect: Redirect): Redirect {
  if (!REDIRECT_STATUS.has(redirect.statusCode)) throw refused(route, 'redirect.statusCode', `is ${redirect.statusCode}, not one of 301, 302, 303, 307, 308`);
  if (redirect.scheme !== undefined && redirect.scheme !== 'http' && redirect.scheme !== 'https') throw refused(route, 'redirect.scheme', 'is neither http nor https');
  if (redirect.hostname !== undefined && !validHostname(redirect.hostname)) throw refused(route, 'redirect.hostname', 'is not a host name');
  if (redirect.port !== undefined && !(Number.isInteger(redirect.port) && redirect.port >= 1 && redirect.port <= 65_535)) {
    throw refused(route, 'redirect.port', 'is not a port number (1-65535)');
  }
  return redirect;
}

function compileEdits(route: Route, edits: HeaderEdits, side: 'request' | 'response'): CompiledEdits | undefined {
  const owned = side === 'request' ? proxyOwnedRequestField : proxyOwnedResponseField;
  const field = `${side}Headers`;
  const check = (raw: string, where: string): string => {
    const name = raw.toLowerCase();
    if (!validFieldName(name)) throw refused(route, `${field}.${where}`, `names ${JSON.stringify(raw)}, which is not a valid header name`);
    if (owned(name)) throw refused(route, `${field}.${where}`, `names "${name}", which the proxy sets itself (framing, hop-by-hop or Host)`);
    return name;
  };
  const checked = (kind: 'set' | 'add', pairs: HeaderEdits['set']): Array<readonly [string, string]> =>
    (pairs ?? []).map(([raw, value]) => {
      const name = check(raw, kind);
      if (!validFieldValue(value)) throw refused(route, `${field}.${kind}`, `gives "${name}" a value with control characters`);
      return [name, value] as const;
    });
  const removed = new Set((edits.remove ?? []).map((n) => check(n, 'remove')));
  // A name set twice keeps its last value: set replaces.
  const set = new Map(checked('set', edits.set));
  const drop = new Set([...removed, ...set.keys()]);
  const append: string[] = [];
  for (const [name, value] of [...set, ...checked('add', edits.add)]) if (!removed.has(name)) append.push(name, value);
  return drop.size === 0 && append.length === 0 ? undefined : { drop, append };
}

/** `headers` (lower-case names) with the edits applied: a new list, so the caller's stays as it was. */
function editList(headers: readonly string[], edits: CompiledEdits): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    if (!edits.drop.has(name.toLowerCase())) out.push(name, headers[i + 1]!);
  }
  for (const field of edits.append) out.push(field);
  return out;
}

/** A parsed response head (lower-case names, repeats as arrays) with the edits applied, as a new object. */
function editObject(headers: ResponseHeaders, edits: CompiledEdits): ResponseHeaders {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !edits.drop.has(name.toLowerCase())) out[name.toLowerCase()] = value;
  }
  for (let i = 0; i + 1 < edits.append.length; i += 2) {
    const name = edits.append[i]!;
    const value = edits.append[i + 1]!;
    const present = out[name];
    out[name] = present === undefined ? value : Array.isArray(present) ? [...present, value] : [present, value];
  }
  return out as ResponseHeaders;
}

/** Applies response header edits to the final response head (not to informational 1xx heads). */
class ResponseEdits extends ForwardingHandler {
  readonly #edits: CompiledEdits;

  constructor(next: DispatchHandler, edits: CompiledEdits) {
    super(next);
    this.#edits = edits;
  }

  override onResponseStart(controller: DispatchController, status: number, headers: ResponseHeaders, message?: string): void {
    super.onResponseStart(controller, status, status >= 200 ? editObject(headers, this.#edits) : headers, message);
  }
}

/**
 * The path after a replacement. `ReplaceFullPath` takes the value. `ReplacePrefixMatch` replaces the part of the
 * path the route's prefix matched, element-wise: trailing `/` of the prefix and of the value are ignored, what
 * followed the prefix is kept (`/foo/bar` with prefix `/foo` and value `/xyz` → `/xyz/bar`; `/foo/` → `/xyz/`;
 * `/foo` with value `/` or `''` → `/`). A path the prefix does not cover (a route of another path type) is replaced
 * whole.
 */
export function replacePath(path: string, route: Route, replacement: PathReplacement): string {
  if (replacement.type === 'ReplaceFullPath') return replacement.value === '' ? '/' : replacement.value;
  const prefix = trimSlashes(route.path);
  const covered = path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47); /* / */
  const rest = covered ? path.slice(prefix.length) : '';
  const replaced = trimSlashes(replacement.value) + rest;
  if (replaced === '') return '/';
  return replaced.charCodeAt(0) === 47 ? replaced : `/${replaced}`;
}

function trimSlashes(path: string): string {
  let end = path.length;
  while (end > 0 && path.charCodeAt(end - 1) === 47) end--;
  return end === path.length ? path : path.slice(0, end);
}

/** Splits a request target into path and query (with its `?`, or `''`). */
function splitTarget(target: string): { readonly path: string; readonly query: string } {
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q) };
}

/** The upstream target after a path rewrite; the query is kept as the client sent it. */
function rewriteTarget(target: string, route: Route, replacement: PathReplacement): string {
  const { path, query } = splitTarget(target);
  return uriSafe(replacePath(path, route, replacement) + query);
}

/**
 * `text` with every character that may not appear in a URI's path or query percent-encoded (space, `"`, `<`, `>`,
 * `\`, `^`, `` ` ``, `{`, `|`, `}`, `#`, DEL and bytes above it). Request targets reach here checked (no controls,
 * characters at most U+00FF, one per byte); `%` stays, so escapes already present are kept.
 */
export function uriSafe(text: string): string {
  return URI_UNSAFE.test(text) ? text.replace(URI_UNSAFE_ALL, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`) : text;
}

const URI_UNSAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/;
const URI_UNSAFE_ALL = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/g;

const DEFAULT_PORT: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** Host and port of an authority (`host`, `host:port`, `[v6]:port`); port undefined when absent or empty. */
function splitAuthority(authority: string): { readonly host: string; readonly port: number | undefined } {
  const colon = authority.lastIndexOf(':');
  if (colon === -1 || (authority.charCodeAt(0) === 91 /* [ */ && authority.indexOf(']') > colon)) return { host: authority, port: undefined };
  const digits = authority.slice(colon + 1);
  return { host: authority.slice(0, colon), port: digits === '' ? undefined : Number(digits) };
}

/**
 * The `Location` of a redirect: each part the filter does not set is the request's (scheme as the visitor used it,
 * host as it sent it, path and query). The port: the filter's; else the default port of the filter's scheme when
 * it sets one; else the port the request came to — through the tunnel the edge port it reached (the listener's
 * port, see `edgeRequestPort`: a Host port the edge serves no connection on is not it), else its Host's port. A
 * default port (80 for http, 443 for https) is left out. Without any host (an HTTP/1.0 request without Host, and no
 * hostname in the filter) the Location is the path alone.
 */
export function redirectLocation(route: Route, redirect: Redirect, head: RequestHead, target: string): string {
  // `OPTIONS *` names no resource: it is sent to the root.
  const { path, query } = splitTarget(target === '*' ? '/' : target);
  const location = uriSafe((redirect.path ? replacePath(path, route, redirect.path) : path) + query);
  const requested = splitAuthority(head.authority);
  const host = redirect.hostname ?? requested.host;
  if (host === '') return location;
  const scheme = redirect.scheme ?? visitorScheme(head);
  const port = redirect.port ?? (redirect.scheme === undefined ? arrivalPort(head, requested.port) : undefined);
  const shown = port === undefined || port === DEFAULT_PORT[scheme] ? '' : `:${port}`;
  return `${scheme}://${host}${shown}${location}`;
}

/** The port a request came to: through the tunnel the edge port it reached (the Gateway listener's), else its Host's. */
function arrivalPort(head: RequestHead, hostPort: number | undefined): number | undefined {
  return head.forwardedBy === 'edge' ? edgeRequestPort(head.authority, { method: head.method, headers: head.headers, query: '' }) : hostPort;
}

/** A dispatch that answers every request with the route's redirect: an empty body, the `Location` and the response edits. */
function redirectAnswer(route: Route, redirect: Redirect, edits: CompiledEdits | undefined): UpstreamDispatch {
  return function redirectFilter(options, handler) {
    const location = redirectLocation(route, redirect, options.context.exchange.head, options.path);
    const head: ResponseHeaders = { location, 'content-length': '0' };
    const controller = new RequestController(() => {});
    handler.onRequestStart?.(controller, {});
    handler.onResponseStart?.(controller, redirect.statusCode, edits ? editObject(head, edits) : head, '');
    handler.onResponseEnd?.(controller, {});
  };
}
