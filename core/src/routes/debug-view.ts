import { ANNOTATION_PREFIX } from '../plugin-api/manifest.js';
import { requestHost } from './hosts.js';
import type { RoutingPlugins } from './plugins.js';
import type { Diagnostic, RequestConditions, Route, RouteOwnerKind, RouteTable } from './types.js';

/**
 * The read-only debug view of a route table (served as JSON on the health port at `/debug/routes`, printed by
 * `warren routes`): what Warren decided, per route, and the problems it found.
 *
 * It shows what `kubectl get ingress,service,endpointslice` shows — hosts, paths, Service names, pod addresses —
 * and never a Secret's contents: routes only name the Secrets their annotations reference. Annotation values are
 * left out too (the keys are listed); read them from the Ingress.
 */

/** Most routes (and problems) one answer lists unless the caller asks for fewer; the rest is counted. */
const DEBUG_VIEW_DEFAULT_LIMIT = 1000;
/** Upper bound of `limit`: an answer stays a few MB at most, whatever the table's size. */
export const DEBUG_VIEW_MAX_LIMIT = 10_000;

interface RouteEndpointView {
  readonly address: string;
  readonly port: number;
  /** `ready`, or `terminating` for a terminating-but-serving endpoint used because no ready one exists. */
  readonly state: 'ready' | 'terminating';
  readonly pod?: string | undefined;
  readonly zone?: string | undefined;
}

export interface RouteView {
  readonly id: string;
  /** The rule's host, `*.parent` for a wildcard, or `*` for any host (rules without host, default backends). */
  readonly host: string;
  readonly path: string;
  readonly pathType: string;
  readonly source: string;
  /** `namespace/name` of the Ingress (or of the object named by `kind`), or `setting proxy.defaultBackend`. */
  readonly ingress: string;
  /** Set when the route comes from another kind than Ingress (`HTTPRoute`, `GRPCRoute`). */
  readonly kind?: RouteOwnerKind | undefined;
  /** What a request must carry besides host and path (Gateway API matches). */
  readonly conditions?: RequestConditions | undefined;
  /** The rule's weighted group and this backend's weight. */
  readonly weight?: { readonly group: string; readonly weight: number } | undefined;
  /** The Gateway (`namespace/name`) whose own tunnel alone serves this route (managed tunnel; see `Route.gateway`). */
  readonly gateway?: string | undefined;
  /** Generation of the Ingress the route was built from (older than the Ingress's own when its last good version is kept). */
  readonly ingressGeneration: number;
  readonly backend: { readonly namespace: string; readonly service: string; readonly port: number; readonly portName?: string | undefined };
  readonly protocol: string;
  /** What serves the protocol (`core` or a plugin id), then the owners of the route's annotations. */
  readonly plugins: readonly string[];
  /** Full `warren.dev/` keys set on the Ingress. */
  readonly annotations: readonly string[];
  /** Secrets referenced through annotations (`namespace/name`); names only. */
  readonly secretRefs: readonly string[];
  readonly endpoints: readonly RouteEndpointView[];
  /** `serving`; `no-endpoints` (503 until one is ready); `unresolved` (503, or `problem.status`: the backend cannot be resolved). */
  readonly state: 'serving' | 'no-endpoints' | 'unresolved';
  /** Why the route is unresolved, and the status it answers when not 503. */
  readonly problem?: { readonly reason: string; readonly message: string; readonly status?: number | undefined } | undefined;
}

interface ProblemView {
  readonly type: string;
  readonly reason: string;
  /** `Kind namespace/name`. */
  readonly object: string;
  readonly field?: string | undefined;
  readonly message: string;
}

export interface RouteTableView {
  readonly generation: number;
  readonly ingresses: number;
  readonly hosts: number;
  /** Routes in the table (before filtering). */
  readonly totalRoutes: number;
  /** Routes matching the filter, sorted by host then path; at most `limit`. */
  readonly routes: readonly RouteView[];
  /** With `host` and `path`: the route that request gets, or null (404). */
  readonly match?: RouteView | null | undefined;
  /** Warnings and notices of the table (of the filtered routes' objects when filtered); at most `limit`. */
  readonly problems: readonly ProblemView[];
  /** Routes or problems left out by `limit`. */
  readonly truncated: { readonly routes: number; readonly problems: number };
}

export interface RouteViewQuery {
  /** Only routes that can answer this request host (its exact host, the wildcard covering it, or any host). */
  readonly host?: string | undefined;
  /** With `host`: also report which route a plain `GET` for this path (and query) gets. */
  readonly path?: string | undefined;
  /** With `path`: match as a request that arrived on this Gateway's own tunnel (`namespace/name`; managed tunnel). */
  readonly gateway?: string | undefined;
  readonly limit?: number | undefined;
}

/** Reads a query from URL search parameters (`host`, `path`, `gateway`, `limit`); bad values are ignored. */
export function routeViewQuery(params: URLSearchParams): RouteViewQuery {
  const limit = Number(params.get('limit'));
  return {
    host: params.get('host') || undefined,
    path: params.get('path') || undefined,
    gateway: params.get('gateway') || undefined,
    limit: Number.isInteger(limit) && limit > 0 ? limit : undefined,
  };
}

/** Describes `table` for people: pure, and linear in the size of the table. */
export function describeRouteTable(table: RouteTable, plugins: RoutingPlugins | undefined, query: RouteViewQuery = {}): RouteTableView {
  const limit = Math.min(query.limit ?? DEBUG_VIEW_DEFAULT_LIMIT, DEBUG_VIEW_MAX_LIMIT);
  const host = query.host === undefined ? undefined : requestHost(query.host);
  const selected = host === undefined ? [...table.routes] : table.routes.filter((r) => answersHost(r, host));
  selected.sort(byHostThenPath);
  const owners = new Set(selected.map((r) => `${r.ingress.kind ?? 'Ingress'}/${r.ingress.namespace}/${r.ingress.name}`));
  const problems = table.diagnostics.filter((d) => host === undefined || owners.has(`${d.object.kind}/${d.object.namespace}/${d.object.name}`)).sort(byObject);
  let match: RouteView | null | undefined;
  if (host !== undefined && query.path !== undefined) {
    const q = query.path.indexOf('?');
    const hit = table.match(host, query.path, { method: 'GET', headers: [], query: q < 0 ? '' : query.path.slice(q + 1) }, query.gateway);
    match = hit ? describeRoute(hit, plugins) : null;
  }
  return {
    generation: table.generation,
    ingresses: table.ownedIngresses.length,
    hosts: table.hosts.length,
    totalRoutes: table.routes.length,
    routes: selected.slice(0, limit).map((r) => describeRoute(r, plugins)),
    ...(match === undefined ? {} : { match }),
    problems: problems.slice(0, limit).map(describeProblem),
    truncated: { routes: Math.max(0, selected.length - limit), problems: Math.max(0, problems.length - limit) },
  };
}

function describeRoute(route: Route, plugins: RoutingPlugins | undefined): RouteView {
  const annotationKeys = Object.keys(route.annotations).sort();
  const owners = new Set<string>();
  const protocolOwner = plugins?.protocolOwner(route.protocol);
  if (protocolOwner) owners.add(protocolOwner);
  for (const key of annotationKeys) {
    const owner = plugins?.annotation(key)?.owner;
    if (owner && owner !== 'core') owners.add(owner);
  }
  const b = route.backend;
  const state = route.unresolved ? 'unresolved' : b.endpoints.length === 0 ? 'no-endpoints' : 'serving';
  return {
    id: route.id,
    host: route.host ?? '*',
    path: route.path,
    pathType: route.pathType,
    source: route.source ?? 'rule',
    ingress: route.source === 'controller-default' ? 'setting proxy.defaultBackend' : `${route.ingress.namespace}/${route.ingress.name}`,
    ingressGeneration: route.ingress.generation,
    ...(route.ingress.kind ? { kind: route.ingress.kind } : {}),
    ...(route.conditions ? { conditions: route.conditions } : {}),
    ...(route.weight ? { weight: route.weight } : {}),
    ...(route.gateway ? { gateway: route.gateway } : {}),
    backend: { namespace: b.namespace, service: b.service, port: b.port, ...(b.portName ? { portName: b.portName } : {}) },
    protocol: route.protocol,
    plugins: [...owners],
    annotations: annotationKeys.map((k) => ANNOTATION_PREFIX + k),
    secretRefs: [...route.secretRefs],
    endpoints: b.endpoints.map((e) => ({
      address: e.address,
      port: e.port,
      state: e.terminating ? 'terminating' : 'ready',
      ...(e.podName ? { pod: e.podName } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
    })),
    state,
    ...(route.unresolved
      ? { problem: { reason: route.unresolved.reason, message: route.unresolved.message, ...(route.unresolved.status ? { status: route.unresolved.status } : {}) } }
      : {}),
  };
}

function describeProblem(d: Diagnostic): ProblemView {
  const o = d.object;
  return {
    type: d.type,
    reason: d.reason,
    object: `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`,
    ...(d.field ? { field: d.field } : {}),
    message: d.message,
  };
}

/** True when a request for `host` (lower-case, no port) could be answered by `route`. */
function answersHost(route: Route, host: string): boolean {
  if (route.host === undefined || route.host === host) return true;
  if (!route.host.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === route.host.slice(2);
}

function byHostThenPath(a: Route, b: Route): number {
  const ah = a.host ?? '\u{10FFFF}';
  const bh = b.host ?? '\u{10FFFF}';
  if (ah !== bh) return ah < bh ? -1 : 1;
  if (a.path !== b.path) return a.path < b.path ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function byObject(a: Diagnostic, b: Diagnostic): number {
  const ak = `${a.object.kind}/${a.object.namespace ?? ''}/${a.object.name}/${a.field ?? ''}/${a.reason}`;
  const bk = `${b.object.kind}/${b.object.namespace ?? ''}/${b.object.name}/${b.field ?? ''}/${b.reason}`;
  return ak < bk ? -1 : ak > bk ? 1 : 0;
}
