import { ErrorCode, WarrenError, isWarrenError } from '../errors.js';
import type { PluginManifest } from '../plugin-api/manifest.js';
import type { ErrorAnswer, FailedExchange, RouteBinding, TransportProfile, UpstreamDispatch, UpstreamInterceptor, UpstreamPlugin } from '../plugin-api/upstream.js';
import { AUTO_PROTOCOL } from '../routes/core-annotations.js';
import { HTTP_PROTOCOL, ProtocolCatalog } from '../routes/protocol.js';
import type { Route } from '../routes/types.js';
import { routeOwnerKind } from '../model/route-owner.js';
import type { RouteLabelValues } from './metrics.js';
import {
  CONNECT_TIMEOUT,
  IDLE_TIMEOUT,
  LOAD_BALANCING,
  REQUEST_BODY_TIMEOUT,
  RESPONSE_HEADER_TIMEOUT,
  UPSTREAM_HOST,
  UPSTREAM_QUEUE_TIMEOUT,
} from '../routes/core-annotations.js';
import type { ErrorMapper } from './errors.js';
import { createBalancer, type Balancer, type BalancingPolicy, type EndpointStates } from './balancer.js';
import { filtersInterceptor } from './route-filters.js';
import { endpointOrigin, poolKey, type PoolOpener } from './transport.js';

/**
 * Compiles a route once per plugin set (generations sharing a set keep it): which plugins bind it, its transport
 * profile, its interceptor chain, its upgrade handler, balancer and timeouts. The per-request path only looks these
 * up.
 */

/** A plugin instance with its manifest, in chain order. */
export interface PluginEntry {
  readonly plugin: UpstreamPlugin;
  readonly manifest: PluginManifest;
}

export interface ProxyDefaults {
  readonly connectTimeout: number;
  readonly responseHeaderTimeout: number;
  readonly idleTimeout: number;
  readonly requestBodyTimeout: number;
  readonly upstreamQueueTimeout: number;
  readonly loadBalancing: BalancingPolicy;
}

export interface CompiledRoute {
  readonly route: Route;
  /** Set when the route cannot be served; every request gets this error. */
  readonly unavailable: WarrenError | undefined;
  /** The plugins' error mapping for this route (`UpstreamPlugin.mapError`), if any plugin has one. */
  readonly mapError: ErrorMapper | undefined;
  readonly profile: TransportProfile;
  readonly balancer: Balancer;
  /** Pool key per endpoint (same index as `balancer.endpoints`). */
  readonly poolKeys: readonly string[];
  /**
   * Pool key per endpoint for upgrade requests (undefined when the route cannot upgrade): the route's own unless
   * the upgrading plugin asks for another profile (`UpstreamPlugin.upgradeProfile`).
   */
  readonly upgradePoolKeys: readonly string[] | undefined;
  /** The interceptor chain ending in core's dispatch. */
  readonly dispatch: UpstreamDispatch;
  /** The chain answers every request itself (a redirect filter): the route needs no backend endpoint. */
  readonly answersItself: boolean;
  readonly upgrade: { readonly plugin: UpstreamPlugin; readonly binding: RouteBinding } | undefined;
  readonly responseHeaderTimeout: number;
  readonly idleTimeout: number;
  /** The route's `idle-timeout` annotation, when set. */
  readonly idleTimeoutOverride: number | undefined;
  /** Longest wait for the client's next request-body bytes while they are wanted. */
  readonly requestBodyTimeout: number;
  /** Longest wait for a free connection slot to the chosen endpoint. */
  readonly queueTimeout: number;
  /** Bound of the whole exchange until the response ended (the route's `timeouts.request`); undefined: none. */
  readonly requestTimeout: number | undefined;
  /** Bound of each upstream attempt until its response ended (the route's `timeouts.backendRequest`); undefined: none. */
  readonly backendRequestTimeout: number | undefined;
  readonly hostOverride: string | undefined;
  /** Close HTTP/1.1 connections after each request (no keep-alive profile). */
  readonly closeConnections: boolean;
  /** Labels for metrics, computed once. */
  readonly labels: RouteLabelValues;
}

/** A plugin bound to the route being compiled. */
interface Bound {
  readonly entry: PluginEntry;
  readonly binding: RouteBinding;
}

/**
 * The error mapping of the plugins that have one, in chain order, each with its binding for the route (undefined
 * when it did not bind the route, or when there is no route); the first answer wins. A plugin that throws is
 * passed over: the client then gets the next answer, or core's error page.
 */
function errorMapper(plugins: readonly PluginEntry[], bound: readonly Bound[] = []): ErrorMapper | undefined {
  const mappers: Array<(failure: FailedExchange) => ErrorAnswer | undefined> = [];
  for (const entry of plugins) {
    const plugin = entry.plugin;
    if (typeof plugin.mapError !== 'function') continue;
    const binding = bound.find((b) => b.entry === entry)?.binding;
    mappers.push((failure) => plugin.mapError!(binding, failure));
  }
  if (mappers.length === 0) return undefined;
  return (failure) => {
    for (const map of mappers) {
      try {
        const answer = map(failure);
        if (answer !== undefined) return answer;
      } catch {
        // a broken mapping must not keep the client from getting an answer
      }
    }
    return undefined;
  };
}

const unboundMappers = new WeakMap<readonly PluginEntry[], ErrorMapper | undefined>();

/** {@link errorMapper} for failures before a route matched, computed once per plugin set. */
export function unboundErrorMapper(plugins: readonly PluginEntry[]): ErrorMapper | undefined {
  if (!unboundMappers.has(plugins)) unboundMappers.set(plugins, errorMapper(plugins));
  return unboundMappers.get(plugins);
}

/** Protocols core serves itself, without a plugin claiming them. */
const CORE_PROTOCOLS = new Set([HTTP_PROTOCOL, AUTO_PROTOCOL]);

const catalogs = new WeakMap<readonly PluginEntry[], ProtocolCatalog>();

/** The protocols a plugin set's manifests declare, computed once per set. */
function protocolCatalog(plugins: readonly PluginEntry[]): ProtocolCatalog {
  let catalog = catalogs.get(plugins);
  if (!catalog) catalogs.set(plugins, (catalog = new ProtocolCatalog(plugins.map((p) => p.manifest))));
  return catalog;
}

/**
 * True when the route's upstream speaks TLS, as the manifest of its protocol says (`protocolTraits`). The routing
 * model resolves `AUTO` to a concrete protocol; a route that still says `auto` is guessed the same way
 * ({@link ProtocolCatalog.infer}).
 */
export function usesTls(route: Route, protocols: ProtocolCatalog): boolean {
  return protocols.traits(protocols.resolve(route.protocol, route.backend))?.tls === true;
}

/** Default TLS verification name: the Service's cluster DNS name. */
function defaultServerName(route: Route): string {
  return `${route.backend.service}.${route.backend.namespace}.svc`;
}

/** The profile core starts from, before plugins adjust it. */
function baseProfile(route: Route, defaults: ProxyDefaults, protocols: ProtocolCatalog): TransportProfile {
  const connectTimeout = CONNECT_TIMEOUT.get(route) ?? defaults.connectTimeout;
  return usesTls(route, protocols)
    ? { scheme: 'https:', http2: 'off', connectTimeout, tls: { rejectUnauthorized: true, servername: defaultServerName(route) } }
    : { scheme: 'http:', http2: 'off', connectTimeout };
}

export interface CompileEnv {
  readonly plugins: readonly PluginEntry[];
  readonly defaults: ProxyDefaults;
  readonly states: EndpointStates;
  /** Core's innermost dispatch (endpoint choice, retries, pools). */
  readonly coreDispatch: UpstreamDispatch;
  /**
   * Called for every pool key the route may use; the generation retains it. Returns the registry's copy of the
   * key, so that every generation shares one string per pool. `open` opens a plugin's pool (see
   * `UpstreamPlugin.createPool`); without it the pool is one of core's HTTP pools.
   */
  readonly retainPool: (key: string, origin: string, profile: TransportProfile, open?: PoolOpener) => string;
}

/** Compiles one route. Never throws: problems make the route unavailable with a clear error. */
export function compileRoute(route: Route, env: CompileEnv): CompiledRoute {
  const policy = LOAD_BALANCING.get(route) ?? env.defaults.loadBalancing;
  const balancer = createBalancer(policy, route.backend.endpoints, env.states);
  const idleOverride = IDLE_TIMEOUT.get(route);
  const labels = {
    namespace: route.ingress.namespace,
    kind: routeOwnerKind(route.ingress),
    ingress: route.ingress.name,
    service: route.backend.service,
    host: route.host ?? '*',
  };
  const common = {
    route,
    balancer,
    responseHeaderTimeout: RESPONSE_HEADER_TIMEOUT.get(route) ?? env.defaults.responseHeaderTimeout,
    idleTimeout: idleOverride ?? env.defaults.idleTimeout,
    idleTimeoutOverride: idleOverride,
    requestBodyTimeout: REQUEST_BODY_TIMEOUT.get(route) ?? env.defaults.requestBodyTimeout,
    queueTimeout: UPSTREAM_QUEUE_TIMEOUT.get(route) ?? env.defaults.upstreamQueueTimeout,
    hostOverride: UPSTREAM_HOST.get(route),
    labels,
    answersItself: route.filters?.redirect !== undefined,
    // Zero turns a route timeout off (Gateway API), as does leaving it out.
    requestTimeout: positive(route.timeouts?.request),
    backendRequestTimeout: positive(route.timeouts?.backendRequest),
  };
  let profile = baseProfile(route, env.defaults, protocolCatalog(env.plugins));
  const bound: Bound[] = [];
  try {
    for (const entry of env.plugins) {
      const binding = entry.plugin.bind ? entry.plugin.bind(route) : { route, options: {} };
      if (binding) bound.push({ entry, binding });
    }
    if (!CORE_PROTOCOLS.has(route.protocol) && !bound.some((b) => b.entry.manifest.protocols?.includes(route.protocol))) {
      throw new WarrenError(ErrorCode.UpstreamConnect, `backend protocol "${route.protocol}" of route ${route.id} is served by no enabled plugin`, { status: 502 });
    }
    for (const { entry, binding } of bound) entry.plugin.configureTransport?.(binding, profile);
    profile = normalizeProfile(profile, route);
    const interceptors: UpstreamInterceptor[] = [];
    for (const { entry, binding } of bound) {
      const interceptor = entry.plugin.interceptor?.(binding);
      if (interceptor === undefined) continue;
      if (typeof interceptor !== 'function') throw new TypeError(`plugin ${entry.manifest.id} returned an interceptor that is not a function`);
      interceptors.push(interceptor);
    }
    // Core's own interceptor, innermost: the route's filters apply to the request as it goes upstream.
    const filters = filtersInterceptor(route);
    let dispatch = filters ? filters(env.coreDispatch) : env.coreDispatch;
    for (let i = interceptors.length - 1; i >= 0; i--) {
      const next = interceptors[i]!(dispatch);
      if (typeof next !== 'function') throw new TypeError('an interceptor did not return a dispatch function');
      dispatch = next;
    }
    const upgrader = bound.find((b) => typeof b.entry.plugin.onUpgrade === 'function');
    const pools = poolSource(route, bound);
    const poolKeys = poolKeysFor(route, profile, env, pools);
    const upgradeProfile = upgrader?.entry.plugin.upgradeProfile?.(upgrader.binding, profile);
    const upgradePoolKeys = upgrader
      ? upgradeProfile === undefined || upgradeProfile === profile
        ? poolKeys
        : poolKeysFor(route, normalizeProfile(upgradeProfile, route), env, pools)
      : undefined;
    return {
      ...common,
      unavailable: undefined,
      mapError: errorMapper(env.plugins, bound),
      profile,
      poolKeys,
      upgradePoolKeys,
      dispatch,
      upgrade: upgrader ? { plugin: upgrader.entry.plugin, binding: upgrader.binding } : undefined,
      closeConnections: profile.keepAlive === undefined && profile.http2 === 'off',
    };
  } catch (err) {
    const error = isWarrenError(err)
      ? err
      : new WarrenError(ErrorCode.UpstreamConnect, `route ${route.id} cannot be served: ${(err as Error)?.message ?? String(err)}`, {
          status: 502,
          cause: err,
        });
    return {
      ...common,
      unavailable: error,
      mapError: errorMapper(env.plugins, bound),
      profile,
      poolKeys: [],
      upgradePoolKeys: undefined,
      dispatch: env.coreDispatch,
      upgrade: undefined,
      closeConnections: true,
    };
  }
}

function positive(ms: number | undefined): number | undefined {
  return ms !== undefined && ms > 0 ? ms : undefined;
}

function normalizeProfile(profile: TransportProfile, route: Route): TransportProfile {
  if (profile.scheme === 'https:') {
    profile.tls ??= { rejectUnauthorized: true };
    profile.tls.servername ??= defaultServerName(route);
  } else {
    profile.tls = undefined;
    if (profile.http2 === 'alpn') profile.http2 = 'off';
  }
  if (profile.scheme === 'https:' && profile.http2 === 'prior-knowledge') profile.http2 = 'alpn';
  return profile;
}

/** Where a route's pools come from: the `createPool` of the plugin serving its protocol, else core (undefined). */
interface PoolSource {
  readonly owner: string;
  readonly open: PoolOpener;
}

function poolSource(route: Route, bound: readonly Bound[]): PoolSource | undefined {
  const server = bound.find((b) => b.entry.manifest.protocols?.includes(route.protocol));
  const plugin = server?.entry.plugin;
  if (!server || !plugin?.createPool) return undefined;
  const binding = server.binding;
  return { owner: server.entry.manifest.id, open: (origin, profile) => plugin.createPool!(binding, origin, profile) };
}

function poolKeysFor(route: Route, profile: TransportProfile, env: CompileEnv, source: PoolSource | undefined): string[] {
  return route.backend.endpoints.map((e) => {
    const origin = endpointOrigin(profile.scheme, e.key);
    return env.retainPool(poolKey(origin, profile, source?.owner), origin, profile, source?.open);
  });
}
