/**
 * The routing model: what Ingress objects mean, as immutable data.
 *
 * A {@link RouteTable} is built from a snapshot of the object caches (Ingress, IngressClass, Service,
 * EndpointSlice, Secret) by `routes/build.ts`. Each build yields a new table with a higher `generation`;
 * readers hold a table for the duration of a request and swap to the next one atomically
 * (see `routes/store.ts`). Nothing in a table is ever mutated after it is published.
 */

/** Reference to a Kubernetes object, used in diagnostics, events and status. */
export interface ObjectRef {
  readonly kind: 'Ingress' | 'IngressClass' | 'Service' | 'EndpointSlice' | 'Secret';
  readonly namespace?: string | undefined;
  readonly name: string;
  readonly uid?: string | undefined;
}

/** The Ingress a route came from. */
export interface IngressRef {
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
  readonly unresolved?: { readonly reason: string; readonly message: string } | undefined;
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
   * without query. Returns the default backend route when nothing else matches, or undefined (404).
   */
  match(host: string, path: string): Route | undefined;
}

/** Route objects that differ between two tables (see {@link RouteTable.routeChangesSince}). */
export interface RouteChanges {
  readonly added: readonly Route[];
  readonly removed: readonly Route[];
}
