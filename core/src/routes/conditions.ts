import { RE2JS } from 're2js';
import type { RequestConditions, RequestFacts, ValueMatch } from './types.js';

/**
 * Request conditions (method, headers, query parameters) compiled for matching. Regular expressions use the RE2
 * syntax and RE2's linear-time matcher (re2js), so no pattern can make a request take super-linear time; a pattern
 * must match the whole value. Compiled once per conditions object (routes are reused across builds).
 */

/** Longest regular expression accepted, in characters. */
export const MAX_PATTERN_LENGTH = 1024;

/** One compiled header or query condition: an exact value, or a regular expression over the whole value. */
interface CompiledValueMatch {
  readonly name: string;
  readonly exact: string | undefined;
  readonly pattern: RE2JS | undefined;
}

export interface CompiledConditions {
  readonly method: string | undefined;
  readonly headers: readonly CompiledValueMatch[];
  readonly query: readonly CompiledValueMatch[];
  /** Precedence among conditions on the same host and path: method, then header count, then query count. */
  readonly specificity: number;
}

export type ConditionsCheck = { readonly ok: true; readonly compiled: CompiledConditions } | { readonly ok: false; readonly message: string };

const compiledCache = new WeakMap<RequestConditions, ConditionsCheck>();

/** Compiles `conditions` (cached per object); a regular expression that is not valid RE2 is refused with why. */
export function compileConditions(conditions: RequestConditions): ConditionsCheck {
  let check = compiledCache.get(conditions);
  if (check === undefined) {
    check = compile(conditions);
    compiledCache.set(conditions, check);
  }
  return check;
}

/** Orders conditions by the Gateway API precedence: positive when `a` is tried before `b`. */
export function specificity(conditions: RequestConditions | undefined): number {
  if (conditions === undefined) return 0;
  // At most 16 headers and 16 query parameters per Gateway API match: the weights cannot overlap.
  return (conditions.method !== undefined ? 1 << 12 : 0) + (conditions.headers?.length ?? 0) * 64 + (conditions.query?.length ?? 0);
}

/** A canonical text of `conditions`: equal for conditions that accept the same requests by construction. */
export function conditionsKey(conditions: RequestConditions | undefined): string {
  if (conditions === undefined) return '';
  const list = (matches: readonly ValueMatch[] | undefined) =>
    (matches ?? [])
      .map((m) => JSON.stringify([m.name, m.type, m.value]))
      .sort()
      .join(',');
  const text = `${conditions.method ?? ''}|${list(conditions.headers)}|${list(conditions.query)}`;
  return text === '||' ? '' : text;
}

function compile(conditions: RequestConditions): ConditionsCheck {
  const headers: CompiledValueMatch[] = [];
  const query: CompiledValueMatch[] = [];
  for (const [list, into, what] of [
    [conditions.headers, headers, 'header'],
    [conditions.query, query, 'query parameter'],
  ] as const) {
    for (const m of list ?? []) {
      if (m.type === 'Exact') {
        into.push({ name: what === 'header' ? m.name.toLowerCase() : m.name, exact: m.value, pattern: undefined });
        continue;
      }
      if (m.value.length > MAX_PATTERN_LENGTH) {
        return { ok: false, message: `${what} ${JSON.stringify(m.name)}: regular expression longer than ${MAX_PATTERN_LENGTH} characters` };
      }
      try {
        into.push({ name: what === 'header' ? m.name.toLowerCase() : m.name, exact: undefined, pattern: RE2JS.compile(m.value) });
      } catch (err) {
        return { ok: false, message: `${what} ${JSON.stringify(m.name)}: ${JSON.stringify(m.value)} is not a valid RE2 regular expression (${(err as Error).message})` };
      }
    }
  }
  return { ok: true, compiled: Object.freeze({ method: conditions.method, headers, query, specificity: specificity(conditions) }) };
}

/** Per-request scratch: the query parsed once, on the first query condition checked. */
export class RequestView {
  readonly request: RequestFacts | undefined;
  #query: URLSearchParams | undefined;

  constructor(request: RequestFacts | undefined) {
    this.request = request;
  }

  /** The first value of query parameter `name` (case-sensitive), decoded. */
  queryValue(name: string): string | null {
    this.#query ??= new URLSearchParams(this.request!.query);
    return this.#query.get(name);
  }
}

/** True when the request satisfies every condition; a request without facts satisfies none. */
export function conditionsHold(c: CompiledConditions, view: RequestView): boolean {
  const request = view.request;
  if (request === undefined) return false;
  if (c.method !== undefined && request.method !== c.method) return false;
  for (const h of c.headers) {
    const value = joinedHeader(request.headers, h.name);
    if (value === undefined || !valueMatches(h, value)) return false;
  }
  for (const q of c.query) {
    const value = view.queryValue(q.name);
    if (value === null || !valueMatches(q, value)) return false;
  }
  return true;
}

function valueMatches(m: CompiledValueMatch, value: string): boolean {
  return m.pattern !== undefined ? m.pattern.matches(value) : value === m.exact;
}

/** Every value of header `name` (lower-case) joined with ", ", as a repeated field is combined; undefined when absent. */
function joinedHeader(headers: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const n = headers[i]!;
    if (n.length === name.length && (n === name || n.toLowerCase() === name)) value = value === undefined ? headers[i + 1]! : `${value}, ${headers[i + 1]}`;
  }
  return value;
}
