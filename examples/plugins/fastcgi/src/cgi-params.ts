import { ErrorCode, WarrenError } from '@warren/core/plugin';

/**
 * The CGI/1.1 meta-variables (RFC 3875 §4.1) of one request, sent to the application as FastCGI PARAMS.
 *
 * The script is found the way PHP front ends split paths: the first path element ending in the script
 * extension (`.php`) ends SCRIPT_NAME and the rest is PATH_INFO (`/app.php/users/7` → `/app.php` + `/users/7`);
 * a path ending in `/` gets the index file (`/blog/` → `/blog/index.php`); any other path is the script name
 * as it is (the application refuses what is not a script). SCRIPT_FILENAME is the document root plus
 * SCRIPT_NAME. Extra params (settings and annotation) come last and replace computed ones of the same name, so
 * `SCRIPT_FILENAME=/app/public/index.php` sends every request to one front controller.
 */

/** Per-route settings that shape the meta-variables. */
export interface ScriptSettings {
  /** Absolute path of the scripts in the application's file system, without a trailing slash. */
  readonly documentRoot: string;
  /** File appended to paths ending in `/`. */
  readonly index: string;
  /** Path elements ending in this end the script name. */
  readonly scriptExtension: string;
  /** Extra params, applied last. */
  readonly params: ReadonlyArray<readonly [string, string]>;
}

/** What the meta-variables are computed from. */
export interface CgiRequest {
  readonly method: string;
  /** Path and query as sent upstream (canonical path, the query as the client sent it). */
  readonly target: string;
  /** Upstream request headers: `[name, value, …]`, lower-case names. */
  readonly headers: readonly string[];
  /** Host the client asked for, used when the headers carry none. */
  readonly authority: string;
  readonly clientAddress: string | undefined;
  /** Request body length, when there is a body. */
  readonly contentLength: number | undefined;
}

/** Request fields that never become HTTP_* variables: they have variables of their own, or (Proxy) are a trap. */
const NOT_FORWARDED = new Set([
  'content-type',
  'content-length',
  // A client's `Proxy` header would arrive as HTTP_PROXY, which many HTTP libraries read as their outgoing proxy.
  'proxy',
]);
/** Names that map to distinct variables: `x_a` and `x-a` would both become HTTP_X_A, so underscores are dropped. */
const FORWARDABLE_NAME = /^[a-z0-9-]+$/;

function badRequest(message: string): WarrenError {
  return new WarrenError(ErrorCode.BadRequest, message, { status: 400 });
}

/** A JavaScript string as a byte string of its UTF-8 encoding (what PARAMS carry). */
function utf8Bytes(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is all of ASCII, control characters included
  return /^[\x00-\x7f]*$/.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1');
}

/** The decoded request path, refused when decoding yields a NUL or a `.`/`..` element (escaped slashes). */
function decodedPath(path: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw badRequest('request path has an invalid percent-encoding for a FastCGI script path');
  }
  if (decoded.includes('\0')) throw badRequest('request path decodes to a NUL byte');
  for (const element of decoded.split('/')) {
    if (element === '.' || element === '..') throw badRequest('request path decodes to a "." or ".." element');
  }
  return decoded;
}

/** SCRIPT_NAME and PATH_INFO of a decoded path. */
export function splitScript(path: string, settings: Pick<ScriptSettings, 'index' | 'scriptExtension'>): { scriptName: string; pathInfo: string } {
  const ext = settings.scriptExtension;
  for (let end = path.indexOf(ext); end !== -1; end = path.indexOf(ext, end + 1)) {
    const after = end + ext.length;
    if (after === path.length || path.charCodeAt(after) === 47 /* / */) {
      // The element must have a name before the extension (`/.php` is not a script).
      if (end > 0 && path.charCodeAt(end - 1) !== 47) return { scriptName: path.slice(0, after), pathInfo: path.slice(after) };
    }
  }
  if (path.endsWith('/')) return { scriptName: path + settings.index, pathInfo: '' };
  return { scriptName: path, pathInfo: '' };
}

/** Host name and port of a Host value (`name`, `name:port`, `[v6]:port`). */
function hostAndPort(host: string, https: boolean): { name: string; port: string } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
  if (!m) return { name: host, port: https ? '443' : '80' };
  return { name: m[1]!, port: m[2] ?? (https ? '443' : '80') };
}

/** The meta-variables of one request, in the order they are sent. Throws a `BadRequest` WarrenError for paths no script can have. */
export function cgiParams(request: CgiRequest, settings: ScriptSettings): Array<[string, string]> {
  const q = request.target.indexOf('?');
  const rawPath = q === -1 ? request.target : request.target.slice(0, q);
  const query = q === -1 ? '' : request.target.slice(q + 1);
  const path = decodedPath(rawPath);
  const { scriptName, pathInfo } = splitScript(path, settings);

  const http = new Map<string, string>();
  let host: string | undefined;
  let contentType: string | undefined;
  let scheme = 'http';
  const headers = request.headers;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (name === 'host') host ??= value;
    else if (name === 'content-type') contentType ??= value;
    else if (name === 'x-forwarded-proto') scheme = value.trim().toLowerCase() === 'https' ? 'https' : 'http';
    if (NOT_FORWARDED.has(name) || !FORWARDABLE_NAME.test(name)) continue;
    const key = `HTTP_${name.toUpperCase().replaceAll('-', '_')}`;
    const prev = http.get(key);
    http.set(key, prev === undefined ? value : `${prev}${name === 'cookie' ? '; ' : ', '}${value}`);
  }
  host ??= request.authority;
  http.set('HTTP_HOST', host);
  const https = scheme === 'https';
  const server = hostAndPort(host, https);

  const vars = new Map<string, string>([
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', 'warren'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['REQUEST_METHOD', request.method],
    ['REQUEST_URI', request.target],
    ['REQUEST_SCHEME', scheme],
    ['DOCUMENT_ROOT', utf8Bytes(settings.documentRoot)],
    ['DOCUMENT_URI', utf8Bytes(scriptName)],
    ['SCRIPT_NAME', utf8Bytes(scriptName)],
    ['SCRIPT_FILENAME', utf8Bytes(settings.documentRoot + scriptName)],
    ['PATH_INFO', utf8Bytes(pathInfo)],
    ['QUERY_STRING', query],
    ['SERVER_NAME', server.name],
    ['SERVER_PORT', server.port],
  ]);
  if (pathInfo !== '') vars.set('PATH_TRANSLATED', utf8Bytes(settings.documentRoot + pathInfo));
  if (https) vars.set('HTTPS', 'on');
  if (request.clientAddress) vars.set('REMOTE_ADDR', request.clientAddress);
  if (request.contentLength !== undefined) vars.set('CONTENT_LENGTH', String(request.contentLength));
  if (contentType !== undefined) vars.set('CONTENT_TYPE', contentType);
  for (const [key, value] of http) vars.set(key, value);
  for (const [key, value] of settings.params) {
    vars.delete(key);
    vars.set(key, utf8Bytes(value));
  }
  return [...vars];
}
