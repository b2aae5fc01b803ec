import type { Logger } from 'pino';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import type { ClusterSnapshot, SnapshotChanges } from '../routes/snapshot.js';
import type { RouteStore } from '../routes/store.js';
import { emptyRouteTable, routeChangesBetween } from '../routes/table.js';
import type { RouteChanges, RouteTable } from '../routes/types.js';
import type { StoreChange } from '../k8s/object-store.js';
import type { WatchedKind } from '../k8s/kinds.js';
import { WorkQueue } from './workqueue.js';

/** What route sync reads: the caches as a snapshot, what changed, and change notifications. */
export interface SnapshotSource {
  snapshot(): ClusterSnapshot;
  takeChanges(): SnapshotChanges;
  onChange(listener: (kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>) => void): () => void;
  /** Secrets the current routes reference; the source keeps (and fetches) exactly those. */
  readonly secrets: { setReferences(refs: Iterable<string>): Promise<void> };
}

/** Builds route tables (the routing model's `RouteTableBuilder`). */
export interface RouteBuilder {
  build(snapshot: ClusterSnapshot, changes?: SnapshotChanges): RouteTable;
}

export interface RouteSyncOptions {
  readonly source: SnapshotSource;
  readonly builder: RouteBuilder;
  readonly store: RouteStore;
  readonly logger: Logger;
  readonly metrics?: ControlPlaneMetrics | undefined;
  /** Setting `kubernetes.resyncBurstWindow`: changes within this window become one build. */
  readonly coalesceMs: number;
}

const ROUTES_KEY = 'routes';

/**
 * The route reconciler, on every replica (not leader-gated: every replica serves traffic). Cache changes only
 * mark the single key `routes` dirty; the work queue coalesces a burst (an initial list of 10,000 objects, a
 * rollout) into one build. A build reads the current snapshot (level-based, never the event), turns it into the
 * next immutable route table, publishes it to the {@link RouteStore}, and hands the table's Secret references to
 * the Secret cache (which fetches new ones; their arrival and later changes reach the Secret reader's listeners,
 * not route sync: a route table does not depend on what a Secret holds).
 *
 * Start it after the caches synced (the manager's order), so the first table is built from complete caches.
 */
export class RouteSync implements Runnable {
  readonly needsLeader = false;
  readonly #o: RouteSyncOptions;
  #builds = 0;
  #fullDiffNext = false;
  #queue: WorkQueue<string> | undefined;
  /** The last table published, and the Secret references of its routes (kept up to date from route changes). */
  #published: RouteTable | undefined;
  readonly #secretRefs = new RefCounts();

  constructor(options: RouteSyncOptions) {
    this.#o = options;
  }

  /** Route tables built so far by this instance. */
  get builds(): number {
    return this.#builds;
  }

  /** Resolves when no build is pending or running (tests, benchmarks). */
  idle(): Promise<void> {
    return this.#queue?.idle() ?? Promise.resolve();
  }

  async start(signal: AbortSignal): Promise<void> {
    const queue = new WorkQueue<string>({
      name: 'routes',
      coalesceMs: this.#o.coalesceMs,
      logger: this.#o.logger,
      metrics: this.#o.metrics,
    });
    this.#queue = queue;
    // Status-only updates (Warren's own status writes among them) cannot change routes: no build for those. Nor
    // can Secrets: the builder only records which Secrets routes reference. A rotated Secret reaches the plugins
    // that read it through one path, the pipeline's Secret watch (one generation, freshly provisioned plugins).
    const unsubscribe = this.#o.source.onChange((kind, changes) => {
      if (kind === 'Secret') return;
      for (const change of changes.values()) {
        if (change !== 'status-only') {
          queue.add(ROUTES_KEY);
          return;
        }
      }
    });
    queue.addAfter(ROUTES_KEY, 0);
    try {
      await queue.run(() => this.#build(), signal);
    } finally {
      unsubscribe();
    }
  }

  #build(): void {
    const { source, builder, store, metrics, logger } = this.#o;
    const snapshot = source.snapshot();
    const changes = source.takeChanges();
    const started = performance.now();
    let table: RouteTable;
    try {
      table = builder.build(snapshot, this.#fullDiffNext ? undefined : changes);
      this.#fullDiffNext = false;
    } catch (err) {
      // The builder is specified never to throw; if it does, the change hint is lost, so diff in full next time.
      this.#fullDiffNext = true;
      throw err;
    }
    const seconds = (performance.now() - started) / 1000;
    this.#builds++;
    store.publish(table);
    metrics?.routeTableBuildSeconds.observe(seconds);
    metrics?.routeTableGeneration.set(table.generation);
    metrics?.countRouteTableWhenScraped(() => routeTableCounts(table));
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        {
          generation: table.generation,
          routes: table.routes.length,
          ingresses: table.ownedIngresses.length,
          diagnostics: table.diagnostics.length,
          buildMs: Math.round(seconds * 1e4) / 10,
        },
        'published route table',
      );
    }
    this.#secretRefs.update(routeChangesBetween(this.#published ?? EMPTY_TABLE, table));
    this.#published = table;
    // Not awaited: fetching newly referenced Secrets must not hold up the next build. Their arrival is a cache
    // change like any other and triggers one.
    source.secrets.setReferences(this.#secretRefs.keys()).catch((err: unknown) => logger.warn({ err }, 'updating the referenced Secrets failed'));
  }
}

const EMPTY_TABLE = emptyRouteTable();

/** How many routes reference each Secret, kept from route changes (in proportion to the change). */
class RefCounts {
  readonly #counts = new Map<string, number>();

  update(changes: RouteChanges): void {
    for (const route of changes.added) for (const ref of route.secretRefs) this.#counts.set(ref, (this.#counts.get(ref) ?? 0) + 1);
    for (const route of changes.removed) {
      for (const ref of route.secretRefs) {
        const n = this.#counts.get(ref)! - 1;
        if (n === 0) this.#counts.delete(ref);
        else this.#counts.set(ref, n);
      }
    }
  }

  keys(): IterableIterator<string> {
    return this.#counts.keys();
  }
}

/** `warren_route_table_objects` by type; linear in the table. */
export function routeTableCounts(table: RouteTable): Record<string, number> {
  const { rejectedIngresses, unresolvedRoutes } = failClosedCounts(table);
  return {
    routes: table.routes.length,
    ingresses: table.ownedIngresses.length,
    hosts: table.hosts.length,
    diagnostics: table.diagnostics.length,
    rejected_ingresses: rejectedIngresses,
    unresolved_routes: unresolvedRoutes,
  };
}

/**
 * What fails closed in a table: owned Ingresses whose current version is not applied (a Warning on one of their
 * `warren.dev/` annotations; each keeps serving its last good version or stays unrouted), and routes that answer
 * 503 because their backend cannot be resolved. For alerts; linear in the table.
 */
export function failClosedCounts(table: RouteTable): { rejectedIngresses: number; unresolvedRoutes: number } {
  const rejected = new Set<string>();
  for (const d of table.diagnostics) {
    const wholeIngress = d.reason === 'InvalidAnnotation' || (d.reason === 'ProtocolUnavailable' && d.field?.startsWith('metadata.annotations') === true);
    if (wholeIngress && d.object.kind === 'Ingress') {
      rejected.add(`${d.object.namespace}/${d.object.name}`);
    }
  }
  let unresolvedRoutes = 0;
  for (const r of table.routes) if (r.unresolved) unresolvedRoutes++;
  return { rejectedIngresses: rejected.size, unresolvedRoutes };
}
