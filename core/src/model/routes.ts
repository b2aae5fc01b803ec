/**
 * The routing model: what Ingress and Gateway API route objects mean, as immutable data.
 *
 * A {@link RouteTable} is built from a snapshot of the object caches (Ingress, IngressClass, Service,
 * EndpointSlice, Secret, and the Gateway API kinds) by `routes/build.ts`. Ingress rules and HTTPRoute/GRPCRoute
 * rules become the same {@link Route}s in the same table, matched by one matcher and served by one plugin chain. Each build yields a new table with a higher `generation`;
 * readers hold a table for the duration of a request and swap to the next one atomically
 * (see `routes/store.ts`). Nothing in a table is ever mutated after it is published.
 */

/** Reference to a Kubernetes object, used in diagnostics, events and status. */
export interface ObjectRef {
  readonly kind: ObjectKind;
  readonly namespace?: string | undefined;
  readonly name: string;
  readonly uid?: string | undefined;
}

/** Kinds a diagnostic, event or status can name. */
export type ObjectKind =
  | 'Ingress'
  | 'IngressClass'
  | 'Service'
  | 'EndpointSlice'
  | 'Secret'
  | 'GatewayClass'
  | 'Gateway'
  | 'HTTPRoute'
  | 'GRPCRoute'
  | 'ReferenceGrant'
  | 'BackendTLSPolicy';

/** The kinds of object that declare routes. */
export type RouteOwnerKind = 'Ingress' | 'HTTPRoute' | 'GRPCRoute';

/**
 * The object a route came from: an Ingress, or (with `kind` set) an HTTPRoute or GRPCRoute. Undefined `kind`
 * means Ingress, so every Ingress-only producer stays as it was.
 */
export interface IngressRef {
  readonly kind?: RouteOwnerKind | undefined;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** RFC 3339 creation time; with namespace/name it orders conflicting claims (oldest wins). */
  readonly creationTimestamp: string;
  readonly generation: number;
}

/** One ready (or, as a last resort, terminating-but-serving) endpoint of a backend. */
export interface Endpoint {
  /** `address:port` (IPv6 in brackets); stable identity for balancing, ejection and metrics. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  /** True only when the endpoint is terminating but still serving and no fully ready endpoint exists. */
  readonly terminating: boolean;
  readonly podName?: string | undefined;
  readonly zone?: string | undefined;
}

/** A Service port resolved to endpoints. */
export interface ServiceBackend {
  readonly namespace: string;
  readonly service: string;
  /** The Service port as resolved (number), with its name when it has one. */
  readonly port: number;
  readonly portName?: string | undefined;
  /** Service port `appProtocol`, used to pick the upstream protocol when no annotation does. */
  readonly appProtocol?: string | undefined;
  /** Ready endpoints in a stable order (sorted by key). Empty means 503. */
  readonly endpoints: readonly Endpoint[];
}

export type PathType = 'Exact' | 'Prefix' | 'ImplementationSpecific';

/**
 * Upstream protocol of a route (lower case), from `warren.dev/backend-protocol` (case-insensitive) or the Service
 * port's `appProtocol`. `http` is core's own; every other value is claimed by a plugin manifest's `protocols`
 * list, and a route whose protocol no enabled plugin claims is skipped with a Warning. An open set: a plugin adds
 * a protocol by listing it. The builder resolves `AUTO` from the Service port (see `routes/protocol.ts`), so
 * tables never hold `auto`.
 */
export type BackendProtocol = string;

/**
 * Where a route comes from: an Ingress rule path, an Ingress `spec.defaultBackend`, or the controller-wide
 * `proxy.defaultBackend` setting (whose `ingress` is a placeholder with an empty name and uid).
 */
export type RouteSource = 'rule' | 'ingress-default' | 'controller-default';

/** A condition on one request header or query parameter (Gateway API matches). */
export interface ValueMatch {
  /** Header names lower-case; query parameter names exactly as declared (they are case-sensitive). */
  readonly name: string;
  readonly type: 'Exact' | 'RegularExpression';
  readonly value: string;
}

/**
 * What a request must carry besides host and path for a route to match; every listed condition must hold. Routes
 * from Ingresses have none. Among routes on the same host and path key, more specific conditions are tried first:
 * a method, then more header matches, then more query matches (the Gateway API precedence).
 */
export interface RequestConditions {
  /** Upper-case HTTP method. */
  readonly method?: string | undefined;
  readonly headers?: readonly ValueMatch[] | undefined;
  readonly query?: readonly ValueMatch[] | undefined;
}

/** The request facts conditions are checked against. */
export interface RequestFacts {
  readonly method: string;
  /** Flat `[name, value, …]` list with lower-case names, as on the exchange's request head. */
  readonly headers: readonly string[];
  /** The raw query string without `?` (`''` when there is none). */
  readonly query: string;
}

/** Header edits, applied in this order: set (replace), add (append), remove. Names lower-case. */
export interface HeaderEdits {
  readonly set?: readonly (readonly [name: string, value: string])[] | undefined;
  readonly add?: readonly (readonly [name: string, value: string])[] | undefined;
  readonly remove?: readonly string[] | undefined;
}

/** A path replacement: the whole path, or the part the route's prefix matched. */
export type PathReplacement = { readonly type: 'ReplaceFullPath'; readonly value: string } | { readonly type: 'ReplacePrefixMatch'; readonly value: string };

/** What happens to a request on its route besides forwarding (Gateway API filters; annotations may map here too). */
export interface RouteFilters {
  /** Edits of the request headers sent upstream. */
  readonly requestHeaders?: HeaderEdits | undefined;
  /** Edits of the response headers sent to the client. */
  readonly responseHeaders?: HeaderEdits | undefined;
  /** Answer with a redirect instead of forwarding; unset parts keep the request's own. */
  readonly redirect?:
    | {
        readonly scheme?: 'http' | 'https' | undefined;
        readonly hostname?: string | undefined;
        readonly port?: number | undefined;
        readonly path?: PathReplacement | undefined;
        readonly statusCode: 301 | 302 | 303 | 307 | 308;
      }
    | undefined;
  /** Rewrite host and/or path before forwarding. */
  readonly rewrite?: { readonly hostname?: string | undefined; readonly path?: PathReplacement | undefined } | undefined;
}

/**
 * One routable (host, path) → backend mapping. `host` undefined means "any host" (a rule without host, or a
 * default backend). Wildcard hosts are stored as `*.example.com`.
 */
export interface Route {
  /** Stable across rebuilds while the Ingress rule is unchanged: `ns/name#rule/path` or `ns/name#default`. */
  readonly id: string;
  readonly ingress: IngressRef;
  readonly host: string | undefined;
  readonly path: string;
  readonly pathType: PathType;
  readonly backend: ServiceBackend;
  readonly protocol: BackendProtocol;
  /**
   * Parsed and validated values of the Ingress's `warren.dev/*` annotations, keyed by the annotation key
   * without the prefix (e.g. `connect-timeout` → 5000). Each value was produced by the schema of the plugin
   * (or core) that owns the key; read a value typed with the owner's spec: `CONNECT_TIMEOUT.get(route)` (`defineAnnotation`).
   */
  readonly annotations: Readonly<Record<string, unknown>>;
  /** Secrets this route references through annotations (`namespace/name`), for the Secret cache. */
  readonly secretRefs: readonly string[];
  /** Set by the route builder on every route it makes; optional only so hand-made routes (tests) may omit it. */
  readonly source?: RouteSource | undefined;
  /**
   * Set when the path's backend cannot be served (no such Service or port, an unsupported backend, a protocol no
   * enabled plugin serves). The route still claims its host and path, with no endpoints, so requests there get 503
   * instead of falling through to a broader route's backend. `reason` is the Warning's reason.
   */
  readonly unresolved?: { readonly reason: string; readonly message: string /** HTTP status to answer (default 503). */; readonly status?: number | undefined } | undefined;
  /** Conditions beyond host and path (Gateway API matches); none for Ingress routes. */
  readonly conditions?: RequestConditions | undefined;
  /** Filters of the rule (Gateway API); none for plain Ingress routes. */
  readonly filters?: RouteFilters | undefined;
  /**
   * Set on each route of a rule that splits traffic by weight (Gateway API `backendRefs[].weight`): the routes of
   * one rule share `group` (the rule's id) and the matcher picks one per request in proportion to `weight`; a
   * weight of 0 is never picked. Unset: the route is the rule's only backend.
   */
  readonly weight?: { readonly group: string; readonly weight: number } | undefined;
  /** Timeouts of the rule, ms (Gateway API `timeouts`); unset: the controller's and annotations' defaults. */
  readonly timeouts?: { readonly request?: number | undefined; readonly backendRequest?: number | undefined } | undefined;
  /**
   * The Gateway (`namespace/name`) whose own tunnel serves this route, set when each Gateway has a tunnel of its
   * own (managed tunnel): only exchanges that arrived on that tunnel match it, and it never matches one that
   * arrived elsewhere. Unset: the route is served through the installation's main tunnel (Ingress routes, and every
   * Gateway's routes when all Gateways share the tunnel).
   */
  readonly gateway?: string | undefined;
  /**
   * The listeners of {@link gateway} this route is attached through for its host (set with `gateway`): a request
   * takes the route only when one of them is the listener the Gateway picks for the request's host and port (see
   * {@link ListenerScope}). Unset: no listener scoping (Ingress routes, and Gateway routes on a shared tunnel).
   */
  readonly listeners?: readonly ListenerScope[] | undefined;
}

/**
 * One listener of a Gateway, as far as picking it for a request goes. A Gateway hands each request to exactly one
 * listener: among those on the request's port whose hostname matches its host, the most specific (an exact
 * hostname, then the wildcard with the longest suffix, then none); only routes attached to that listener may
 * answer it (Gateway API listener isolation).
 */
export interface ListenerScope {
  /** `spec.listeners[].name`. */
  readonly name: string;
  /** The request ports it receives (the port of the request's Host, else 80 for http and 443 for https). */
  readonly ports: readonly number[];
  /** Lower-case; a wildcard (`*.example.com`) matches one or more labels; undefined matches every host. */
  readonly hostname: string | undefined;
  /** Hostnames of the Gateway's more specific listeners on the same ports: a host one of them matches is theirs. */
  readonly yieldsTo: readonly string[];
}

/** A problem found while building the table, turned into a Kubernetes Event by the leader. */
export interface Diagnostic {
  readonly type: 'Normal' | 'Warning';
  /** CamelCase reason, e.g. `InvalidAnnotation`, `ServiceNotFound`, `RouteConflict`. */
  readonly reason: string;
  /** Human message naming the object and the field. */
  readonly message: string;
  readonly object: ObjectRef;
  /** JSON-path-like field, e.g. `spec.rules[0].http.paths[1].backend.service.port`. */
  readonly field?: string | undefined;
}

/** The immutable result of one build. */
export interface RouteTable {
  readonly generation: number;
  /** Every route, in no particular order. */
  readonly routes: readonly Route[];
  /** Problems found during the build; the same input yields the same diagnostics. */
  readonly diagnostics: readonly Diagnostic[];
  /** Ingresses Warren owns (class matched), valid or not: they get status and events. */
  readonly ownedIngresses: readonly IngressRef[];
  /**
   * The owned Ingresses (`namespace/name`) whose entry differs from `previous` — newly owned, no longer owned, or
   * a changed {@link IngressRef} — mapped to their entry in this table (undefined when no longer owned), if this
   * table can tell without comparing everything (it was built incrementally from `previous`). Undefined
   * otherwise: compare `ownedIngresses` in full. Optional for other implementations.
   */
  ownedChangesSince?(previous: RouteTable): ReadonlyMap<string, IngressRef | undefined> | undefined;
  /**
   * The routes (by object identity) this table has and `previous` had not (`added`), and the reverse (`removed`),
   * if this table can tell without comparing everything (it was built incrementally from `previous`). Undefined
   * otherwise: compare `routes` in full. Optional for other implementations.
   */
  routeChangesSince?(previous: RouteTable): RouteChanges | undefined;
  /** Every distinct host (exact or `*.wildcard`) that owned Ingresses route, lower-case. */
  readonly hosts: readonly string[];
  /**
   * Finds the route for a request. `host` may carry a port and any case; `path` is the request path
   * without query. Routes with {@link RequestConditions} match only when `request` is given and satisfies them.
   * Returns the default backend route when nothing else matches, or undefined (404).
   *
   * `gateway` is the entrance the request arrived through: a Gateway's own tunnel (`namespace/name`) matches only
   * that Gateway's routes (no default backend); undefined — the main tunnel or any other entrance — matches only
   * routes without {@link Route.gateway}. Within a Gateway, routes with {@link Route.listeners} match only when one of
   * their listeners is the one the Gateway picks for the request's host and port.
   */
  match(host: string, path: string, request?: RequestFacts, gateway?: string): Route | undefined;
}

/** Route objects that differ between two tables (see {@link RouteTable.routeChangesSince}). */
export interface RouteChanges {
  readonly added: readonly Route[];
  readonly removed: readonly Route[];
}
