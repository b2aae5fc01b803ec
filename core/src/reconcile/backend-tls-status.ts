import type { V1Secret, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { caSecretRefs, desiredPolicyStatus, MAX_ANCESTORS, type PolicyDesired } from '../gateway/backend-tls-status.js';
import { gatewayObjects, type GatewayObjects } from '../gateway/objects.js';
import { CONTROLLER_NAME, type BackendTLSPolicy, type PolicyAncestorStatus } from '../gateway/types.js';
import { apiPath, type KubeClient } from '../k8s/api/client.js';
import { isConflict, kubernetesError } from '../k8s/api-errors.js';
import type { WatchedKind } from '../k8s/kinds.js';
import type { Runnable } from '../plugin-api/lifecycle.js';
import { merge, normalRef, sameJson, type GatewayStatusSource } from './gateway-status.js';
import { WorkQueue } from './workqueue.js';

export interface PolicyStatusOptions {
  readonly client: KubeClient;
  readonly source: GatewayStatusSource;
  readonly logger: Logger;
  readonly coalesceMs?: number | undefined;
  /** Clock for `lastTransitionTime` (tests). */
  readonly now?: (() => Date) | undefined;
}

const KEY = 'backend-tls-policy-status';
/** Kinds whose changes can change some BackendTLSPolicy status. */
const RELEVANT: ReadonlySet<WatchedKind> = new Set<WatchedKind>([
  'BackendTLSPolicy',
  'ConfigMap',
  'Secret',
  'Service',
  'HTTPRoute',
  'GRPCRoute',
  'Gateway',
  'GatewayClass',
  'ReferenceGrant',
  'Namespace',
]);

/**
 * Keeps Warren's `status.ancestors` entries of BackendTLSPolicies in step with the objects (leader only):
 * level-based like the Gateway status writer, each pass computes every policy's desired entries
 * ({@link desiredPolicyStatus}) and writes only policies whose entries differ, through the `status` subresource.
 * Other controllers' ancestor entries are kept. A write that conflicts (the cache is behind the API server) is
 * decided once more on the live object, read back, instead of waiting for the watch to catch up.
 */
export class BackendTLSPolicyStatusWriter implements Runnable {
  readonly needsLeader = true;
  readonly #o: PolicyStatusOptions;
  #queue: WorkQueue<string> | undefined;

  constructor(options: PolicyStatusOptions) {
    this.#o = options;
  }

  /** Resolves when no status work is pending (tests). */
  idle(): Promise<void> {
    return this.#queue?.idle() ?? Promise.resolve();
  }

  async start(signal: AbortSignal): Promise<void> {
    const queue = new WorkQueue<string>({ name: 'backend-tls-policy-status', coalesceMs: this.#o.coalesceMs, logger: this.#o.logger, concurrency: 1 });
    this.#queue = queue;
    const stop = this.#o.source.onChange((kind) => {
      if (RELEVANT.has(kind)) queue.add(KEY);
    });
    queue.add(KEY);
    try {
      await queue.run((_key, s) => this.#reconcile(s), signal);
    } finally {
      stop();
      if (this.#queue === queue) this.#queue = undefined;
    }
  }

  async #reconcile(signal: AbortSignal): Promise<void> {
    let objects = gatewayObjects(this.#o.source.snapshot().extra);
    if (objects.tlsPolicies.size === 0) return;
    // CA Secrets first (fetched once when newly named), so status never reports one missing that exists.
    await this.#o.source.secrets.setReferences(caSecretRefs(objects), 'backend-tls-policy');
    const snapshot = this.#o.source.snapshot();
    objects = gatewayObjects(snapshot.extra);
    const input = this.#input(objects, snapshot.services as ReadonlyMap<string, V1Service>, snapshot.secrets as ReadonlyMap<string, V1Secret>);
    let failure: unknown;
    for (const desired of desiredPolicyStatus(input)) {
      const policy = objects.tlsPolicies.get(desired.key);
      if (!policy) continue;
      try {
        await this.#apply(policy, desired, signal, async (live) => {
          // Decide again with the live object in place of the cached one (its spec may be newer too).
          const again = desiredPolicyStatus({ ...input, objects: { ...objects, tlsPolicies: new Map(objects.tlsPolicies).set(desired.key, live) } });
          return again.find((d) => d.key === desired.key);
        });
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure) throw failure;
  }

  #input(objects: GatewayObjects, services: ReadonlyMap<string, V1Service>, secrets: ReadonlyMap<string, V1Secret>) {
    return { objects, services, secret: (ns: string, name: string) => secrets.get(`${ns}/${name}`) };
  }

  /** Writes `desired` onto `policy` when it differs; on a conflict, reads the live policy and decides once more. */
  async #apply(policy: BackendTLSPolicy, desired: PolicyDesired, signal: AbortSignal, redo: (live: BackendTLSPolicy) => Promise<PolicyDesired | undefined>): Promise<void> {
    const next = this.#next(policy, desired);
    if (!next) return;
    try {
      await this.#put(policy, next, signal);
    } catch (err) {
      if (!isConflict((err as Error).cause)) throw err;
      const namespace = policy.metadata?.namespace ?? '';
      const name = policy.metadata?.name ?? '';
      const served = this.#o.source.served('BackendTLSPolicy');
      if (!served) throw err;
      const live = await this.#o.client.get<BackendTLSPolicy>(apiPath(served.groupVersion, served.resource, namespace, name), { signal }).catch(() => undefined);
      const again = live ? await redo(live) : undefined;
      const nextAgain = live && again ? this.#next(live, again) : undefined;
      if (!live || !again) throw err;
      if (nextAgain) await this.#put(live, nextAgain, signal);
    }
  }

  /** The status `policy` should get, or undefined when Warren's entries are already right. */
  #next(policy: BackendTLSPolicy, desired: PolicyDesired): unknown {
    const now = (this.#o.now ?? (() => new Date()))()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    const all: PolicyAncestorStatus[] = Array.isArray(policy.status?.ancestors) ? policy.status.ancestors : [];
    const others = all.filter((a) => a?.controllerName !== CONTROLLER_NAME);
    const ours = all.filter((a) => a?.controllerName === CONTROLLER_NAME);
    if (desired.ancestors.length === 0 && ours.length === 0) return undefined;
    const next = desired.ancestors.slice(0, Math.max(0, MAX_ANCESTORS - others.length)).map((a) => ({
      ancestorRef: a.ancestorRef,
      controllerName: a.controllerName,
      conditions: merge(ours.find((o) => sameJson(normalRef(o.ancestorRef), normalRef(a.ancestorRef)))?.conditions, a.conditions, now),
    }));
    if (sameJson(ours.map(comparable), next.map(comparable))) return undefined;
    return { ...policy.status, ancestors: [...others, ...next] };
  }

  async #put(policy: BackendTLSPolicy, status: unknown, signal: AbortSignal): Promise<void> {
    const served = this.#o.source.served('BackendTLSPolicy');
    const namespace = policy.metadata?.namespace ?? '';
    const name = policy.metadata?.name ?? '';
    if (!served) return;
    try {
      await this.#o.client.put(apiPath(served.groupVersion, served.resource, namespace, name, 'status'), { ...policy, status }, { signal });
      this.#o.logger.info({ object: `BackendTLSPolicy ${namespace}/${name}` }, 'updated BackendTLSPolicy status');
    } catch (err) {
      throw kubernetesError(`update status of BackendTLSPolicy ${namespace}/${name}`, err);
    }
  }
}

function comparable(a: PolicyAncestorStatus): unknown {
  return { ancestorRef: normalRef(a.ancestorRef), controllerName: a.controllerName, conditions: a.conditions };
}
