import type { HeaderEdits, PathReplacement, RouteFilters } from '../routes/types.js';
import type { Problem } from './listeners.js';
import type { HeaderModifier, HTTPRouteFilter, PathModifier } from './types.js';

/** Filters of a rule turned into `Route.filters`, or the first one Warren cannot apply. */
export type ConvertedFilters = { readonly ok: true; readonly filters: RouteFilters | undefined } | ({ readonly ok: false } & Problem);

const REDIRECT_CODES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * Converts `filters` (route rule or backendRef level). `prefixMatch` says whether every match of the rule is a path
 * prefix, which `ReplacePrefixMatch` needs. Filter types Warren does not implement fail the rule: the spec forbids
 * skipping a filter, so its requests get 500 instead.
 */
export function convertFilters(filters: readonly HTTPRouteFilter[] | undefined, field: string, prefixMatch: boolean): ConvertedFilters {
  if (!Array.isArray(filters) || filters.length === 0) return { ok: true, filters: undefined };
  let out: RouteFilters = {};
  for (const [i, f] of filters.entries()) {
    const at = `${field}[${i}]`;
    switch (f?.type) {
      case 'RequestHeaderModifier':
        out = { ...out, requestHeaders: mergeEdits(out.requestHeaders, headerEdits(f.requestHeaderModifier)) };
        break;
      case 'ResponseHeaderModifier':
        out = { ...out, responseHeaders: mergeEdits(out.responseHeaders, headerEdits(f.responseHeaderModifier)) };
        break;
      case 'RequestRedirect': {
        const r = f.requestRedirect ?? {};
        const path = pathReplacement(r.path, `${at}.requestRedirect.path`, prefixMatch);
        if (path && !path.ok) return path;
        const statusCode = r.statusCode ?? 302;
        if (!REDIRECT_CODES.has(statusCode))
          return { ok: false, reason: 'UnsupportedValue', message: `${at}.requestRedirect.statusCode ${statusCode} is not a redirect status` };
        const scheme = r.scheme === 'http' || r.scheme === 'https' ? r.scheme : undefined;
        if (r.scheme !== undefined && scheme === undefined) return { ok: false, reason: 'UnsupportedValue', message: `${at}.requestRedirect.scheme must be http or https` };
        out = {
          ...out,
          redirect: {
            scheme,
            hostname: r.hostname || undefined,
            port: typeof r.port === 'number' ? r.port : undefined,
            path: path?.value,
            statusCode: statusCode as 301 | 302 | 303 | 307 | 308,
          },
        };
        break;
      }
      case 'URLRewrite': {
        const r = f.urlRewrite ?? {};
        const path = pathReplacement(r.path, `${at}.urlRewrite.path`, prefixMatch);
        if (path && !path.ok) return path;
        out = { ...out, rewrite: { hostname: r.hostname || undefined, path: path?.value } };
        break;
      }
      default:
        return { ok: false, reason: 'UnsupportedValue', message: `${at}.type ${JSON.stringify(f?.type)} is not supported by Warren; the rule answers 500` };
    }
  }
  if (out.redirect && out.rewrite) return { ok: false, reason: 'UnsupportedValue', message: `${field}: RequestRedirect and URLRewrite cannot be combined` };
  return { ok: true, filters: out };
}

/** Route-level filters followed by a backendRef's own (header edits of both apply). */
export function combineFilters(rule: RouteFilters | undefined, backend: RouteFilters | undefined): RouteFilters | undefined {
  if (!backend) return rule;
  if (!rule) return backend;
  return {
    ...rule,
    ...backend,
    requestHeaders: mergeEdits(rule.requestHeaders, backend.requestHeaders),
    responseHeaders: mergeEdits(rule.responseHeaders, backend.responseHeaders),
  };
}

function headerEdits(m: HeaderModifier | undefined): HeaderEdits {
  const pairs = (list: HeaderModifier['set']) =>
    (Array.isArray(list) ? list : []).filter((h) => typeof h?.name === 'string' && h.name !== '').map((h) => [h.name!.toLowerCase(), String(h.value ?? '')] as const);
  const set = pairs(m?.set);
  const add = pairs(m?.add);
  const remove = (Array.isArray(m?.remove) ? m.remove : []).filter((n) => typeof n === 'string' && n !== '').map((n) => n.toLowerCase());
  return { set: set.length ? set : undefined, add: add.length ? add : undefined, remove: remove.length ? remove : undefined };
}

function mergeEdits(a: HeaderEdits | undefined, b: HeaderEdits | undefined): HeaderEdits | undefined {
  if (!a) return b;
  if (!b) return a;
  const join = <T>(x: readonly T[] | undefined, y: readonly T[] | undefined) => (x || y ? [...(x ?? []), ...(y ?? [])] : undefined);
  return { set: join(a.set, b.set), add: join(a.add, b.add), remove: join(a.remove, b.remove) };
}

function pathReplacement(m: PathModifier | undefined, field: string, prefixMatch: boolean): { ok: true; value: PathReplacement } | ({ ok: false } & Problem) | undefined {
  if (!m) return undefined;
  if (m.type === 'ReplaceFullPath' && typeof m.replaceFullPath === 'string') return { ok: true, value: { type: 'ReplaceFullPath', value: m.replaceFullPath } };
  if (m.type === 'ReplacePrefixMatch' && typeof m.replacePrefixMatch === 'string') {
    if (!prefixMatch) return { ok: false, reason: 'UnsupportedValue', message: `${field}: ReplacePrefixMatch needs PathPrefix matches only` };
    return { ok: true, value: { type: 'ReplacePrefixMatch', value: m.replacePrefixMatch } };
  }
  return { ok: false, reason: 'UnsupportedValue', message: `${field}.type ${JSON.stringify(m.type)} with its value is required (ReplaceFullPath or ReplacePrefixMatch)` };
}

/** A Gateway API duration (`1h`, `30s`, `500ms`, `1m30s`) in ms; undefined when malformed. `0s` means none. */
export function parseGatewayDuration(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^([0-9]{1,5}(h|m|s|ms)){1,4}$/.test(value)) return undefined;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const [, n, u] of value.matchAll(/([0-9]+)(ms|h|m|s)/g)) total += Number(n) * unit[u!]!;
  return total;
}
