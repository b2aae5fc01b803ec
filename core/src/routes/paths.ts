import type { PathType } from './types.js';

/**
 * Path rules (Kubernetes Ingress v1):
 *  - `Exact`: the request path equals the rule path, byte for byte (case-sensitive, trailing slash significant);
 *  - `Prefix`: element-wise on `/`-separated elements: `/foo` matches `/foo`, `/foo/` and `/foo/bar`, not
 *    `/foobar`; a trailing slash in the rule is ignored; `/` matches every path;
 *  - `ImplementationSpecific`: the same as `Prefix`.
 *
 * Requests are matched on the raw path as sent, after stripping the query (`?…`): no percent-decoding, no
 * dot-segment or slash normalisation. Rule paths that could never match a raw path, or that invite
 * confusion between encoded and decoded forms, are refused (the Kubernetes API refuses the same sequences).
 */

/** The longest rule path accepted. */
export const MAX_RULE_PATH_LENGTH = 4096;

/** How a validated rule path is matched: `exact` compares the key; `prefix` matches element-wise on the key. */
export type MatchKind = 'exact' | 'prefix';

export type CheckedPath =
  | { readonly ok: true; readonly path: string; readonly pathType: PathType; readonly kind: MatchKind; readonly key: string }
  | { readonly ok: false; readonly problem: string; readonly field: 'path' | 'pathType' };

const PATH_TYPES: ReadonlySet<string> = new Set(['Exact', 'Prefix', 'ImplementationSpecific']);
const BAD_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const BAD_SUFFIXES = ['/..', '/.'];

/**
 * Validates a rule path and its type. A missing or empty path means `/`; a missing pathType means
 * `ImplementationSpecific` (the `networking.k8s.io/v1beta1` default). For prefixes, `key` is the path without
 * its trailing slash (`''` for `/`). Never throws.
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
  // eslint-disable-next-line no-control-regex
  if (/[^\x21-\x7e]/.test(p)) {
    return { ok: false, field: 'path', problem: `${quote(p)} contains spaces, control or non-ASCII characters; percent-encode them as clients send them` };
  }
  if (p.includes('?') || p.includes('#')) {
    return { ok: false, field: 'path', problem: `${quote(p)} contains "?" or "#"; rules match the path only, never the query or fragment` };
  }
  for (const seq of BAD_SEQUENCES) {
    if (p.includes(seq)) return { ok: false, field: 'path', problem: `${quote(p)} must not contain "${seq}"` };
  }
  for (const suffix of BAD_SUFFIXES) {
    if (p.endsWith(suffix)) return { ok: false, field: 'path', problem: `${quote(p)} must not end with "${suffix}"` };
  }
  const checkedType = type as PathType;
  if (checkedType === 'Exact') return { ok: true, path: p, pathType: checkedType, kind: 'exact', key: p };
  return { ok: true, path: p, pathType: checkedType, kind: 'prefix', key: p.endsWith('/') ? p.slice(0, -1) : p };
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

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
