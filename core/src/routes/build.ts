import type { KubernetesObject, V1EndpointSlice, V1Ingress, V1IngressClass, V1Service } from '@kubernetes/client-node';
import type { Config } from '../config/schema.js';
import type { PluginManifest } from '../plugin-api/manifest.js';
import { BackendResolver } from './backends.js';
import { compileConditions, conditionsKey, specificity } from './conditions.js';
import {
  candidateField,
  translateIngress,
  DEFAULT_HOST_KEY,
  HOSTLESS_KEY,
  keepLastGood,
  resolveBackend,
  type Candidate,
  type TranslateContext,
  type Fragment,
} from './translate.js';
import { defaultIngressClasses, type IngressClassConfig } from './ingress-class.js';
import { RoutingPlugins } from './plugins.js';
import { chooseProtocol } from './protocol.js';
import { snapshotKey, type ClusterSnapshot, type SnapshotChanges } from './snapshot.js';
import { LayeredMap } from './layered-map.js';
import type { RouteSource, SourcedCandidate } from './sources.js';
import { IndexedRouteTable, listenersKey, PathIndex } from './table.js';
import type { Diagnostic, IngressRef, ObjectRef, Route, RouteOwnerKind, RouteTable } from './types.js';

/** Routing config of a {@link RouteTableBuilder}; fixed for its lifetime (changed config means a new builder). */
export interface RoutingConfig {
  readonly ingressClass: IngressClassConfig;
  /** Controller-wide default backend (`proxy.defaultBackend`), used when nothing else matches. */
  readonly defaultBackend?: { readonly namespace: string; readonly service: string; readonly port: number | string } | undefined;
  readonly plugins: RoutingPlugins;
  /** Route sources besides Ingress (the Gateway API translation); their routes share the table and its conflict rule. */
  readonly sources?: readonly RouteSource[] | undefined;
  /** Source of randomness for weighted routes (default `Math.random`; tests pass a seeded one). */
  readonly random?: (() => number) | undefined;
}

export interface RouteTableBuilderOptions {
  /**
   * Generation of the first table this builder makes (default 1). When a builder replaces another one (new
   * settings), pass the store's current generation + 1 so generations keep increasing.
   */
  readonly firstGeneration?: number | undefined;
}

/**
 * Routing config from the parsed configuration and the plugin manifests.
 * @param enabled manifests of enabled plugins (`TOKENS.EnabledManifests`)
 * @param known manifests of known but disabled plugins (see `loadBuiltinManifests`), for better messages
 */
export function routingConfig(
  config: Pick<Readonly<Config>, 'ingressClass' | 'proxy'>,
  enabled: readonly PluginManifest[],
  known: readonly PluginManifest[] = [],
): RoutingConfig {
  return {
    ingressClass: config.ingressClass,
    defaultBackend: config.proxy.defaultBackend,
    plugins: new RoutingPlugins(enabled, known),
  };
}

/** Per host key: every declaring object's candidates. Builder-private. */
interface HostEntry {
  /**
   * Groups per Ingress or per object of a route source, in no particular order. Ingress groups have no
   * `claimant`: it is made from the fragment when a conflict needs it, so Ingress-only builds hold no more memory.
   */
  candidates: Array<{ readonly key: string; readonly list: readonly Candidate[]; readonly claimant: Claimant | undefined }>;
}

/** The object behind a group of candidates, with what conflict resolution and its Warnings need. */
interface Claimant {
  readonly kind: RouteOwnerKind;
  /** Creation time, ms since epoch (Infinity when unknown): older wins. */
  readonly time: number;
  /** `Kind/namespace/name`: breaks a tie of `time`. */
  readonly name: string;
  /** The group key (Ingress snapshot key, or source and owner): equal for candidates of one object. */
  readonly key: string;
  readonly object: ObjectRef;
  /** `Kind namespace/name`, for messages. */
  readonly shown: string;
}

/** What the builder keeps of one route source between builds. */
interface SourceState {
  readonly source: RouteSource;
  /** Objects of the source's kinds as last translated, per kind. */
  readonly seen: Map<string, SeenObjects<KubernetesObject>>;
  translated: boolean;
  services: ReadonlySet<string>;
  /** The last result's candidates per declaring object (`SourcedCandidate.owner`). */
  owners: Map<string, OwnerGroup>;
}

interface OwnerGroup {
  readonly key: string;
  readonly candidates: readonly SourcedCandidate[];
  readonly claimant: Claimant;
  /** Structural text of the candidates: an unchanged object keeps its route objects across translations. */
  readonly signature: string;
}

const CONTROLLER_DEFAULT_ID = '#controller-default';

/**
 * Turns cluster snapshots into immutable {@link RouteTable}s, one generation per `build`. Single writer: call
 * `build` from one place at a time (the reconcile loop).
 *
 * Builds are incremental: each Ingress is translated into a cached fragment, translated again only when the Ingress,
 * a Service or EndpointSlice it uses, or the IngressClasses change; then only the hosts those fragments touch
 * are re-indexed, and the table shares everything else with the previous generation. The result is the same
 * as a fresh build of the same snapshot (except the order of `routes`, `diagnostics`, `hosts` and
 * `ownedIngresses`, which is unspecified). Route objects that did not change are reused across generations, so
 * consumers may cache per-route work by identity.
 *
 * The builder never throws for any object content; problems become `Diagnostic`s.
 */
export class RouteTableBuilder {
  readonly #config: RoutingConfig;
  readonly #resolver = new BackendResolver();
  #generation: number;
  #built = false;

  readonly #seenIngresses = new SeenObjects<V1Ingress>();
  readonly #seenServices = new SeenObjects<V1Service>();
  readonly #seenSlices = new SeenObjects<V1EndpointSlice>();
  readonly #seenClasses = new SeenObjects<V1IngressClass>();
  #defaultClasses: readonly V1IngressClass[] = [];

  readonly #fragments = new Map<string, Fragment>();
  /**
   * Per owned Ingress key, the newest version whose annotations were accepted. While that is the current version
   * it is the very object the caches hold (no extra memory); only while the current version is rejected does it
   * keep one older object alive. Dropped when the Ingress is deleted, recreated (new uid) or no longer owned
   * (class changed); never persisted, so a new builder (restart, changed settings) starts without it.
   */
  readonly #lastGood = new Map<string, V1Ingress>();
  /** Service key → Ingress keys whose fragments reference it. */
  readonly #serviceUsers = new Map<string, Set<string>>();
  readonly #hostEntries = new Map<string, HostEntry>();
  readonly #sources: readonly SourceState[];
  #controllerDefault: { route: Route | undefined; diagnostics: readonly Diagnostic[]; service: string } | undefined;

  // Shared with published tables; replaced (never mutated) by each build.
  #exactHosts = LayeredMap.empty<string, PathIndex>();
  #wildcardHosts = LayeredMap.empty<string, PathIndex>();
  #hostless: PathIndex | undefined;
  #ingressDefault: Route | undefined;
  #routesByHost = LayeredMap.empty<string, readonly Route[]>();
  #conflicts = LayeredMap.empty<string, readonly Diagnostic[]>();
  #ingressDiagnostics = LayeredMap.empty<string, readonly Diagnostic[]>();
  #serviceDiagnostics = LayeredMap.empty<string, readonly Diagnostic[]>();
  #sourceDiagnostics = LayeredMap.empty<string, readonly Diagnostic[]>();
  #owned = LayeredMap.empty<string, IngressRef>();

  constructor(config: RoutingConfig, options: RouteTableBuilderOptions = {}) {
    this.#config = config;
    this.#generation = (options.firstGeneration ?? 1) - 1;
    this.#sources = (config.sources ?? []).map((source) => ({ source, seen: new Map(), translated: false, services: new Set(), owners: new Map() }));
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
    const changedClasses = useHint ? this.#seenClasses.hinted(snapshot.ingressClasses, changes.ingressClasses) : this.#seenClasses.diff(snapshot.ingressClasses);
    const changedSlices = useHint ? this.#seenSlices.hinted(snapshot.endpointSlices, changes.endpointSlices) : this.#seenSlices.diff(snapshot.endpointSlices);
    const changedServices = useHint ? this.#seenServices.hinted(snapshot.services, changes.services) : this.#seenServices.diff(snapshot.services);
    const changedIngresses = useHint ? this.#seenIngresses.hinted(snapshot.ingresses, changes.ingresses) : this.#seenIngresses.diff(snapshot.ingresses);

    const dirtyServices = new Set<string>();
    for (const key of changedSlices) {
      const slice = snapshot.endpointSlices.get(key);
      this.#seenSlices.set(key, slice);
      for (const service of this.#resolver.setSlice(key, slice)) dirtyServices.add(service);
    }
    for (const key of changedServices) {
      this.#seenServices.set(key, snapshot.services.get(key));
      this.#resolver.invalidate(key);
      dirtyServices.add(key);
    }
    const dirtyIngresses = new Set<string>(changedIngresses);
    if (changedClasses.size > 0) {
      for (const key of changedClasses) this.#seenClasses.set(key, snapshot.ingressClasses.get(key));
      this.#defaultClasses = defaultIngressClasses(snapshot.ingressClasses);
      for (const key of snapshot.ingresses.keys()) dirtyIngresses.add(key);
      for (const key of this.#fragments.keys()) dirtyIngresses.add(key);
    }
    for (const service of dirtyServices) {
      const users = this.#serviceUsers.get(service);
      if (users) for (const key of users) dirtyIngresses.add(key);
    }

    const ctx: TranslateContext = {
      services: snapshot.services,
      classes: snapshot.ingressClasses,
      defaultClasses: this.#defaultClasses,
      resolver: this.#resolver,
      ingressClass: this.#config.ingressClass,
      plugins: this.#config.plugins,
    };
    const batch: Batch = { hosts: new Set(), services: new Set(dirtyServices), owned: new Map(), diagnostics: new Map() };
    for (const key of dirtyIngresses) {
      const ingress = snapshot.ingresses.get(key);
      this.#seenIngresses.set(key, ingress);
      this.#removeFragment(key, batch);
      if (ingress !== undefined) this.#addFragment(this.#translate(key, ingress, ctx), batch);
      else this.#lastGood.delete(key);
    }
    this.#updateSources(snapshot, useHint ? changes : undefined, dirtyServices, batch);
    this.#updateControllerDefault(ctx, dirtyServices);
    this.#reindex(batch.hosts);
    this.#owned = this.#owned.with(batch.owned);
    this.#ingressDiagnostics = this.#ingressDiagnostics.with(batch.diagnostics);
    this.#refreshServiceDiagnostics(batch.services);
    this.#built = true;
    this.#generation++;
    const controller = this.#controllerDefault;
    return new IndexedRouteTable({
      generation: this.#generation,
      exactHosts: this.#exactHosts,
      wildcardHosts: this.#wildcardHosts,
      hostless: this.#hostless,
      fallback: this.#ingressDefault ?? controller?.route,
      routesByKey: this.#routesByHost,
      extraRoutes: controller?.route ? [controller.route] : NONE,
      diagnosticGroups: [this.#ingressDiagnostics, this.#conflicts, this.#serviceDiagnostics, this.#sourceDiagnostics],
      extraDiagnostics: controller?.diagnostics ?? NONE,
      owned: this.#owned,
    });
  }

  /** Translates an Ingress; a version rejected for its annotations falls back to the last good version of the object. */
  #translate(key: string, ingress: V1Ingress, ctx: TranslateContext): Fragment {
    const fragment = translateIngress(key, ingress, ctx);
    if (!fragment.owned) {
      this.#lastGood.delete(key);
      return fragment;
    }
    if (fragment.rejectedBy === undefined) {
      this.#lastGood.set(key, ingress);
      return fragment;
    }
    const good = this.#lastGood.get(key);
    if (good === undefined) return fragment;
    if (good.metadata?.uid !== ingress.metadata?.uid) {
      this.#lastGood.delete(key);
      return fragment;
    }
    const fallback = translateIngress(key, good, ctx);
    return fallback.owned && fallback.rejectedBy === undefined ? keepLastGood(fragment, fallback) : fragment;
  }

  #removeFragment(key: string, batch: Batch): void {
    const old = this.#fragments.get(key);
    if (!old) return;
    this.#fragments.delete(key);
    if (!old.owned) return;
    batch.owned.set(key, undefined);
    batch.diagnostics.set(key, undefined);
    for (const service of old.services) {
      const users = this.#serviceUsers.get(service);
      users?.delete(key);
      if (users?.size === 0) this.#serviceUsers.delete(service);
      batch.services.add(service);
    }
    this.#removeCandidates(key, old.candidates, batch);
  }

  /** Takes the candidates of group `key` out of their hosts' entries. */
  #removeCandidates(key: string, candidates: readonly Candidate[], batch: Batch): void {
    let last: string | undefined;
    for (const c of candidates) {
      if (c.hostKey === last) continue;
      last = c.hostKey;
      const entry = this.#hostEntries.get(c.hostKey);
      if (!entry) continue;
      const before = entry.candidates.length;
      entry.candidates = entry.candidates.filter((g) => g.key !== key);
      if (entry.candidates.length !== before) batch.hosts.add(c.hostKey);
    }
  }

  #addFragment(fragment: Fragment, batch: Batch): void {
    const key = fragment.key;
    this.#fragments.set(key, fragment);
    if (!fragment.owned) return;
    batch.owned.set(key, fragment.ref!);
    batch.diagnostics.set(key, fragment.diagnostics.length > 0 ? fragment.diagnostics : undefined);
    for (const service of fragment.services) {
      let users = this.#serviceUsers.get(service);
      if (!users) this.#serviceUsers.set(service, (users = new Set()));
      users.add(key);
      batch.services.add(service);
    }
    this.#addCandidates(key, fragment.candidates, undefined, batch);
  }

  /** The claimant of an owned Ingress's candidates. */
  #ingressClaimant(key: string): Claimant {
    const fragment = this.#fragments.get(key)!;
    const ref = fragment.ref!;
    return {
      kind: 'Ingress',
      time: fragment.time,
      name: `Ingress/${ref.namespace}/${ref.name}`,
      key,
      object: { kind: 'Ingress', namespace: ref.namespace, name: ref.name, uid: ref.uid || undefined },
      shown: `Ingress ${ref.namespace}/${ref.name}`,
    };
  }

  /** Puts the candidates of group `key` into their hosts' entries. */
  #addCandidates(key: string, candidates: readonly Candidate[], claimant: Claimant | undefined, batch: Batch): void {
    // Candidates arrive grouped by rule; a host may appear in several rules of one object.
    let hostKey: string | undefined;
    let list: Candidate[] = [];
    for (const c of candidates) {
      if (c.hostKey !== hostKey) {
        hostKey = c.hostKey;
        let entry = this.#hostEntries.get(hostKey);
        if (!entry) this.#hostEntries.set(hostKey, (entry = { candidates: [] }));
        const last = entry.candidates.at(-1);
        if (last?.key === key) {
          list = last.list as Candidate[];
        } else {
          list = [];
          entry.candidates.push({ key, list, claimant });
        }
        batch.hosts.add(hostKey);
      }
      list.push(c);
    }
  }

  /**
   * Translates again each route source whose kinds changed (as hinted, or found by comparing the `extra` maps) or
   * whose Services or EndpointSlices changed, and swaps in the candidates of the objects whose result differs.
   */
  #updateSources(snapshot: ClusterSnapshot, hint: SnapshotChanges | undefined, dirtyServices: ReadonlySet<string>, batch: Batch): void {
    const sourceDiagnostics = new Map<string, readonly Diagnostic[] | undefined>();
    this.#sources.forEach((state, index) => {
      let changed = !state.translated;
      for (const kind of state.source.kinds) {
        let seen = state.seen.get(kind);
        if (!seen) state.seen.set(kind, (seen = new SeenObjects()));
        const current = snapshot.extra?.get(kind) ?? NO_OBJECTS;
        const keys = hint ? seen.hinted(current, hint.extra?.get(kind)) : seen.diff(current);
        for (const key of keys) seen.set(key, current.get(key));
        if (keys.size > 0) changed = true;
      }
      if (!changed) for (const service of dirtyServices) if (state.services.has(service)) changed = true;
      if (!changed) return;
      state.translated = true;
      const result = state.source.translate(snapshot, { services: snapshot.services, resolver: this.#resolver, plugins: this.#config.plugins });
      const diagnostics = [...result.diagnostics];
      const byOwner = new Map<string, SourcedCandidate[]>();
      for (const c of result.candidates) {
        const problem = c.route.conditions === undefined ? undefined : compileConditions(c.route.conditions);
        if (problem !== undefined && !problem.ok) {
          const claimant = sourceClaimant(index, c);
          diagnostics.push({
            type: 'Warning',
            reason: 'InvalidMatch',
            object: claimant.object,
            message: `${claimant.shown}: route ${c.route.id}: ${problem.message}; this match is not routed`,
          });
          continue;
        }
        let list = byOwner.get(c.owner);
        if (!list) byOwner.set(c.owner, (list = []));
        list.push(c);
      }
      const owners = new Map<string, OwnerGroup>();
      for (const [owner, candidates] of byOwner) {
        const previous = state.owners.get(owner);
        const signature = JSON.stringify(candidates);
        if (previous !== undefined && previous.signature === signature) {
          owners.set(owner, previous);
          continue;
        }
        const claimant = sourceClaimant(index, candidates[0]!);
        if (previous !== undefined) this.#removeCandidates(previous.key, previous.candidates, batch);
        this.#addCandidates(claimant.key, candidates, claimant, batch);
        owners.set(owner, { key: claimant.key, candidates, claimant, signature });
      }
      for (const [owner, previous] of state.owners) if (!owners.has(owner)) this.#removeCandidates(previous.key, previous.candidates, batch);
      state.owners = owners;
      const services = new Set(result.services);
      for (const service of state.services) if (!services.has(service)) batch.services.add(service);
      for (const service of services) if (!state.services.has(service)) batch.services.add(service);
      state.services = services;
      sourceDiagnostics.set(String(index), diagnostics.length > 0 ? Object.freeze(diagnostics) : undefined);
    });
    if (sourceDiagnostics.size > 0) this.#sourceDiagnostics = this.#sourceDiagnostics.with(sourceDiagnostics);
  }

  #updateControllerDefault(ctx: TranslateContext, dirtyServices: ReadonlySet<string>): void {
    const ref = this.#config.defaultBackend;
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
    if (!resolved.ok) {
      diagnostics.push({ type: 'Warning', reason: resolved.reason, object, field, message: `${shown}: ${resolved.message}; no controller default backend` });
    } else {
      if (resolved.noEndpoints) {
        diagnostics.push({
          type: 'Warning',
          reason: 'NoReadyEndpoints',
          object,
          field,
          message: `${shown}: ${resolved.noEndpoints}; requests get 503 until endpoints are ready`,
        });
      }
      const protocol = chooseProtocol(undefined, resolved.backend, this.#config.plugins);
      if (protocol !== 'http' && !this.#config.plugins.serves(protocol)) {
        const owner = this.#config.plugins.disabledProtocolOwner(protocol);
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

  /** Resolves conflicts and rebuilds the path index of every dirty host, then publishes the new versions. */
  #reindex(dirtyHosts: ReadonlySet<string>): void {
    if (dirtyHosts.size === 0) return;
    const exact = new Map<string, PathIndex | undefined>();
    const wildcard = new Map<string, PathIndex | undefined>();
    const routes = new Map<string, readonly Route[] | undefined>();
    const conflicts = new Map<string, readonly Diagnostic[] | undefined>();
    for (const hostKey of dirtyHosts) {
      const entry = this.#hostEntries.get(hostKey);
      const resolved = entry ? this.#resolve(hostKey, entry) : undefined;
      if (entry && entry.candidates.length === 0) this.#hostEntries.delete(hostKey);
      const index = resolved?.index;
      routes.set(hostKey, resolved && resolved.winners.length > 0 ? resolved.winners : undefined);
      conflicts.set(hostKey, resolved && resolved.conflicts.length > 0 ? resolved.conflicts : undefined);
      if (hostKey === DEFAULT_HOST_KEY) this.#ingressDefault = resolved?.winners[0];
      else if (hostKey === HOSTLESS_KEY) this.#hostless = index;
      else if (hostKey.startsWith('*.')) wildcard.set(hostKey.slice(2), index);
      else exact.set(hostKey, index);
    }
    this.#exactHosts = this.#exactHosts.with(exact);
    this.#wildcardHosts = this.#wildcardHosts.with(wildcard);
    this.#routesByHost = this.#routesByHost.with(routes);
    this.#conflicts = this.#conflicts.with(conflicts);
  }

  /**
   * Conflict resolution for one host: per (match kind, path key, conditions, entrance) the oldest object wins, then
   * `Kind/namespace/name`, then declaration order; a winner's weighted group wins with it. Survivors with
   * conditions are put in matching precedence (see {@link PathIndex}).
   */
  #resolve(hostKey: string, entry: HostEntry): { winners: readonly Route[]; index: PathIndex | undefined; conflicts: readonly Diagnostic[] } {
    let survivors: readonly Candidate[];
    let conflicts: readonly Diagnostic[] = NONE;
    const only = entry.candidates.length === 1 ? entry.candidates[0]!.list : undefined;
    if (only !== undefined && only.length <= 16 && !hasDuplicates(only)) {
      // The common case: one object with distinct paths; nothing to resolve.
      survivors = only;
    } else {
      const best = new Map<string, Claim>();
      const all: Array<{ item: Claim; slot: string }> = [];
      let conditional = false;
      for (const group of entry.candidates) {
        const o = group.claimant ?? this.#ingressClaimant(group.key);
        for (const c of group.list) {
          const item = { c, o };
          // Routes of overlapping listener sets may both meet a request: they too are tried in precedence order.
          if (c.route.conditions !== undefined || c.route.listeners !== undefined) conditional = true;
          // Routes served through different Gateways' own tunnels (or different listeners of one Gateway) never meet
          // a request together: no conflict.
          const slot = `${c.kind}\u0000${c.key}\u0000${conditionsKey(c.route.conditions)}\u0000${c.route.gateway ?? ''}\u0000${listenersKey(c.route)}`;
          all.push({ item, slot });
          const current = best.get(slot);
          if (!current || precedes(item, current)) best.set(slot, item);
        }
      }
      const kept: Claim[] = [];
      const lost: Diagnostic[] = [];
      const reported = new Set<string>();
      for (const { item, slot } of all) {
        const winner = best.get(slot)!;
        if (winner === item || sameWeightedGroup(item, winner)) {
          kept.push(item);
          continue;
        }
        // A losing weighted group is reported once.
        const group = item.c.route.weight?.group;
        if (group !== undefined) {
          const id = `${slot}\u0000${item.o.key}\u0000${group}`;
          if (reported.has(id)) continue;
          reported.add(id);
        }
        lost.push(conflictDiagnostic(hostKey, item, winner));
      }
      if (conditional) kept.sort(matchingOrder);
      survivors = kept.map((k) => k.c);
      conflicts = lost;
    }
    const winners = survivors.map((c) => c.route);
    const index = hostKey === DEFAULT_HOST_KEY || winners.length === 0 ? undefined : new PathIndex(survivors, this.#config.random);
    return { winners, index, conflicts };
  }

  /** Slice-level problems of the Services in use, reported once per Service. */
  #refreshServiceDiagnostics(services: ReadonlySet<string>): void {
    if (services.size === 0) return;
    const changes = new Map<string, readonly Diagnostic[] | undefined>();
    const controllerService = this.#controllerDefault?.service;
    for (const service of services) {
      const used = this.#serviceUsers.has(service) || service === controllerService || this.#sources.some((s) => s.services.has(service));
      const found = used ? this.#resolver.diagnosticsOf(service) : NONE;
      changes.set(service, found.length > 0 ? found : undefined);
    }
    this.#serviceDiagnostics = this.#serviceDiagnostics.with(changes);
  }
}

interface Batch {
  /** Host keys whose candidates changed. */
  readonly hosts: Set<string>;
  /** Services whose users or resolution changed. */
  readonly services: Set<string>;
  readonly owned: Map<string, IngressRef | undefined>;
  readonly diagnostics: Map<string, readonly Diagnostic[] | undefined>;
}

const NONE: readonly never[] = Object.freeze([]);
const NO_OBJECTS: ReadonlyMap<string, KubernetesObject> = new Map();

function hasDuplicates(list: readonly Candidate[]): boolean {
  for (let i = 1; i < list.length; i++) {
    for (let j = 0; j < i; j++) if (list[i]!.key === list[j]!.key && list[i]!.kind === list[j]!.kind) return true;
  }
  return false;
}

/** A candidate with the object that declares it. */
interface Claim {
  readonly c: Candidate;
  readonly o: Claimant;
}

/** Conflict order: older object first, then `Kind/namespace/name`, then group key, then declaration order. */
function precedes(a: Claim, b: Claim): boolean {
  if (a.o.time !== b.o.time) return a.o.time < b.o.time;
  if (a.o.name !== b.o.name) return a.o.name < b.o.name;
  if (a.o.key !== b.o.key) return a.o.key < b.o.key;
  const ao = declarationOrder(a.c);
  const bo = declarationOrder(b.c);
  if (ao !== bo) return ao < bo;
  return a.c.ruleIndex !== b.c.ruleIndex ? a.c.ruleIndex < b.c.ruleIndex : a.c.pathIndex < b.c.pathIndex;
}

/** Position inside the declaring object: a route source's `order`, else the Ingress rule (paths break a tie). */
function declarationOrder(c: Candidate): number {
  return (c as Partial<SourcedCandidate>).order ?? c.ruleIndex;
}

/** Matching precedence of survivors on one host: more specific conditions first, then the conflict order. */
function matchingOrder(a: Claim, b: Claim): number {
  const d = specificity(b.c.route.conditions) - specificity(a.c.route.conditions);
  if (d !== 0) return d;
  return precedes(a, b) ? -1 : precedes(b, a) ? 1 : 0;
}

/** True when `item` belongs to the weighted group of `winner` (same object, same group). */
function sameWeightedGroup(item: Claim, winner: Claim): boolean {
  const group = item.c.route.weight?.group;
  return group !== undefined && item.o.key === winner.o.key && winner.c.route.weight?.group === group;
}

/** The claimant of a route source's candidate; its group key cannot collide with an Ingress key (`namespace/name`). */
function sourceClaimant(index: number, c: SourcedCandidate): Claimant {
  const ref = c.route.ingress;
  const kind = ref.kind ?? 'Ingress';
  return {
    kind,
    time: c.time,
    name: c.owner,
    key: `#source${index}\u0000${c.owner}`,
    object: { kind, namespace: ref.namespace, name: ref.name, uid: ref.uid || undefined },
    shown: `${kind} ${ref.namespace}/${ref.name}`,
  };
}

/** Where a candidate was declared in its object: an Ingress path, or a Gateway API rule match. */
function declaredField(c: Candidate, o: Claimant): string {
  if (o.kind === 'Ingress') return candidateField(c);
  return c.ruleIndex < 0 ? 'spec.rules' : `spec.rules[${c.ruleIndex}].matches[${c.pathIndex}]`;
}

function conflictDiagnostic(hostKey: string, loser: Claim, winner: Claim): Diagnostic {
  const { shown, object } = loser.o;
  const field = declaredField(loser.c, loser.o);
  const same = loser.o.key === winner.o.key;
  if (hostKey === DEFAULT_HOST_KEY) {
    const message = same
      ? `${shown}: ${field} is declared twice; ignored`
      : `${shown}: ${field} is not used: ${winner.o.shown} also sets a default backend and ${why(loser.o, winner.o)}`;
    return { type: 'Warning', reason: 'RouteConflict', object, field, message };
  }
  const conditions = loser.c.route.conditions !== undefined ? ' with the same method, header and query conditions' : '';
  const where = `host ${hostKey === HOSTLESS_KEY ? '(any)' : `"${hostKey}"`}, ${loser.c.route.pathType} "${loser.c.route.path}"${conditions}`;
  const message = same
    ? `${shown}: ${field} (${where}) duplicates ${declaredField(winner.c, winner.o)}; ignored`
    : `${shown}: ${field} (${where}) is also claimed by ${winner.o.shown}, which ${why(loser.o, winner.o)}; path not routed`;
  return { type: 'Warning', reason: 'RouteConflict', object, field, message };
}

function why(loser: Claimant, winner: Claimant): string {
  if (loser.time !== winner.time) return 'is older and wins';
  return loser.kind === winner.kind ? 'is as old and wins by namespace/name order' : 'is as old and wins by kind/namespace/name order';
}

/**
 * The objects the last build used, per key, for change detection: identity first (a WeakSet probe, cheaper
 * than a keyed lookup), then `resourceVersion` (a relist hands over equal objects with the same version).
 */
class SeenObjects<T> {
  readonly #byKey = new Map<string, T>();
  readonly #objects = new WeakSet<object>();

  set(key: string, value: T | undefined): void {
    const old = this.#byKey.get(key);
    if (old === value) return;
    if (isObject(old)) this.#objects.delete(old);
    if (value === undefined) {
      this.#byKey.delete(key);
      return;
    }
    this.#byKey.set(key, value);
    if (isObject(value)) this.#objects.add(value);
  }

  /** Keys whose object differs from what was seen, found by scanning `current`. */
  diff(current: ReadonlyMap<string, T>): Set<string> {
    const changed = new Set<string>();
    let matched = 0;
    current.forEach((value, key) => {
      if (isObject(value) && this.#objects.has(value)) {
        matched++;
        return;
      }
      const old = this.#byKey.get(key);
      if (old === undefined) {
        changed.add(key);
        return;
      }
      matched++;
      if (old !== value && sameVersion(old, value)) this.set(key, value);
      else if (old !== value) changed.add(key);
    });
    if (matched !== this.#byKey.size) for (const key of this.#byKey.keys()) if (!current.has(key)) changed.add(key);
    return changed;
  }

  /** Keys among `keys` whose object differs from what was seen. */
  hinted(current: ReadonlyMap<string, T>, keys: Iterable<string> | undefined): Set<string> {
    const changed = new Set<string>();
    if (!keys) return changed;
    for (const key of keys) {
      const value = current.get(key);
      const old = this.#byKey.get(key);
      if (value === old) continue;
      if (value !== undefined && old !== undefined && sameVersion(old, value)) this.set(key, value);
      else changed.add(key);
    }
    return changed;
  }
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

function sameVersion(a: unknown, b: unknown): boolean {
  const va = (a as { metadata?: { resourceVersion?: unknown } })?.metadata?.resourceVersion;
  const vb = (b as { metadata?: { resourceVersion?: unknown } })?.metadata?.resourceVersion;
  return typeof va === 'string' && va !== '' && va === vb;
}
