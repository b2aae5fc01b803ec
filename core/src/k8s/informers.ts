import type { KubernetesObject, V1ConfigMap, V1EndpointSlice, V1Ingress, V1IngressClass, V1Secret, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import type { ClusterSnapshot, SnapshotChanges } from '../routes/snapshot.js';
import type { KubeClient } from './api/client.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { caConfigMapRefs } from '../gateway/backend-tls.js';
import { GATEWAY_KINDS } from '../gateway/types.js';
import { apiFailure } from './api-errors.js';
import { discoverGatewayKinds, type ServedKind } from './discovery.js';
import { kindSpec, kindSpecs, type CoreKind, type ExtraKind, type KindSpec, type WatchedKind } from './kinds.js';
import { ObjectStore, onlyStatusChanged, type StoreChange } from './object-store.js';
import { ReferencedCache } from './referenced.js';
import { Reflector } from './reflector.js';
import { SecretCache } from './secrets.js';

export interface ClusterInformersOptions {
  readonly client: KubeClient;
  /** Setting `kubernetes.namespaces`: watch only these namespaces (IngressClasses are cluster-scoped and always watched). Empty: all. */
  readonly namespaces: readonly string[];
  readonly logger: Logger;
  readonly metrics?: ControlPlaneMetrics | undefined;
  /**
   * Watch Secrets (default true). False when no enabled plugin has an annotation naming a Secret: then no route
   * can reference one, and the controller needs no permission to read Secrets.
   */
  readonly watchSecrets?: boolean | undefined;
  /**
   * Setting `gateway.enabled`: watch the Gateway API kinds (and Namespaces, whose labels select routes) that the
   * API server serves. Found by discovery at start, and looked for again every {@link gatewayRediscoveryMs} while
   * some are missing (CRDs installed later are picked up without a restart).
   */
  readonly gatewayApi?: boolean | undefined;
  /** How often to look again for Gateway API kinds not served yet (default 60 s). */
  readonly gatewayRediscoveryMs?: number | undefined;
  /** Overrides for tests (smaller pages, faster backoff). */
  readonly pageSize?: number | undefined;
  readonly backoffMs?: { readonly initial: number; readonly max: number } | undefined;
}

const EMPTY: ReadonlyMap<string, KubernetesObject> = new Map();

/** Called synchronously after every applied change (one watch event, one relist diff, one Secret fetch). */
export type ClusterChangeListener = (kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>) => void;

/**
 * The object caches Warren routes from: Ingress, IngressClass, Service, EndpointSlice and (referenced) Secret,
 * each kept current by {@link Reflector}s (one per kind, or one per kind and namespace when
 * `kubernetes.namespaces` is set).
 *
 * A Runnable of the manager's *caches* group: `start` runs the reflectors until stopped, and
 * {@link waitForSync} resolves once every first list is in, which gates readiness and the first route build.
 *
 * {@link snapshot} gives the `ClusterSnapshot` the route builder consumes: immutable maps (copy-on-write), so a
 * build never sees a half-applied relist. {@link takeChanges} says which keys changed since the previous call.
 */
export class ClusterInformers implements Runnable {
  readonly needsLeader = false;
  readonly secrets: SecretCache;
  /** The ConfigMaps BackendTLSPolicies name as CA bundles; watched (filtered to those) while policies are. */
  readonly configMaps: ReferencedCache<V1ConfigMap>;
  readonly #o: ClusterInformersOptions;
  readonly #stores = {
    Ingress: new ObjectStore<V1Ingress>(onlyStatusChanged),
    IngressClass: new ObjectStore<V1IngressClass>(onlyStatusChanged),
    Service: new ObjectStore<V1Service>(onlyStatusChanged),
    EndpointSlice: new ObjectStore<V1EndpointSlice>(),
    Secret: new ObjectStore<V1Secret>(),
  };
  /** The ConfigMap store, in {@link #extra} once BackendTLSPolicies are watched. */
  readonly #configMapStore = new ObjectStore<V1ConfigMap>();
  /** Stores of the extra kinds being watched (added as discovery finds them). */
  readonly #extra = new Map<ExtraKind, ObjectStore<KubernetesObject>>();
  /** Where each extra kind is served (its status subresource is written at the same path). */
  readonly #served = new Map<ExtraKind, { readonly groupVersion: string; readonly resource: string }>();
  readonly #reflectors: Reflector<KubernetesObject>[] = [];
  readonly #listeners = new Set<ClusterChangeListener>();
  #syncedAll = false;
  /** Settles when the first Gateway API discovery is done (at once without `gatewayApi`). */
  readonly #discovered: Promise<void>;
  #discoveryDone = false;
  #resolveDiscovered: () => void = () => {};
  /** Runs reflectors added after start. */
  #launch: ((r: Reflector<KubernetesObject>) => Promise<void>) | undefined;
  readonly #late: Promise<void>[] = [];

  constructor(options: ClusterInformersOptions) {
    this.#o = options;
    this.#discovered = new Promise<void>((resolve) => (this.#resolveDiscovered = resolve));
    if (!options.gatewayApi) this.#markDiscovered();
    const specs = kindSpecs(options.client);
    this.secrets = new SecretCache({
      store: this.#stores.Secret,
      client: options.client,
      logger: options.logger,
      namespaces: options.namespaces,
      onStoreChange: (changes) => this.#changed('Secret', changes),
    });
    this.configMaps = new ReferencedCache<V1ConfigMap>({
      store: this.#configMapStore,
      client: options.client,
      logger: options.logger,
      kind: 'ConfigMap',
      resource: 'configmaps',
      namespaces: options.namespaces,
      onStoreChange: (changes) => this.#changed('ConfigMap', changes),
    });
    const add = <T extends KubernetesObject>(
      spec: KindSpec<T>,
      store: ObjectStore<T>,
      extra: { keep?: (key: string, obj: T) => boolean; observe?: (type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string) => void } = {},
    ) => {
      for (const reflector of this.#reflectorsFor(spec, store, extra)) this.#reflectors.push(reflector);
    };
    add(specs.IngressClass, this.#stores.IngressClass);
    add(specs.Ingress, this.#stores.Ingress);
    add(specs.Service, this.#stores.Service);
    add(specs.EndpointSlice, this.#stores.EndpointSlice);
    if (options.watchSecrets ?? true) add(specs.Secret, this.#stores.Secret, { keep: this.secrets.keep, observe: this.secrets.observe });
  }

  #reflectorsFor<T extends KubernetesObject>(
    spec: KindSpec<T>,
    store: ObjectStore<T>,
    extra: { keep?: (key: string, obj: T) => boolean; observe?: (type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string) => void } = {},
  ): Reflector<KubernetesObject>[] {
    const o = this.#o;
    const scopes = o.namespaces.length ? [...new Set(o.namespaces)] : [undefined];
    return (spec.namespaced ? scopes : [undefined]).map(
      (namespace) =>
        new Reflector<T>({
          spec,
          namespace,
          store,
          client: o.client,
          logger: o.logger,
          metrics: o.metrics,
          pageSize: o.pageSize,
          backoffMs: o.backoffMs,
          onChange: (changes) => this.#changed(spec.kind, changes),
          ...extra,
        }) as unknown as Reflector<KubernetesObject>,
    );
  }

  #markDiscovered(): void {
    this.#discoveryDone = true;
    this.#resolveDiscovered();
  }

  /** The extra kinds being watched (Gateway API kinds found by discovery, and Namespace with them). */
  get extraKinds(): readonly ExtraKind[] {
    return [...this.#extra.keys()];
  }

  /**
   * Looks for the Gateway API kinds until discovery answers (retrying failures with backoff), starts watching the
   * ones served, then looks again every `gatewayRediscoveryMs` while some are missing.
   */
  async #discoverGatewayApi(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    let delay = o.backoffMs?.initial ?? 1000;
    const max = o.backoffMs?.max ?? 30_000;
    let logged = false;
    while (!signal.aborted) {
      const missing = GATEWAY_KINDS.filter((k) => !this.#extra.has(k));
      if (missing.length === 0) return;
      let found: ServedKind[];
      try {
        found = await discoverGatewayKinds(o.client, missing, signal);
      } catch (err) {
        if (signal.aborted) return;
        o.logger.warn({ err: apiFailure(err), retryInMs: delay }, 'Gateway API discovery failed; retrying');
        await sleep(delay, undefined, { signal }).catch(() => {});
        delay = Math.min(max, delay * 2);
        continue;
      }
      delay = o.backoffMs?.initial ?? 1000;
      if (found.length > 0) {
        this.#watchExtra('Namespace', kindSpec(o.client, 'Namespace', 'v1', 'namespaces', false), { groupVersion: 'v1', resource: 'namespaces' });
        for (const f of found) this.#watchExtra(f.kind, kindSpec(o.client, f.kind, f.groupVersion, f.resource, f.namespaced), f);
        // Policies name CA ConfigMaps: watch ConfigMaps, keeping only those named (permission comes with the policies').
        if (found.some((f) => f.kind === 'BackendTLSPolicy')) {
          this.#watchExtra('ConfigMap', kindSpec(o.client, 'ConfigMap', 'v1', 'configmaps', true), { groupVersion: 'v1', resource: 'configmaps' }, this.#configMapStore, {
            keep: this.configMaps.keep,
            observe: this.configMaps.observe,
          });
        }
      }
      if (found.length > 0 || !logged) {
        const served = GATEWAY_KINDS.filter((k) => this.#extra.has(k));
        o.logger.info(
          { served: served.map((k) => `${k} ${found.find((f) => f.kind === k)?.groupVersion ?? ''}`.trim()), missing: GATEWAY_KINDS.filter((k) => !this.#extra.has(k)) },
          served.length ? 'watching the Gateway API kinds the API server serves' : 'the Gateway API is not served (CRDs not installed); looking again later',
        );
        logged = true;
      }
      if (!this.#discoveryDone) this.#markDiscovered();
      await sleep(o.gatewayRediscoveryMs ?? 60_000, undefined, { signal }).catch(() => {});
    }
  }

  #watchExtra(
    kind: ExtraKind,
    spec: KindSpec<KubernetesObject>,
    served: { groupVersion: string; resource: string },
    store: ObjectStore<KubernetesObject> = new ObjectStore<KubernetesObject>(onlyStatusChanged),
    extra: { keep?: (key: string, obj: KubernetesObject) => boolean; observe?: (type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string) => void } = {},
  ): void {
    if (this.#extra.has(kind)) return;
    this.#served.set(kind, served);
    this.#extra.set(kind, store);
    for (const reflector of this.#reflectorsFor(spec, store, extra)) {
      this.#reflectors.push(reflector);
      if (this.#launch) this.#late.push(this.#launch(reflector));
    }
  }

  /** Subscribes to changes; returns an unsubscribe function. */
  onChange(listener: ClusterChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** True once every reflector applied its first list. */
  get synced(): boolean {
    return this.#syncedAll || (this.#syncedAll = this.#discoveryDone && this.#reflectors.every((r) => r.synced));
  }

  /** Resolves once every cache holds its first full list, or when `signal` aborts. */
  async waitForSync(signal?: AbortSignal): Promise<void> {
    await (signal ? Promise.race([this.#discovered, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]) : this.#discovered);
    await Promise.all(this.#reflectors.map((r) => r.whenSynced(signal)));
    // The CA ConfigMaps the listed policies name are fetched by then, so the first build sees them.
    await this.configMaps.settled();
    if (!signal?.aborted) this.#o.metrics?.cachesSynced.set(1);
  }

  /** The current caches as an immutable `ClusterSnapshot`. */
  snapshot(): ClusterSnapshot {
    return {
      ingresses: this.#stores.Ingress.snapshot(),
      ingressClasses: this.#stores.IngressClass.snapshot(),
      services: this.#stores.Service.snapshot(),
      endpointSlices: this.#stores.EndpointSlice.snapshot(),
      secrets: this.#stores.Secret.snapshot(),
      extra: this.#extra.size ? new Map([...this.#extra].map(([kind, store]) => [kind, store.snapshot()])) : undefined,
    };
  }

  /** Keys changed since the previous call, per kind (complete, so a builder may rely on it). */
  takeChanges(): SnapshotChanges {
    return {
      ingresses: this.#stores.Ingress.takeChanges(),
      ingressClasses: this.#stores.IngressClass.takeChanges(),
      services: this.#stores.Service.takeChanges(),
      endpointSlices: this.#stores.EndpointSlice.takeChanges(),
      secrets: this.#stores.Secret.takeChanges(),
      extra: this.#extra.size ? new Map([...this.#extra].map(([kind, store]) => [kind, store.takeChanges()])) : undefined,
    };
  }

  /** The group/version and resource an extra kind is served at; undefined while it is not watched. */
  served(kind: ExtraKind): { readonly groupVersion: string; readonly resource: string } | undefined {
    return this.#served.get(kind);
  }

  /** The cached objects of an extra kind (empty when it is not watched). */
  objects(kind: ExtraKind): ReadonlyMap<string, KubernetesObject> {
    return this.#extra.get(kind)?.snapshot() ?? EMPTY;
  }

  /** The cached Ingress `namespace/name`, if any. */
  ingress(key: string): V1Ingress | undefined {
    return this.#stores.Ingress.get(key);
  }

  /** Every cached Ingress (including those of other classes). */
  ingresses(): ReadonlyMap<string, V1Ingress> {
    return this.#stores.Ingress.snapshot();
  }

  /** Objects per kind, for logs and tests. */
  counts(): Record<CoreKind, number> & Partial<Record<ExtraKind, number>> {
    const s = this.#stores;
    const counts: Record<CoreKind, number> & Partial<Record<ExtraKind, number>> = {
      Ingress: s.Ingress.size,
      IngressClass: s.IngressClass.size,
      Service: s.Service.size,
      EndpointSlice: s.EndpointSlice.size,
      Secret: s.Secret.size,
    };
    for (const [kind, store] of this.#extra) counts[kind] = store.size;
    return counts;
  }

  /** Forces every reflector to list again (used after long outages or by tests). */
  relistAll(): void {
    for (const r of this.#reflectors) r.requestRelist();
  }

  async start(signal: AbortSignal): Promise<void> {
    this.#o.logger.info({ namespaces: this.#o.namespaces.length ? this.#o.namespaces : 'all', reflectors: this.#reflectors.length }, 'starting informers');
    this.#launch = (r) => r.run(signal);
    const runs = this.#reflectors.map((r) => r.run(signal));
    const discovery = this.#o.gatewayApi ? this.#discoverGatewayApi(signal) : Promise.resolve();
    void this.waitForSync(signal).then(() => {
      if (!signal.aborted) this.#o.logger.info({ objects: this.counts() }, 'informer caches synced');
    });
    await Promise.all([...runs, discovery]);
    // Reflectors added by discovery run until the same signal stops them.
    await Promise.all(this.#late);
    this.#launch = undefined;
    this.#o.metrics?.cachesSynced.set(0);
  }

  #changed(kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>): void {
    if (kind === 'Secret') this.secrets.notify(changes);
    if (kind === 'ConfigMap') this.configMaps.notify(changes);
    if (kind === 'BackendTLSPolicy' && this.#extra.has('ConfigMap')) {
      // Listeners hear of the policy change once the ConfigMaps it names are fetched, so that a build never
      // reports a CA ConfigMap missing that exists.
      const refs = caConfigMapRefs(this.#extra.get('BackendTLSPolicy')?.snapshot() ?? EMPTY);
      void this.configMaps.setReferences(refs, 'backend-tls').then(() => this.#tell(kind, changes));
      return;
    }
    this.#tell(kind, changes);
  }

  #tell(kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>): void {
    for (const listener of this.#listeners) {
      try {
        listener(kind, changes);
      } catch (err) {
        this.#o.logger.error({ err, kind }, 'an informer change listener threw');
      }
    }
  }
}
