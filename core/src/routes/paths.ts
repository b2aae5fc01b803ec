import type { PathType } from './types.js';

/**
 * Path rules (Kubernetes Ingress v1):
 *  - `Exact`: the request path equals the rule path (case-sensitive, trailing slash significant);
 *  - `Prefix`: element-wise on `/`-separated elements: `/foo` matches `/foo`, `/foo/` and `/foo/bar`, not
 *    `/foobar`; a trailing slash in the rule is ignored; `/` matches every path;
 *  - `ImplementationSpecific`: the same as `Prefix`.
 *
 * Both sides are compared in one canonical form (see {@link canonicalRequestTarget}): request paths are
 * canonicalised before matching and that same path is what the upstream receives, so no backend that
 * normalises further can resolve a path outside the route that matched. Rule paths get the same percent-encoding
 * normalisation; rule paths that could never match a canonical path, or that invite confusion between encoded
 * and decoded forms, are refused (the Kubernetes API refuses the same sequences).
 */

/** The longest rule path accepted. */
const MAX_RULE_PATH_LENGTH = 4096;

/** How a validated rule path is matched: `exact` compares the key; `prefix` matches element-wise on the key. */
export type MatchKind = 'exact' | 'prefix';

export type CheckedPath =
  | { readonly ok: true; readonly path: string; readonly pathType: PathType; readonly kind: MatchKind; readonly key: string }
  | { readonly ok: false; readonly problem: string; readonly field: 'path' | 'pathType' };

const PATH_TYPES: ReadonlySet<string> = new Set(['Exact', 'Prefix', 'ImplementationSpecific']);
const BAD_SEQUENCES = ['//', '/./', '/../', '%2F'];
const BAD_SUFFIXES = ['/..', '/.'];

/**
 * Validates a rule path and its type. A missing or empty path means `/`; a missing pathType means
 * `ImplementationSpecific` (the `networking.k8s.io/v1beta1` default). `key` is the path in canonical form
 * (percent-encoded unreserved characters decoded, other escapes in upper case), for prefixes without its
 * trailing slash (`''` for `/`). Never throws.
 */
export function checkRulePath(path: unknown, pathType: unknown): CheckedPath {
  const type = pathType === undefined || pathType === null || pathType === '' ? 'ImplementationSpecific' : pathType;
  if (typeof type !== 'string' || !PATH_TYPES.has(type)) {
    return { ok: false, field: 'pathType', problem: `${JSON.stringify(type)} is not supported; use Exact, Prefix or ImplementationSpecific` };
  }
  const p = path === undefined || path === null || path === '' ? '/' : path;
  if (typeof p !== 'string') return { ok: false, field: 'path', problem: `must be a string, got ${typeof p}` };
  if (p.length > MAX_RULE_PATH_LENGTH) return { ok: false, field: 'path', problem: `is ${p.length} characters long; at most ${MAX_RULE_PATH_LENGTH}` };
  if (p.charCodeAt(0) !== 47) return { ok: false, field: 'path', problem: `${quote(p)} must start with "/"` };
  if (/[^\x21-\x7e]/.test(p)) {
    return { ok: false, field: 'path', problem: `${quote(p)} contains spaces, control or non-ASCII characters; percent-encode them as clients send them` };
  }
  if (p.includes('?') || p.includes('#')) {
    return { ok: false, field: 'path', problem: `${quote(p)} contains "?" or "#"; rules match the path only, never the query or fragment` };
  }
  const decoded = normalizeEscapes(p, true);
  if (!decoded.ok) return { ok: false, field: 'path', problem: `${quote(p)} ${decoded.problem}` };
  const canonical = decoded.path;
  for (const seq of BAD_SEQUENCES) {
    if (canonical.includes(seq)) return { ok: false, field: 'path', problem: `${quote(p)} must not contain "${seq}"${canonical === p ? '' : ' (once decoded)'}` };
  }
  for (const suffix of BAD_SUFFIXES) {
    if (canonical.endsWith(suffix)) return { ok: false, field: 'path', problem: `${quote(p)} must not end with "${suffix}"${canonical === p ? '' : ' (once decoded)'}` };
  }
  const checkedType = type as PathType;
  if (checkedType === 'Exact') return { ok: true, path: p, pathType: checkedType, kind: 'exact', key: canonical };
  return { ok: true, path: p, pathType: checkedType, kind: 'prefix', key: canonical.endsWith('/') ? canonical.slice(0, -1) : canonical };
}

/** The path a request is matched on: everything before `?`. */
export function requestPath(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** True when request path `path` is matched element-wise by the prefix `key` (as returned by `checkRulePath`). */
export function prefixMatches(path: string, key: string): boolean {
  return path.startsWith(key) && (path.length === key.length || path.charCodeAt(key.length) === 47);
}

/** How request paths are canonicalised (settings under `proxy.paths`). */
export interface PathPolicy {
  /**
   * `%2F`, `%5C`, a raw `\`, and double-encoded dots and slashes (`%252E`, `%252F`, `%255C`): `reject` answers
   * 400; `keep` passes them on unchanged (escapes in upper case), as data inside a path element, never as a
   * separator or dot segment.
   */
  readonly ambiguousEncodings: 'reject' | 'keep';
  /** Merge runs of `/` into one (`/a//b` → `/a/b`) before matching. */
  readonly mergeSlashes: boolean;
  /** Longest request target (path and query) accepted, in characters; longer gets 414. */
  readonly maxLength: number;
}

/** The defaults of the `proxy.paths` settings. */
export const DEFAULT_PATH_POLICY: PathPolicy = Object.freeze({ ambiguousEncodings: 'reject', mergeSlashes: true, maxLength: 16_384 });

export type CanonicalTarget =
  | {
      readonly ok: true;
      /** The canonical path: what routes match and what the upstream receives. */
      readonly path: string;
      /** `path` followed by the query exactly as the client sent it (`?…`), if any. */
      readonly target: string;
    }
  | { readonly ok: false; readonly status: 400 | 414; readonly problem: string };

/**
 * Canonicalises a request target (`/path?query`) before it is matched, in this order:
 *  1. a target longer than `maxLength` → 414;
 *  2. in the path: malformed percent-encoding, `%00`, overlong UTF-8 escapes (`%C0`, `%C1`, `%E0%80`–`%E0%9F`,
 *     `%F0%80`–`%F0%8F`), a raw `#` (fragments are never sent), control bytes or spaces → 400; `%2F`, `%5C`, a
 *     raw `\` and `%25` followed by `2E`, `2F` or `5C` (a dot or slash for a backend that decodes twice) → 400
 *     unless `ambiguousEncodings` is `keep`;
 *  3. percent-encoded unreserved characters (`A–Z a–z 0–9 - . _ ~`, so `%2e` too) are decoded, other escapes
 *     written in upper case (RFC 3986 §6.2.2);
 *  4. an element that is a dot segment followed by parameters (`..;x`, `.;x`, `..%3B`) → 400: servlet
 *     containers drop the parameters and would then resolve the dot segment themselves;
 *  5. runs of `/` are merged (when `mergeSlashes`);
 *  6. dot segments are removed (RFC 3986 §5.2.4); `..` never climbs above `/`.
 * The query is never touched. `*` (OPTIONS) passes as it is. Never throws.
 */
export function canonicalRequestTarget(target: string, policy: PathPolicy = DEFAULT_PATH_POLICY): CanonicalTarget {
  if (target.length > policy.maxLength) {
    return { ok: false, status: 414, problem: `request target is ${target.length} characters long; at most ${policy.maxLength} are accepted (proxy.paths.maxLength)` };
  }
  const q = target.indexOf('?');
  const raw = q === -1 ? target : target.slice(0, q);
  if (raw === '*') return { ok: true, path: raw, target };
  if (raw.charCodeAt(0) !== 47) return { ok: false, status: 400, problem: 'request path must start with "/"' };
  if (!needsWork(raw)) return { ok: true, path: raw, target };
  const escapes = normalizeEscapes(raw, policy.ambiguousEncodings === 'keep');
  if (!escapes.ok) return { ok: false, status: 400, problem: `request path ${escapes.problem}` };
  const segments = escapes.path.slice(1).split('/');
  for (const segment of segments) {
    const params = parameterStart(segment);
    if (params === -1) continue;
    const base = segment.slice(0, params);
    if (base === '.' || base === '..') return { ok: false, status: 400, problem: 'request path has a dot segment with parameters ("..;")' };
  }
  const path = removeDotSegments(policy.mergeSlashes ? mergeEmpty(segments) : segments);
  return { ok: true, path, target: q === -1 ? path : path + target.slice(q) };
}

/**
 * True when `path` contains anything canonicalisation may change or refuse: `%`, `\`, `#`, bytes outside visible
 * ASCII, `//`, or an element starting with `.` (a dot in a file name is no dot segment). False for the common
 * plain path, which is then used as it is.
 */
function needsWork(path: string): boolean {
  let previous = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 || c === 92 || c === 35 || c <= 32 || c >= 127) return true;
    if (previous === 47 && (c === 47 || c === 46)) return true;
    previous = c;
  }
  return false;
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function unreserved(b: number): boolean {
  return (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b === 45 || b === 46 || b === 95 || b === 126;
}

type Escapes = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly problem: string };

/** Steps 2 and 3 of {@link canonicalRequestTarget}: checks every byte and escape, decodes unreserved ones. */
function normalizeEscapes(path: string, keepAmbiguous: boolean): Escapes {
  let out = '';
  // Characters from `run` up to the current one are copied unchanged, in one slice.
  let run = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c > 37 && c !== 92 && c !== 127) continue;
    if (c === 37 /* % */) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return { ok: false, problem: 'has a "%" that does not start a percent-encoded byte' };
      const b = hi * 16 + lo;
      if (b === 0) return { ok: false, problem: 'contains an encoded NUL (%00)' };
      if (b === 0x2f || b === 0x5c) {
        if (!keepAmbiguous) return { ok: false, problem: 'contains an encoded "/" or "\\" (%2F, %5C); see proxy.paths.ambiguousEncodings' };
      } else if (b === 0xc0 || b === 0xc1 || ((b === 0xe0 || b === 0xf0) && overlongContinuation(path, i + 3, b === 0xe0 ? 0xa0 : 0x90))) {
        return { ok: false, problem: 'contains an overlong UTF-8 encoding' };
      }
      out += path.slice(run, i) + (unreserved(b) ? String.fromCharCode(b) : `%${HEX[hi]}${HEX[lo]}`);
      i += 2;
      run = i + 1;
      continue;
    }
    if (c === 35 /* # */) return { ok: false, problem: 'contains "#" (a fragment is never sent to a server)' };
    if (c === 92 /* \ */ && !keepAmbiguous) return { ok: false, problem: 'contains "\\"; see proxy.paths.ambiguousEncodings' };
    if (c <= 32 || c === 127) return { ok: false, problem: 'contains spaces or control characters' };
  }
  const result = run === 0 ? path : out + path.slice(run);
  // Checked on the result: `%25%32%65` becomes `%252e` once `%32` and `%65` are decoded.
  if (!keepAmbiguous && DOUBLE_ENCODED.test(result)) {
    return { ok: false, problem: 'contains a double-encoded dot or slash (%252E, %252F, %255C); see proxy.paths.ambiguousEncodings' };
  }
  return { ok: true, path: result };
}

/** An escaped `%` followed by the hex of `.`, `/` or `\`: a separator for a backend that decodes twice. */
const DOUBLE_ENCODED = /%25(?:2[ef]|5c)/i;

/** True when an escape at `at` continues a 3- or 4-byte UTF-8 lead with a byte below `min` (an overlong form). */
function overlongContinuation(path: string, at: number, min: number): boolean {
  if (path.charCodeAt(at) !== 37) return false;
  const hi = hexValue(path.charCodeAt(at + 1));
  const lo = hexValue(path.charCodeAt(at + 2));
  return hi >= 0 && lo >= 0 && hi * 16 + lo < min;
}

/** Where the parameters of a path element start (`;`, or `%3B` once normalised), or -1. */
function parameterStart(segment: string): number {
  const semi = segment.indexOf(';');
  const encoded = segment.indexOf('%3B');
  if (semi === -1) return encoded;
  return encoded === -1 ? semi : Math.min(semi, encoded);
}

/** Drops empty elements except a final one (a trailing slash). */
function mergeEmpty(segments: string[]): string[] {
  return segments.filter((s, i) => s !== '' || i === segments.length - 1);
}

/** RFC 3986 §5.2.4 on the elements of an absolute path; the result starts with `/`. */
function removeDotSegments(segments: readonly string[]): string {
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 0; i <= last; i++) {
    const s = segments[i]!;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      if (i === last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
