import { isIP } from 'node:net';
import type { KubernetesObject, V1Secret, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { desiredGatewayStatus, type DesiredCondition, type DesiredStatus, type GatewayAddressing, type GatewayStatusInput } from '../gateway/status.js';
import { gatewayObjects } from '../gateway/objects.js';
import { CONTROLLER_NAME, GATEWAY_GROUP, type Condition, type ParentReference, type RouteParentStatus } from '../gateway/types.js';
import { apiPath, type KubeClient } from '../k8s/api/client.js';
import { isConflict, isNotFound, kubernetesError } from '../k8s/api-errors.js';
import type { ExtraKind, WatchedKind } from '../k8s/kinds.js';
import type { StoreChange } from '../k8s/object-store.js';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { ClusterSnapshot } from '../routes/snapshot.js';
import type { Published } from '../state/published.js';
import { onGatewayTunnelIdentity, type GatewayTunnel, type GatewayTunnels } from '../state/gateway-tunnels.js';
import type { TunnelState } from '../state/tunnel.js';
import { onTunnelIdentity } from './control-context.js';
import { WorkQueue } from './workqueue.js';

/** What the Gateway status writer reads (implemented by `ClusterInformers`). */
export interface GatewayStatusSource {
  snapshot(): ClusterSnapshot;
  served(kind: ExtraKind): { readonly groupVersion: string; readonly resource: string } | undefined;
  onChange(listener: (kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>) => void): () => void;
  /** The Secret cache: the writer names the certificate Secrets it needs (owner `gateway`) and reads them. */
  readonly secrets: { setReferences(refs: Iterable<string>, owner?: string): Promise<void> };
}

export interface GatewayStatusOptions {
  readonly client: KubeClient;
  readonly source: GatewayStatusSource;
  /** Setting `gateway.publishAddress`: published instead of the tunnel's hostname. */
  readonly publishAddress?: string | undefined;
  readonly tunnel: Published<TunnelState>;
  /**
   * Managed tunnel: each Gateway's own tunnel. Given, a Gateway publishes its own tunnel's hostname (unless
   * `publishAddress`) and is Programmed only once that tunnel exists.
   */
  readonly gatewayTunnels?: Published<GatewayTunnels> | undefined;
  readonly logger: Logger;
  readonly coalesceMs?: number | undefined;
  /** Clock for `lastTransitionTime` (tests). */
  readonly now?: (() => Date) | undefined;
}

/** Most entries `status.parents` holds (the CRD's bound); Warren's entries give way to other controllers' ones. */
const MAX_PARENTS = 32;
const KEY = 'gateway-status';
/** Kinds whose changes can change some Gateway API status. */
const RELEVANT: ReadonlySet<WatchedKind> = new Set<WatchedKind>(['GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'ReferenceGrant', 'Namespace', 'Service', 'Secret']);

/**
 * Keeps the status of Warren's GatewayClasses, their Gateways and the HTTPRoutes and GRPCRoutes attached to them
 * in step with the objects (leader only). Level-based: every pass computes the whole desired status from the
 * caches ({@link desiredGatewayStatus}, the same analysis the route translation uses) and writes only objects whose
 * status differs, through the `status` subresource with the cached `resourceVersion`; a write that conflicts with a
 * newer object is decided once more on the live object, read back, instead of waiting for the cache to catch up. Conditions keep their `lastTransitionTime` while their status does not change; route
 * parent entries of other controllers are never touched.
 */
export class GatewayStatusWriter implements Runnable {
  readonly needsLeader = true;
  readonly #o: GatewayStatusOptions;
  #queue: WorkQueue<string> | undefined;

  constructor(options: GatewayStatusOptions) {
    this.#o = options;
  }

  /** Resolves when no status work is pending (tests). */
  idle(): Promise<void> {
    return this.#queue?.idle() ?? Promise.resolve();
  }

  async start(signal: AbortSignal): Promise<void> {
    const queue = new WorkQueue<string>({ name: 'gateway-status', coalesceMs: this.#o.coalesceMs, logger: this.#o.logger, concurrency: 1 });
    this.#queue = queue;
    const stop = this.#o.source.onChange((kind) => {
      if (RELEVANT.has(kind)) queue.add(KEY);
    });
    const stopTunnel = this.#o.publishAddress ? () => {} : onTunnelIdentity(this.#o.tunnel, () => queue.add(KEY));
    const gatewayTunnels = this.#o.gatewayTunnels;
    const stopGateways = gatewayTunnels && !this.#o.publishAddress ? onGatewayTunnelIdentity(gatewayTunnels, () => queue.add(KEY)) : () => {};
    queue.add(KEY);
    try {
      await queue.run((_key, s) => this.#reconcile(s), signal);
    } finally {
      stop();
      stopTunnel();
      stopGateways();
      if (this.#queue === queue) this.#queue = undefined;
    }
  }

  /** The address Gateways publish: one for all (undefined while the tunnel id is not known yet), or per Gateway. */
  #address(): GatewayStatusInput['address'] {
    const value = this.#o.publishAddress;
    if (value) return { type: isIP(value) ? 'IPAddress' : 'Hostname', value };
    const gateways = this.#o.gatewayTunnels?.current;
    if (gateways) return (key) => gatewayAddressing(gateways.get(key));
    const id = this.#o.tunnel.current.id;
    return id ? { type: 'Hostname', value: `${id}.cfargotunnel.com` } : undefined;
  }

  async #reconcile(signal: AbortSignal): Promise<void> {
    let snapshot = this.#o.source.snapshot();
    if (!snapshot.extra?.get('GatewayClass')) return;
    // Certificate Secrets first (fetched once when newly named), so status never reports one missing that exists.
    await this.#o.source.secrets.setReferences(certificateRefs(gatewayObjects(snapshot.extra)), 'gateway');
    snapshot = this.#o.source.snapshot();
    const objects = gatewayObjects(snapshot.extra);
    const secrets = snapshot.secrets as ReadonlyMap<string, V1Secret>;
    const desired = desiredGatewayStatus({
      objects,
      services: snapshot.services as ReadonlyMap<string, V1Service>,
      secret: (ns, name) => secrets.get(`${ns}/${name}`),
      address: this.#address(),
    });
    await this.#write(desired, objects, signal);
  }

  async #write(desired: DesiredStatus, objects: ReturnType<typeof gatewayObjects>, signal: AbortSignal): Promise<void> {
    const now = (this.#o.now ?? (() => new Date()))()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    let failure: unknown;
    /**
     * Writes the status `nextOf` makes of `object` (undefined: nothing to change). On a conflict the cache is behind:
     * the live object is read and `nextOf` decides once more on it (its status may hold newer entries of others).
     */
    const attempt = async <T extends KubernetesObject>(kind: ExtraKind, object: T, nextOf: (o: T) => unknown) => {
      const next = nextOf(object);
      if (next === undefined) return;
      try {
        await this.#put(kind, object, next, signal);
      } catch (err) {
        if (!isConflict((err as Error).cause)) {
          failure ??= err;
          return;
        }
        try {
          const live = await this.#get<T>(kind, object, signal);
          const again = live ? nextOf(live) : undefined;
          if (live && again !== undefined) await this.#put(kind, live, again, signal);
        } catch (retryErr) {
          failure ??= retryErr;
        }
      }
    };
    for (const c of desired.classes) {
      const cls = objects.classes.get(c.name);
      if (!cls) continue;
      await attempt('GatewayClass', cls, (o) => {
        const next = { ...o.status, conditions: merge(o.status?.conditions, c.conditions, now), supportedFeatures: c.supportedFeatures };
        return sameJson(comparableClass(o.status), comparableClass(next)) ? undefined : next;
      });
    }
    for (const g of desired.gateways) {
      const gw = objects.gateways.get(g.key);
      if (!gw) continue;
      await attempt('Gateway', gw, (o) => {
        const current = o.status;
        const listeners = g.listeners.map((l) => ({
          ...l,
          conditions: merge(current?.listeners?.find((x) => x.name === l.name)?.conditions, l.conditions, now),
        }));
        const next = { ...current, addresses: [...g.addresses], conditions: merge(current?.conditions, g.conditions, now), listeners };
        return sameJson(comparable(current), comparable(next)) ? undefined : next;
      });
    }
    const wanted = new Map(desired.routes.map((r) => [`${r.kind}/${r.key}`, r]));
    for (const [kind, map] of [
      ['HTTPRoute', objects.httpRoutes],
      ['GRPCRoute', objects.grpcRoutes],
    ] as const) {
      for (const [key, route] of map) {
        const want = wanted.get(`${kind}/${key}`)?.parents ?? [];
        await attempt(kind, route, (o) => {
          const all: RouteParentStatus[] = Array.isArray(o.status?.parents) ? o.status.parents : [];
          const others = all.filter((p) => p?.controllerName !== CONTROLLER_NAME);
          const ours = all.filter((p) => p?.controllerName === CONTROLLER_NAME);
          if (want.length === 0 && ours.length === 0) return undefined;
          const next = want.slice(0, Math.max(0, MAX_PARENTS - others.length)).map((p) => ({
            parentRef: p.parentRef,
            controllerName: p.controllerName,
            conditions: merge(ours.find((x) => sameJson(normalRef(x.parentRef), normalRef(p.parentRef)))?.conditions, p.conditions, now),
          }));
          return sameJson(ours.map(comparableParent), next.map(comparableParent)) ? undefined : { ...o.status, parents: [...others, ...next] };
        });
      }
    }
    if (failure) throw failure;
  }

  /** The object as the API server has it now; undefined when it is gone or its kind is no longer served. */
  async #get<T extends KubernetesObject>(kind: ExtraKind, object: KubernetesObject, signal: AbortSignal): Promise<T | undefined> {
    const served = this.#o.source.served(kind);
    if (!served) return undefined;
    try {
      return await this.#o.client.get<T>(apiPath(served.groupVersion, served.resource, object.metadata?.namespace, object.metadata?.name ?? ''), { signal });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw kubernetesError(`read ${kind} ${object.metadata?.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata?.name ?? ''}`, err);
    }
  }

  async #put(kind: ExtraKind, object: KubernetesObject, status: unknown, signal: AbortSignal): Promise<void> {
    const served = this.#o.source.served(kind);
    const namespace = object.metadata?.namespace;
    const name = object.metadata?.name ?? '';
    const shown = `${kind} ${namespace ? `${namespace}/` : ''}${name}`;
    if (!served) return;
    try {
      await this.#o.client.put(apiPath(served.groupVersion, served.resource, namespace, name, 'status'), { ...object, status }, { signal });
      this.#o.logger.info({ object: shown }, 'updated Gateway API status');
    } catch (err) {
      throw kubernetesError(`update status of ${shown}`, err);
    }
  }
}

/** A Gateway's own tunnel as its address, or why it has none yet. */
function gatewayAddressing(tunnel: GatewayTunnel | undefined): GatewayAddressing {
  if (tunnel?.problem) return tunnel.problem;
  if (tunnel?.tunnelId) return { address: { type: 'Hostname', value: `${tunnel.tunnelId}.cfargotunnel.com` } };
  return { reason: 'AddressNotAssigned', message: "the Gateway's tunnel is not created yet" };
}

/** `namespace/name` of every Secret that a listener of a Gateway names. */
function certificateRefs(objects: ReturnType<typeof gatewayObjects>): string[] {
  const refs = new Set<string>();
  for (const gw of objects.gateways.values()) {
    for (const l of Array.isArray(gw?.spec?.listeners) ? gw.spec.listeners : []) {
      for (const ref of Array.isArray(l?.tls?.certificateRefs) ? l.tls.certificateRefs : []) {
        if ((ref?.group ?? '') !== '' || (ref?.kind ?? 'Secret') !== 'Secret' || !ref.name) continue;
        refs.add(`${ref.namespace || gw.metadata?.namespace || 'default'}/${ref.name}`);
      }
    }
  }
  return [...refs];
}

/** The desired conditions, keeping `lastTransitionTime` of those whose status did not change. */
export function merge(current: readonly Condition[] | undefined, desired: readonly DesiredCondition[], now: string): Condition[] {
  return desired.map((d) => {
    const before = Array.isArray(current) ? current.find((c) => c?.type === d.type) : undefined;
    return { ...d, lastTransitionTime: before && before.status === d.status && before.lastTransitionTime ? before.lastTransitionTime : now };
  });
}

function comparableClass(status: unknown): unknown {
  const s = (status ?? {}) as { conditions?: unknown; supportedFeatures?: unknown };
  return { conditions: s.conditions ?? [], supportedFeatures: s.supportedFeatures ?? [] };
}

function comparable(status: unknown): unknown {
  const s = (status ?? {}) as { addresses?: unknown; conditions?: unknown; listeners?: unknown };
  return { addresses: s.addresses ?? [], conditions: s.conditions ?? [], listeners: s.listeners ?? [] };
}

function comparableParent(p: RouteParentStatus): unknown {
  return { parentRef: normalRef(p.parentRef), controllerName: p.controllerName, conditions: p.conditions };
}

/** A parentRef with the defaults the CRD schema fills in (group and kind), so written and read copies compare equal. */
export function normalRef(ref: ParentReference | undefined): ParentReference {
  return { group: GATEWAY_GROUP, kind: 'Gateway', ...ref };
}

/** Deep equality of JSON values, ignoring key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
    );
  return v;
}
