import type { ClusterSnapshot } from '../routes/snapshot.js';
import { classProblem, isOwnClass } from './listeners.js';
import { creationTimeOf, gatewayObjects, identityOf } from './objects.js';

/** One of Warren's Gateways, as the Gateway tunnels part needs it. */
export interface GatewayRef {
  /** `namespace/name`. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string | undefined;
  /** Creation time, ms since epoch (Infinity when unknown): older Gateways get tunnels first. */
  readonly created: number;
}

/** Where the Gateways come from (the informers, in Kubernetes mode). */
export interface GatewaySet {
  /** Resolves once the caches hold every Gateway. */
  waitForSync(signal: AbortSignal): Promise<void>;
  /** The Gateways of Warren's accepted GatewayClasses; undefined while the Gateway kind is not watched (CRDs missing). */
  gateways(): readonly GatewayRef[] | undefined;
  /** Calls `listener` when Gateways or GatewayClasses may have changed. */
  onChange(listener: () => void): () => void;
}

/** The Gateways of Warren's accepted GatewayClasses in a snapshot; undefined while the Gateway kind is not watched. */
export function warrenGateways(snapshot: ClusterSnapshot): GatewayRef[] | undefined {
  if (!snapshot.extra?.get('Gateway')) return undefined;
  const objects = gatewayObjects(snapshot.extra);
  const out: GatewayRef[] = [];
  for (const [key, gateway] of objects.gateways) {
    const cls = objects.classes.get(gateway?.spec?.gatewayClassName ?? '');
    if (!cls || !isOwnClass(cls) || classProblem(cls)) continue;
    const { namespace, name } = identityOf(key, gateway);
    const uid = gateway.metadata?.uid;
    out.push({ key, namespace, name, uid: typeof uid === 'string' ? uid : undefined, created: creationTimeOf(gateway) });
  }
  return out;
}

/** What {@link informerGatewaySet} reads (implemented by `ClusterInformers`). */
export interface GatewayInformers {
  snapshot(): ClusterSnapshot;
  waitForSync(signal?: AbortSignal): Promise<void>;
  onChange(listener: (kind: string) => void): () => void;
}

/** The Gateways of Warren's classes as the informers see them. */
export function informerGatewaySet(informers: GatewayInformers): GatewaySet {
  return {
    waitForSync: (signal) => informers.waitForSync(signal),
    gateways: () => warrenGateways(informers.snapshot()),
    onChange: (listener) =>
      informers.onChange((kind) => {
        if (kind === 'Gateway' || kind === 'GatewayClass') listener();
      }),
  };
}
