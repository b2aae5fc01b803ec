import type { V1Ingress } from '@kubernetes/client-node';
import { apiPath, type KubeClient } from '../k8s/api/client.js';
import type { Logger } from 'pino';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import type { EventSink, Runnable } from '../plugin-api/lifecycle.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import type { RouteStore } from '../routes/store.js';
import { apiFailure, isNotFound, kubernetesError } from '../k8s/api-errors.js';
import type { IngressSource } from './status.js';
import { controlContext, type ControlState } from './control-context.js';
import { OwnedIngresses } from './owned-ingresses.js';
import { WorkQueue } from './workqueue.js';

/** Warren's finalizer, domain-qualified as Kubernetes asks of non-core finalizers. */
export const CLEANUP_FINALIZER = 'warren.dev/cleanup';

export interface FinalizerOptions {
  readonly client: KubeClient;
  readonly ingresses: IngressSource;
  readonly store: RouteStore;
  /** Enabled control plugins; only those answering `needsFinalizer` true cause a finalizer. */
  readonly plugins: readonly ControlPluginInstance[];
  readonly events: EventSink;
  /** The tunnel and leadership each call's context is read from. */
  readonly state: ControlState;
  readonly logger: Logger;
  readonly metrics?: ControlPlaneMetrics | undefined;
  /** Cleanup attempts before the finalizer is removed anyway (with a Warning). Default 5. */
  readonly maxCleanupAttempts?: number | undefined;
  /** First retry delay of a failed cleanup; doubles per attempt. Default 1 s. */
  readonly retryBaseMs?: number | undefined;
  readonly coalesceMs?: number | undefined;
}

/**
 * Puts `warren.dev/cleanup` on owned Ingresses whose external state a control plugin manages (DNS records,
 * firewall rules: `ControlPlugin.needsFinalizer`) and removes it once that state is cleaned up (leader only).
 *
 *  - An owned Ingress that some plugin needs a finalizer for gets it; one that no longer qualifies (class changed,
 *    plugin opt-out annotation) loses it — the plugins' level-based `onRoutesChanged` already stops managing it.
 *  - When a finalized Ingress is deleted, every plugin's `onIngressDeleted` runs, then the finalizer is removed.
 *  - Removal never wedges a namespace deletion: after `maxCleanupAttempts` failed cleanups (exponential backoff
 *    in between) the finalizer is removed anyway and a `CleanupFailed` Warning says what may be left behind.
 *
 * Finalizer edits are JSON patches guarded by a `test` of `metadata.resourceVersion`, so they never overwrite a
 * concurrent change (a failed test is retried against the newer object).
 */
export class FinalizerController implements Runnable {
  readonly needsLeader = true;
  readonly #o: FinalizerOptions;
  readonly #attempts = new Map<string, number>();
  readonly #owned: OwnedIngresses;
  #queue: WorkQueue<string> | undefined;

  constructor(options: FinalizerOptions) {
    this.#o = options;
    this.#owned = new OwnedIngresses(options.store, options.ingresses);
  }

  /** Resolves when no finalizer work is pending (tests). */
  idle(): Promise<void> {
    return this.#queue?.idle() ?? Promise.resolve();
  }

  async start(signal: AbortSignal): Promise<void> {
    // Before the first route table nothing looks owned: checking every Ingress then would drop their finalizers.
    if (!(await this.#o.store.whenBuilt(signal))) return;
    const base = this.#o.retryBaseMs ?? 1_000;
    const queue = new WorkQueue<string>({
      name: 'finalizer',
      coalesceMs: this.#o.coalesceMs,
      baseRetryMs: base,
      maxRetryMs: base * 64,
      logger: this.#o.logger,
      metrics: this.#o.metrics,
    });
    this.#queue = queue;
    const stopFollowing = this.#owned.follow((key) => queue.add(key));
    for (const key of this.#o.ingresses.ingresses().keys()) queue.add(key);
    try {
      await queue.run((key, s) => this.#reconcile(key, s), signal);
    } finally {
      stopFollowing();
      if (this.#queue === queue) this.#queue = undefined;
    }
  }

  async #reconcile(key: string, signal: AbortSignal): Promise<void> {
    const ingress = this.#o.ingresses.ingress(key);
    if (!ingress) {
      this.#attempts.delete(key);
      return;
    }
    const finalizers = ingress.metadata?.finalizers ?? [];
    const has = finalizers.includes(CLEANUP_FINALIZER);
    const deleting = ingress.metadata?.deletionTimestamp !== undefined && ingress.metadata?.deletionTimestamp !== null;
    if (deleting) {
      if (has) await this.#cleanup(key, ingress, signal);
      return;
    }
    const needs = this.#owned.has(key) && this.#plugins(ingress).length > 0;
    if (needs && !has) await this.#setFinalizers(ingress, [...finalizers, CLEANUP_FINALIZER], 'add', signal);
    else if (!needs && has)
      await this.#setFinalizers(
        ingress,
        finalizers.filter((f) => f !== CLEANUP_FINALIZER),
        'remove',
        signal,
      );
  }

  #plugins(ingress: V1Ingress): ControlPluginInstance[] {
    const ref = { namespace: ingress.metadata?.namespace ?? '', name: ingress.metadata?.name ?? '', annotations: ingress.metadata?.annotations ?? {} };
    return this.#o.plugins.filter((p) => {
      try {
        return p.needsFinalizer?.(ref) === true;
      } catch (err) {
        this.#o.logger.warn({ plugin: p.id, ingress: `${ref.namespace}/${ref.name}`, err: apiFailure(err) }, 'needsFinalizer threw; treating as true');
        return true;
      }
    });
  }

  async #cleanup(key: string, ingress: V1Ingress, signal: AbortSignal): Promise<void> {
    const namespace = ingress.metadata!.namespace!;
    const name = ingress.metadata!.name!;
    const hosts = [...new Set((ingress.spec?.rules ?? []).map((r) => r.host?.toLowerCase()).filter((h): h is string => !!h))];
    const ctx = controlContext(this.#o.state, signal);
    const failures: string[] = [];
    for (const plugin of this.#o.plugins) {
      if (!plugin.onIngressDeleted) continue;
      try {
        await plugin.onIngressDeleted({ namespace, name, hosts }, ctx);
      } catch (err) {
        failures.push(`${plugin.id}: ${apiFailure(err).message}`);
      }
    }
    if (failures.length > 0) {
      const attempts = (this.#attempts.get(key) ?? 0) + 1;
      this.#attempts.set(key, attempts);
      const max = this.#o.maxCleanupAttempts ?? 5;
      if (attempts < max) {
        this.#o.logger.warn({ ingress: key, attempts, failures }, 'cleanup of a deleted Ingress failed; retrying');
        throw new Error(`cleanup of Ingress ${key} failed (attempt ${attempts} of ${max}): ${failures.join('; ')}`);
      }
      this.#o.events.warning(
        { kind: 'Ingress', namespace, name, uid: ingress.metadata?.uid },
        'CleanupFailed',
        `removing finalizer ${CLEANUP_FINALIZER} after ${attempts} failed cleanup attempts so deletion can finish; external state may remain: ${failures.join('; ')}`,
      );
    }
    await this.#setFinalizers(
      ingress,
      (ingress.metadata?.finalizers ?? []).filter((f) => f !== CLEANUP_FINALIZER),
      'remove',
      signal,
    );
    this.#attempts.delete(key);
  }

  async #setFinalizers(ingress: V1Ingress, finalizers: string[], action: 'add' | 'remove', signal: AbortSignal): Promise<void> {
    const namespace = ingress.metadata!.namespace!;
    const name = ingress.metadata!.name!;
    try {
      await this.#o.client.patch(
        apiPath('networking.k8s.io/v1', 'ingresses', namespace, name),
        [
          { op: 'test', path: '/metadata/resourceVersion', value: ingress.metadata?.resourceVersion },
          { op: 'add', path: '/metadata/finalizers', value: finalizers },
        ],
        'json',
        { signal },
      );
      this.#o.logger.info({ ingress: `${namespace}/${name}`, finalizer: CLEANUP_FINALIZER }, action === 'add' ? 'added finalizer' : 'removed finalizer');
    } catch (err) {
      if (isNotFound(err)) return;
      throw kubernetesError(`${action} finalizer ${CLEANUP_FINALIZER} on Ingress ${namespace}/${name}`, err);
    }
  }
}
