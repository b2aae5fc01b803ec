import type { KubernetesObject, V1EndpointSlice, V1Ingress, V1IngressClass, V1Secret, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import type { ClusterSnapshot, SnapshotChanges } from '../routes/snapshot.js';
import type { KubeClient } from './api/client.js';
import { kindSpecs, type KindSpec, type WatchedKind } from './kinds.js';
import { ObjectStore, onlyStatusChanged, type StoreChange } from './object-store.js';
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
  /** Overrides for tests (smaller pages, faster backoff). */
  readonly pageSize?: number | undefined;
  readonly backoffMs?: { readonly initial: number; readonly max: number } | undefined;
}

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
  readonly #o: ClusterInformersOptions;
  readonly #stores = {
    Ingress: new ObjectStore<V1Ingress>(onlyStatusChanged),
    IngressClass: new ObjectStore<V1IngressClass>(onlyStatusChanged),
    Service: new ObjectStore<V1Service>(onlyStatusChanged),
    EndpointSlice: new ObjectStore<V1EndpointSlice>(),
    Secret: new ObjectStore<V1Secret>(),
  };
  readonly #reflectors: Reflector<KubernetesObject>[] = [];
  readonly #listeners = new Set<ClusterChangeListener>();
  #syncedAll = false;

  constructor(options: ClusterInformersOptions) {
    this.#o = options;
    const specs = kindSpecs(options.client);
    this.secrets = new SecretCache({
      store: this.#stores.Secret,
      client: options.client,
      logger: options.logger,
      namespaces: options.namespaces,
      onStoreChange: (changes) => this.#changed('Secret', changes),
    });
    const scopes = options.namespaces.length ? [...new Set(options.namespaces)] : [undefined];
    const add = <T extends KubernetesObject>(
      spec: KindSpec<T>,
      store: ObjectStore<T>,
      extra: { keep?: (key: string, obj: T) => boolean; observe?: (type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string) => void } = {},
    ) => {
      for (const namespace of spec.namespaced ? scopes : [undefined]) {
        const reflector = new Reflector<T>({
          spec,
          namespace,
          store,
          client: options.client,
          logger: options.logger,
          metrics: options.metrics,
          pageSize: options.pageSize,
          backoffMs: options.backoffMs,
          onChange: (changes) => this.#changed(spec.kind, changes),
          ...extra,
        });
        this.#reflectors.push(reflector as unknown as Reflector<KubernetesObject>);
      }
    };
    add(specs.IngressClass, this.#stores.IngressClass);
    add(specs.Ingress, this.#stores.Ingress);
    add(specs.Service, this.#stores.Service);
    add(specs.EndpointSlice, this.#stores.EndpointSlice);
    if (options.watchSecrets ?? true) add(specs.Secret, this.#stores.Secret, { keep: this.secrets.keep, observe: this.secrets.observe });
  }

  /** Subscribes to changes; returns an unsubscribe function. */
  onChange(listener: ClusterChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** True once every reflector applied its first list. */
  get synced(): boolean {
    return this.#syncedAll || (this.#syncedAll = this.#reflectors.every((r) => r.synced));
  }

  /** Resolves once every cache holds its first full list, or when `signal` aborts. */
  async waitForSync(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.#reflectors.map((r) => r.whenSynced(signal)));
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
    };
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
  counts(): Record<WatchedKind, number> {
    const s = this.#stores;
    return { Ingress: s.Ingress.size, IngressClass: s.IngressClass.size, Service: s.Service.size, EndpointSlice: s.EndpointSlice.size, Secret: s.Secret.size };
  }

  /** Forces every reflector to list again (used after long outages or by tests). */
  relistAll(): void {
    for (const r of this.#reflectors) r.requestRelist();
  }

  async start(signal: AbortSignal): Promise<void> {
    this.#o.logger.info({ namespaces: this.#o.namespaces.length ? this.#o.namespaces : 'all', reflectors: this.#reflectors.length }, 'starting informers');
    const runs = this.#reflectors.map((r) => r.run(signal));
    void this.waitForSync(signal).then(() => {
      if (!signal.aborted) this.#o.logger.info({ objects: this.counts() }, 'informer caches synced');
    });
    await Promise.all(runs);
    this.#o.metrics?.cachesSynced.set(0);
  }

  #changed(kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>): void {
    if (kind === 'Secret') this.secrets.notify(changes);
    for (const listener of this.#listeners) {
      try {
        listener(kind, changes);
      } catch (err) {
        this.#o.logger.error({ err, kind }, 'an informer change listener threw');
      }
    }
  }
}
