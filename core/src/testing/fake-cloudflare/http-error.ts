/** An API failure the fake answers with the Cloudflare envelope: `{success: false, errors, messages: [], result: null}`. */
export class FakeApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: ReadonlyArray<{ code: number; message: string }>,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(errors.map((e) => `${e.code} ${e.message}`).join('; '));
  }
}

export const badRequest = (code: number, message: string) => new FakeApiError(400, [{ code, message }]);
export const notFound = (code: number, message: string) => new FakeApiError(404, [{ code, message }]);

/** Cloudflare's answer for a path or identifier it cannot route (code 7003). */
export const unroutable = (path: string) => new FakeApiError(404, [{ code: 7003, message: `Could not route to ${path}, perhaps your object identifier is invalid?` }]);

export interface PageOptions {
  readonly defaultPerPage: number;
  readonly minPerPage: number;
  readonly maxPerPage: number;
}

export interface Page<T> {
  readonly items: T[];
  readonly resultInfo: { page: number; per_page: number; count: number; total_count: number; total_pages: number };
}

/** Cuts `items` into the page the query asks for, validating `page` and `per_page` as the API does. */
export function paginate<T>(items: readonly T[], query: URLSearchParams, options: PageOptions): Page<T> {
  const page = intParam(query, 'page', 1);
  const perPage = intParam(query, 'per_page', options.defaultPerPage);
  if (page < 1) throw badRequest(1004, 'page must be 1 or more');
  if (perPage < options.minPerPage || perPage > options.maxPerPage) {
    throw badRequest(1004, `per_page must be between ${options.minPerPage} and ${options.maxPerPage}`);
  }
  const start = (page - 1) * perPage;
  const slice = items.slice(start, start + perPage);
  return {
    items: slice,
    resultInfo: {
      page,
      per_page: perPage,
      count: slice.length,
      total_count: items.length,
      total_pages: Math.max(1, Math.ceil(items.length / perPage)),
    },
  };
}

function intParam(query: URLSearchParams, name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw badRequest(1004, `${name} must be an integer`);
  return Number(raw);
}

/** Filters of the `name.exact` / `name.contains` / `name.startswith` / `name.endswith` kind (plain `name` = exact). */
export function textFilter(query: URLSearchParams, field: string): ((value: string) => boolean) | undefined {
  const checks: Array<(v: string) => boolean> = [];
  const plain = query.get(field) ?? query.get(`${field}.exact`);
  if (plain !== null) checks.push((v) => v.toLowerCase() === plain.toLowerCase());
  const contains = query.get(`${field}.contains`);
  if (contains !== null) checks.push((v) => v.toLowerCase().includes(contains.toLowerCase()));
  const starts = query.get(`${field}.startswith`);
  if (starts !== null) checks.push((v) => v.toLowerCase().startsWith(starts.toLowerCase()));
  const ends = query.get(`${field}.endswith`);
  if (ends !== null) checks.push((v) => v.toLowerCase().endsWith(ends.toLowerCase()));
  return checks.length ? (v) => checks.every((c) => c(v)) : undefined;
}

export const newId = (): string => crypto.randomUUID().replaceAll('-', '');
export const now = (): string => new Date().toISOString();
