import type { GatewayRef, GatewaySet } from '../cloudflare/gateway-tunnels.js';
import type { WatchedKind } from '../k8s/kinds.js';
import type { ClusterSnapshot } from '../routes/snapshot.js';
import { classProblem, isOwnClass } from './listeners.js';
import { creationTimeOf, gatewayObjects, identityOf } from './objects.js';

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
  onChange(listener: (kind: WatchedKind) => void): () => void;
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
