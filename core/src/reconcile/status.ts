import type { V1Ingress, V1IngressLoadBalancerIngress } from '@kubernetes/client-node';
import { apiPath, type KubeClient } from '../k8s/api/client.js';
import type { Logger } from 'pino';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import type { RouteStore } from '../routes/store.js';
import { isConflict, kubernetesError } from '../k8s/api-errors.js';
import type { StoreChange } from '../k8s/object-store.js';
import type { WatchedKind } from '../k8s/kinds.js';
import type { Published } from '../state/published.js';
import type { TunnelState } from '../state/tunnel.js';
import { onTunnelIdentity } from './control-context.js';
import { OwnedIngresses } from './owned-ingresses.js';
import { WorkQueue } from './workqueue.js';

/** Read access to the Ingress cache and its changes (implemented by `ClusterInformers`). */
export interface IngressSource {
  ingress(key: string): V1Ingress | undefined;
  ingresses(): ReadonlyMap<string, V1Ingress>;
  onChange(listener: (kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>) => void): () => void;
}

export interface IngressStatusOptions {
  readonly client: KubeClient;
  readonly ingresses: IngressSource;
  readonly store: RouteStore;
  /** Setting `kubernetes.publishHostname`: the hostname to publish instead of the tunnel's. */
  readonly publishHostname?: string | undefined;
  /**
   * The tunnel: without `publishHostname`, `<tunnel-id>.cfargotunnel.com` is published; nothing is written while the
   * id is not known yet, and every Ingress is checked again when it changes.
   */
  readonly tunnel: Published<TunnelState>;
  readonly logger: Logger;
  readonly metrics?: ControlPlaneMetrics | undefined;
  readonly coalesceMs?: number | undefined;
}

/** The tunnel's public name, as Cloudflare DNS CNAMEs point at it. */
function tunnelHostname(tunnelId: string): string {
  return `${tunnelId}.cfargotunnel.com`;
}

/**
 * Keeps `status.loadBalancer.ingress` of Ingresses in step with ownership (leader only):
 *  - every Ingress Warren owns gets exactly `[{hostname}]` — written only when it differs, so steady state
 *    costs no API calls;
 *  - an Ingress Warren no longer owns (class changed) loses the entry carrying Warren's hostname; anything else
 *    in its status, and every Ingress of another class, is never touched;
 *  - nothing is cleared on shutdown: the tunnel outlives the pod, and the next leader carries on.
 *
 * Writes go through the `status` subresource with the cached `resourceVersion`. A conflict means the cache is behind:
 * the writer then reads the live object once and writes against it (if it still needs the change); should that
 * fail too, the key is retried with backoff while the informer delivers the newer object.
 */
export class IngressStatusWriter implements Runnable {
  readonly needsLeader = true;
  readonly #o: IngressStatusOptions;
  #queue: WorkQueue<string> | undefined;
  readonly #owned: OwnedIngresses;
  /** Hostnames this process published; an un-owned Ingress carrying one of them is cleared. */
  readonly #published = new Set<string>();

  constructor(options: IngressStatusOptions) {
    this.#o = options;
    this.#owned = new OwnedIngresses(options.store, options.ingresses);
  }

  /** The hostname to publish; undefined while the tunnel id is not known yet. */
  #hostname(): string | undefined {
    if (this.#o.publishHostname) return this.#o.publishHostname;
    const id = this.#o.tunnel.current.id;
    return id ? tunnelHostname(id) : undefined;
  }

  /** Resolves when no status work is pending (tests). */
  idle(): Promise<void> {
    return this.#queue?.idle() ?? Promise.resolve();
  }

  async start(signal: AbortSignal): Promise<void> {
    // Before the first route table nothing looks owned: checking every Ingress then would clear their status.
    if (!(await this.#o.store.whenBuilt(signal))) return;
    const queue = new WorkQueue<string>({
      name: 'status',
      coalesceMs: this.#o.coalesceMs,
      logger: this.#o.logger,
      metrics: this.#o.metrics,
      concurrency: 2,
    });
    this.#queue = queue;
    const stopFollowing = this.#owned.follow((key) => queue.add(key));
    const all = (): void => {
      for (const key of this.#o.ingresses.ingresses().keys()) queue.add(key);
    };
    // A new tunnel id changes the published hostname: check every Ingress again.
    const stopFollowingTunnel = this.#o.publishHostname ? () => {} : onTunnelIdentity(this.#o.tunnel, all);
    const hostname = this.#hostname();
    if (hostname) this.#published.add(hostname);
    // Leadership (re)gained: check every Ingress once.
    all();
    try {
      await queue.run((key, s) => this.#reconcile(key, s), signal);
    } finally {
      stopFollowing();
      stopFollowingTunnel();
      if (this.#queue === queue) this.#queue = undefined;
    }
  }

  async #reconcile(key: string, signal: AbortSignal): Promise<void> {
    const ingress = this.#o.ingresses.ingress(key);
    if (!ingress) return;
    const hostname = this.#hostname();
    if (!hostname) return;
    this.#published.add(hostname);
    const change = this.#change(key, ingress, hostname);
    if (!change) return;
    try {
      await this.#write(ingress, change, signal);
    } catch (err) {
      // A conflict means the cache is behind the API server. Its watch may take long to catch up (a relist after a
      // compaction, an API server under load), so decide once more on the live object instead of waiting for it.
      if (!isConflict((err as Error).cause)) throw err;
      const [namespace, name] = [ingress.metadata!.namespace!, ingress.metadata!.name!];
      const live = await this.#o.client.get<V1Ingress>(apiPath('networking.k8s.io/v1', 'ingresses', namespace, name), { signal }).catch(() => undefined);
      const again = live ? this.#change(key, live, hostname) : undefined;
      if (!live || !again) throw err;
      await this.#write(live, again, signal);
    }
  }

  /** The status entries `ingress` should get, or undefined when it already has what it should. */
  #change(key: string, ingress: V1Ingress, hostname: string): { entries: V1IngressLoadBalancerIngress[]; action: 'set' | 'clear' } | undefined {
    const current = ingress.status?.loadBalancer?.ingress ?? [];
    if (this.#owned.has(key)) {
      if (current.length === 1 && current[0]!.hostname === hostname && !current[0]!.ip && !current[0]!.ports?.length) return undefined;
      return { entries: [{ hostname }], action: 'set' };
    }
    const kept = current.filter((e) => !(e.hostname && this.#published.has(e.hostname)));
    return kept.length === current.length ? undefined : { entries: kept, action: 'clear' };
  }

  async #write(ingress: V1Ingress, change: { entries: V1IngressLoadBalancerIngress[]; action: 'set' | 'clear' }, signal: AbortSignal): Promise<void> {
    const namespace = ingress.metadata!.namespace!;
    const name = ingress.metadata!.name!;
    const { entries, action } = change;
    try {
      await this.#o.client.put(
        apiPath('networking.k8s.io/v1', 'ingresses', namespace, name, 'status'),
        {
          ...ingress,
          status: { ...ingress.status, loadBalancer: { ...ingress.status?.loadBalancer, ingress: entries } },
        },
        { signal },
      );
      this.#o.metrics?.statusWrites.inc({ action, result: 'success' });
      this.#o.logger.info(
        { ingress: `${namespace}/${name}`, action, hostname: entries[0]?.hostname },
        action === 'set' ? 'published Ingress status' : 'cleared Ingress status',
      );
    } catch (err) {
      this.#o.metrics?.statusWrites.inc({ action, result: 'error' });
      throw kubernetesError(`${action === 'set' ? 'update' : 'clear'} status of Ingress ${namespace}/${name}`, err);
    }
  }
}
