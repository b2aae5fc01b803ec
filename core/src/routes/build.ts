import type { V1EndpointSlice, V1Ingress, V1IngressClass, V1Service } from '@kubernetes/client-node';
import type { Config } from '../config/schema.js';
import type { PluginManifest } from '../plugin-api/manifest.js';
import { BackendResolver } from './backends.js';
import { compileIngress, DEFAULT_HOST_KEY, HOSTLESS_KEY, resolveBackend, type Candidate, type CompileContext, type Fragment } from './compile.js';
import { defaultIngressClasses, type IngressClassSettings } from './ingress-class.js';
import { RoutingPlugins } from './plugins.js';
import { chooseProtocol } from './protocol.js';
import { snapshotKey, type ClusterSnapshot, type SnapshotChanges } from './snapshot.js';
import { CompiledRouteTable, PathIndex } from './table.js';
import type { Diagnostic, IngressRef, Route, RouteTable } from './types.js';

/** Settings of a {@link RouteTableBuilder}; fixed for its lifetime (changed settings mean a new builder). */
export interface RouteBuildSettings {
  readonly ingressClass: IngressClassSettings;
  /** Controller-wide default backend (`proxy.defaultBackend`), used when nothing else matches. */
  readonly defaultBackend?: { readonly namespace: string; readonly service: string; readonly port: number | string } | undefined;
  readonly plugins: RoutingPlugins;
}

export interface RouteTableBuilderOptions {
  /**
   * Generation of the first table this builder makes (default 1). When a builder replaces another one (new
   * settings), pass the store's current generation + 1 so generations keep increasing.
   */
  readonly firstGeneration?: number | undefined;
}

/**
 * Builder settings from the parsed configuration and the plugin manifests.
 * @param enabled manifests of enabled plugins (`TOKENS.EnabledManifests`)
 * @param known manifests of known but disabled plugins (see `loadBuiltinManifests`), for better messages
 */
export function routeBuildSettings(
  config: Pick<Readonly<Config>, 'ingressClass' | 'proxy'>,
  enabled: readonly PluginManifest[],
  known: readonly PluginManifest[] = [],
): RouteBuildSettings {
  return {
    ingressClass: config.ingressClass,
    defaultBackend: config.proxy.defaultBackend,
    plugins: new RoutingPlugins(enabled, known),
  };
}

/** Per host key: every Ingress's candidates, and the result of conflict resolution. */
interface HostEntry {
  readonly candidates: Map<string, readonly Candidate[]>;
  winners: readonly Route[];
  conflicts: readonly Diagnostic[];
  index: PathIndex | undefined;
}

const CONTROLLER_DEFAULT_ID = '#controller-default';

/**
 * Turns cluster snapshots into immutable {@link RouteTable}s, one generation per `build`. Single writer: call
 * `build` from one place at a time (the reconcile loop).
 *
 * Builds are incremental: each Ingress is compiled into a cached fragment, recompiled only when the Ingress,
 * a Service or EndpointSlice it uses, or the IngressClasses change; then only the hosts those fragments touch
 * are re-indexed. The result is the same as a fresh build of the same snapshot (except the order of `routes`,
 * `diagnostics`, `hosts` and `ownedIngresses`, which is unspecified). Route objects that did not change are
 * reused across generations, so consumers may cache per-route work by identity.
 *
 * The builder never throws for any object content; problems become `Diagnostic`s.
 */
export class RouteTableBuilder {
  readonly #settings: RouteBuildSettings;
  readonly #resolver = new BackendResolver();
  #generation: number;
  #built = false;

  readonly #seenIngresses = new Map<string, V1Ingress>();
  readonly #seenServices = new Map<string, V1Service>();
  readonly #seenSlices = new Map<string, V1EndpointSlice>();
  readonly #seenClasses = new Map<string, V1IngressClass>();
  #defaultClasses: readonly V1IngressClass[] = [];

  readonly #fragments = new Map<string, Fragment>();
  readonly #owned = new Map<string, IngressRef>();
  readonly #withDiagnostics = new Set<string>();
  /** Service key → Ingress keys whose fragments reference it. */
  readonly #serviceUsers = new Map<string, Set<string>>();
  readonly #hostEntries = new Map<string, HostEntry>();
  readonly #withConflicts = new Set<string>();

  #exactHosts = new Map<string, PathIndex>();
  #wildcardHosts = new Map<string, PathIndex>();
  #hostless: PathIndex | undefined;
  #ingressDefault: Route | undefined;
  #controllerDefault: { route: Route | undefined; diagnostics: readonly Diagnostic[]; service: string } | undefined;
  #hosts: readonly string[] = [];

  constructor(settings: RouteBuildSettings, options: RouteTableBuilderOptions = {}) {
    this.#settings = settings;
    this.#generation = (options.firstGeneration ?? 1) - 1;
  }

  /** Generation of the last table built (0 before the first build when starting at 1). */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Builds the next table from `snapshot`. `changes`, when given, must list every key that differs from the
   * snapshot of the previous call (see {@link SnapshotChanges}); it is ignored on the first build.
   */
  build(snapshot: ClusterSnapshot, changes?: SnapshotChanges): RouteTable {
    const useHint = this.#built && changes !== undefined;
    const changedClasses = useHint ? hinted(snapshot.ingressClasses, this.#seenClasses, changes.ingressClasses) : diff(snapshot.ingressClasses, this.#seenClasses);
    const changedSlices = useHint ? hinted(snapshot.endpointSlices, this.#seenSlices, changes.endpointSlices) : diff(snapshot.endpointSlices, this.#seenSlices);
    const changedServices = useHint ? hinted(snapshot.services, this.#seenServices, changes.services) : diff(snapshot.services, this.#seenServices);
    const changedIngresses = useHint ? hinted(snapshot.ingresses, this.#seenIngresses, changes.ingresses) : diff(snapshot.ingresses, this.#seenIngresses);

    const dirtyServices = new Set<string>();
    for (const key of changedSlices) {
      const slice = snapshot.endpointSlices.get(key);
      remember(this.#seenSlices, key, slice);
      for (const service of this.#resolver.setSlice(key, slice)) dirtyServices.add(service);
    }
    for (const key of changedServices) {
      remember(this.#seenServices, key, snapshot.services.get(key));
      this.#resolver.invalidate(key);
      dirtyServices.add(key);
    }
    const dirtyIngresses = new Set<string>(changedIngresses);
    if (changedClasses.size > 0) {
      for (const key of changedClasses) remember(this.#seenClasses, key, snapshot.ingressClasses.get(key));
      this.#defaultClasses = defaultIngressClasses(snapshot.ingressClasses);
      for (const key of snapshot.ingresses.keys()) dirtyIngresses.add(key);
      for (const key of this.#fragments.keys()) dirtyIngresses.add(key);
    }
    for (const service of dirtyServices) {
      const users = this.#serviceUsers.get(service);
      if (users) for (const key of users) dirtyIngresses.add(key);
    }

    const ctx: CompileContext = {
      services: snapshot.services,
      classes: snapshot.ingressClasses,
      defaultClasses: this.#defaultClasses,
      resolver: this.#resolver,
      ingressClass: this.#settings.ingressClass,
      plugins: this.#settings.plugins,
    };
    const dirtyHosts = new Set<string>();
    for (const key of dirtyIngresses) {
      const ingress = snapshot.ingresses.get(key);
      remember(this.#seenIngresses, key, ingress);
      this.#removeFragment(key, dirtyHosts);
      if (ingress !== undefined) this.#addFragment(compileIngress(key, ingress, ctx), dirtyHosts);
    }
    this.#updateControllerDefault(ctx, dirtyServices);
    const hostSetChanged = this.#reindex(dirtyHosts);
    if (hostSetChanged) {
      const hosts = [...this.#exactHosts.keys()];
      for (const parent of this.#wildcardHosts.keys()) hosts.push(`*.${parent}`);
      this.#hosts = Object.freeze(hosts);
    }
    this.#built = true;
    this.#generation++;
    return this.#assemble();
  }

  #removeFragment(key: string, dirtyHosts: Set<string>): void {
    const old = this.#fragments.get(key);
    if (!old) return;
    this.#fragments.delete(key);
    this.#owned.delete(key);
    this.#withDiagnostics.delete(key);
    for (const service of old.services) {
      const users = this.#serviceUsers.get(service);
      users?.delete(key);
      if (users?.size === 0) this.#serviceUsers.delete(service);
    }
    for (const c of old.candidates) {
      if (this.#hostEntries.get(c.hostKey)?.candidates.delete(key)) dirtyHosts.add(c.hostKey);
    }
  }

  #addFragment(fragment: Fragment, dirtyHosts: Set<string>): void {
    const key = fragment.key;
    this.#fragments.set(key, fragment);
    if (!fragment.owned) return;
    this.#owned.set(key, fragment.ref!);
    if (fragment.diagnostics.length > 0) this.#withDiagnostics.add(key);
    for (const service of fragment.services) {
      let users = this.#serviceUsers.get(service);
      if (!users) this.#serviceUsers.set(service, (users = new Set()));
      users.add(key);
    }
    let current: string | undefined;
    let group: Candidate[] = [];
    const flush = () => {
      if (current === undefined) return;
      let entry = this.#hostEntries.get(current);
      if (!entry) this.#hostEntries.set(current, (entry = { candidates: new Map(), winners: [], conflicts: [], index: undefined }));
      const existing = entry.candidates.get(key);
      entry.candidates.set(key, existing ? [...existing, ...group] : group);
      dirtyHosts.add(current);
    };
    for (const c of fragment.candidates) {
      if (c.hostKey !== current) {
        flush();
        current = c.hostKey;
        group = [];
      }
      group.push(c);
    }
    flush();
  }

  #updateControllerDefault(ctx: CompileContext, dirtyServices: ReadonlySet<string>): void {
    const ref = this.#settings.defaultBackend;
    if (!ref) return;
    const service = snapshotKey(ref.namespace, ref.service);
    if (this.#controllerDefault && !dirtyServices.has(service)) return;
    const object = { kind: 'Service' as const, namespace: ref.namespace, name: ref.service };
    const field = 'proxy.defaultBackend';
    const shown = `setting proxy.defaultBackend (Service ${ref.namespace}/${ref.service} port ${ref.port})`;
    const port = typeof ref.port === 'number' ? { number: ref.port } : { name: ref.port };
    const resolved = resolveBackend({ service: { name: ref.service, port } }, ref.namespace, ctx);
    const diagnostics: Diagnostic[] = [];
    let route: Route | undefined;
    if ('problem' in resolved) {
      diagnostics.push({ type: 'Warning', reason: resolved.reason, object, field, message: `${shown}: ${resolved.problem}; no controller default backend` });
    } else {
      if (resolved.noEndpoints) {
        diagnostics.push({ type: 'Warning', reason: 'NoReadyEndpoints', object, field, message: `${shown}: ${resolved.noEndpoints}; requests get 503 until endpoints are ready` });
      }
      const protocol = chooseProtocol(undefined, resolved.backend, this.#settings.plugins);
      if (protocol !== 'http' && !this.#settings.plugins.serves(protocol)) {
        const owner = this.#settings.plugins.disabledProtocolOwner(protocol);
        diagnostics.push({
          type: 'Warning',
          reason: 'ProtocolUnavailable',
          object,
          field,
          message: `${shown}: backend protocol "${protocol}" ${owner ? `needs plugin ${owner}, which is disabled; enable it` : 'is served by no enabled plugin'}; no controller default backend`,
        });
      } else {
        const previous = this.#controllerDefault?.route;
        route =
          previous && previous.backend === resolved.backend
            ? previous
            : Object.freeze({
                id: CONTROLLER_DEFAULT_ID,
                ingress: Object.freeze({ namespace: ref.namespace, name: '', uid: '', creationTimestamp: '', generation: 0 }),
                host: undefined,
                path: '/',
                pathType: 'Prefix' as const,
                backend: resolved.backend,
                protocol,
                annotations: Object.freeze({}),
                secretRefs: Object.freeze([]),
                source: 'controller-default' as const,
              });
      }
    }
    this.#controllerDefault = { route, diagnostics, service };
  }

  /** Resolves conflicts and rebuilds the path index of every dirty host; returns whether the host set changed. */
  #reindex(dirtyHosts: ReadonlySet<string>): boolean {
    if (dirtyHosts.size === 0) return false;
    let exactHosts: Map<string, PathIndex> | undefined;
    let wildcardHosts: Map<string, PathIndex> | undefined;
    let hostSetChanged = false;
    for (const hostKey of dirtyHosts) {
      const entry = this.#hostEntries.get(hostKey);
      if (entry) this.#resolve(hostKey, entry);
      const index = entry && entry.winners.length > 0 ? entry.index : undefined;
      if (entry && entry.candidates.size === 0) this.#hostEntries.delete(hostKey);
      if (entry && entry.conflicts.length > 0) this.#withConflicts.add(hostKey);
      else this.#withConflicts.delete(hostKey);
      if (hostKey === DEFAULT_HOST_KEY) {
        this.#ingressDefault = entry?.winners[0];
      } else if (hostKey === HOSTLESS_KEY) {
        this.#hostless = index;
      } else if (hostKey.startsWith('*.')) {
        // Copy on first write: published tables keep the maps they were given.
        wildcardHosts ??= new Map(this.#wildcardHosts);
        hostSetChanged = setOrDelete(wildcardHosts, hostKey.slice(2), index) || hostSetChanged;
      } else {
        exactHosts ??= new Map(this.#exactHosts);
        hostSetChanged = setOrDelete(exactHosts, hostKey, index) || hostSetChanged;
      }
    }
    if (exactHosts) this.#exactHosts = exactHosts;
    if (wildcardHosts) this.#wildcardHosts = wildcardHosts;
    return hostSetChanged;
  }

  /** Conflict resolution for one host: per (match kind, path key) the oldest Ingress wins, then namespace/name. */
  #resolve(hostKey: string, entry: HostEntry): void {
    const best = new Map<string, { c: Candidate; f: Fragment }>();
    const losers: Array<{ c: Candidate; f: Fragment; winner: { c: Candidate; f: Fragment } }> = [];
    const all: Array<{ c: Candidate; f: Fragment }> = [];
    for (const [ingressKey, list] of entry.candidates) {
      const f = this.#fragments.get(ingressKey)!;
      for (const c of list) all.push({ c, f });
    }
    for (const item of all) {
      const slot = `${item.c.kind}\u0000${item.c.key}`;
      const current = best.get(slot);
      if (!current) best.set(slot, item);
      else if (precedes(item, current)) best.set(slot, item);
    }
    const winners: Route[] = [];
    const exact: Array<[string, Route]> = [];
    const prefixes: Array<[string, Route]> = [];
    for (const item of all) {
      const winner = best.get(`${item.c.kind}\u0000${item.c.key}`)!;
      if (winner !== item) {
        losers.push({ ...item, winner });
        continue;
      }
      winners.push(item.c.route);
      (item.c.kind === 'exact' ? exact : prefixes).push([item.c.key, item.c.route]);
    }
    entry.winners = winners;
    entry.index = hostKey === DEFAULT_HOST_KEY || winners.length === 0 ? undefined : new PathIndex(exact, prefixes);
    entry.conflicts = losers.map(({ c, f, winner }) => conflictDiagnostic(hostKey, c, f, winner.c, winner.f));
  }

  #assemble(): RouteTable {
    const routes: Route[] = [];
    for (const entry of this.#hostEntries.values()) for (const r of entry.winners) routes.push(r);
    const controllerRoute = this.#controllerDefault?.route;
    if (controllerRoute) routes.push(controllerRoute);
    const diagnostics: Diagnostic[] = [];
    for (const key of this.#withDiagnostics) for (const d of this.#fragments.get(key)!.diagnostics) diagnostics.push(d);
    for (const hostKey of this.#withConflicts) for (const d of this.#hostEntries.get(hostKey)!.conflicts) diagnostics.push(d);
    for (const service of this.#serviceUsers.keys()) for (const d of this.#resolver.diagnosticsOf(service)) diagnostics.push(d);
    if (this.#controllerDefault) {
      for (const d of this.#controllerDefault.diagnostics) diagnostics.push(d);
      if (!this.#serviceUsers.has(this.#controllerDefault.service)) {
        for (const d of this.#resolver.diagnosticsOf(this.#controllerDefault.service)) diagnostics.push(d);
      }
    }
    return new CompiledRouteTable({
      generation: this.#generation,
      routes,
      diagnostics,
      ownedIngresses: [...this.#owned.values()],
      hosts: this.#hosts,
      exactHosts: this.#exactHosts,
      wildcardHosts: this.#wildcardHosts,
      hostless: this.#hostless,
      fallback: this.#ingressDefault ?? controllerRoute,
    });
  }
}

function precedes(a: { c: Candidate; f: Fragment }, b: { c: Candidate; f: Fragment }): boolean {
  if (a.f.time !== b.f.time) return a.f.time < b.f.time;
  if (a.f !== b.f) {
    const an = `${a.f.ref!.namespace}/${a.f.ref!.name}`;
    const bn = `${b.f.ref!.namespace}/${b.f.ref!.name}`;
    if (an !== bn) return an < bn;
    return a.f.key < b.f.key;
  }
  return a.c.ruleIndex !== b.c.ruleIndex ? a.c.ruleIndex < b.c.ruleIndex : a.c.pathIndex < b.c.pathIndex;
}

function conflictDiagnostic(hostKey: string, loser: Candidate, lf: Fragment, winner: Candidate, wf: Fragment): Diagnostic {
  const ref = lf.ref!;
  const shown = `Ingress ${ref.namespace}/${ref.name}`;
  const object = { kind: 'Ingress' as const, namespace: ref.namespace, name: ref.name, uid: ref.uid || undefined };
  if (hostKey === DEFAULT_HOST_KEY) {
    const message =
      lf === wf
        ? `${shown}: ${loser.field} is declared twice; ignored`
        : `${shown}: ${loser.field} is not used: Ingress ${wf.ref!.namespace}/${wf.ref!.name} also sets a default backend and ${why(lf, wf)}`;
    return { type: 'Warning', reason: 'RouteConflict', object, field: loser.field, message };
  }
  const where = `host ${hostKey === HOSTLESS_KEY ? '(any)' : `"${hostKey}"`}, ${loser.route.pathType} "${loser.route.path}"`;
  const message =
    lf === wf
      ? `${shown}: ${loser.field} (${where}) duplicates ${winner.field}; ignored`
      : `${shown}: ${loser.field} (${where}) is also claimed by Ingress ${wf.ref!.namespace}/${wf.ref!.name}, which ${why(lf, wf)}; path not routed`;
  return { type: 'Warning', reason: 'RouteConflict', object, field: loser.field, message };
}

function why(loser: Fragment, winner: Fragment): string {
  return loser.time !== winner.time ? 'is older and wins' : 'is as old and wins by namespace/name order';
}

function setOrDelete(map: Map<string, PathIndex>, key: string, index: PathIndex | undefined): boolean {
  if (index) {
    const added = !map.has(key);
    map.set(key, index);
    return added;
  }
  return map.delete(key);
}

function remember<T>(seen: Map<string, T>, key: string, value: T | undefined): void {
  if (value === undefined) seen.delete(key);
  else seen.set(key, value);
}

/** Keys whose object differs from what was seen: identity first, then `resourceVersion`. */
function diff<T>(current: ReadonlyMap<string, T>, seen: Map<string, T>): Set<string> {
  const changed = new Set<string>();
  let matched = 0;
  for (const [key, value] of current) {
    const old = seen.get(key);
    if (old === undefined) {
      changed.add(key);
      continue;
    }
    matched++;
    if (old === value) continue;
    if (sameVersion(old, value)) seen.set(key, value);
    else changed.add(key);
  }
  if (matched !== seen.size) for (const key of seen.keys()) if (!current.has(key)) changed.add(key);
  return changed;
}

function hinted<T>(current: ReadonlyMap<string, T>, seen: Map<string, T>, keys: Iterable<string> | undefined): Set<string> {
  const changed = new Set<string>();
  if (!keys) return changed;
  for (const key of keys) {
    const value = current.get(key);
    const old = seen.get(key);
    if (value === old) continue;
    if (value !== undefined && old !== undefined && sameVersion(old, value)) seen.set(key, value);
    else changed.add(key);
  }
  return changed;
}

function sameVersion(a: unknown, b: unknown): boolean {
  const va = (a as { metadata?: { resourceVersion?: unknown } })?.metadata?.resourceVersion;
  const vb = (b as { metadata?: { resourceVersion?: unknown } })?.metadata?.resourceVersion;
  return typeof va === 'string' && va !== '' && va === vb;
}
