/**
 * What the conformance run sets up around Warren in the apiserver: the standard Gateway API CRDs, Warren's
 * GatewayClass, and the certificates of Gateway HTTPS listeners for the edge simulator's TLS entrance.
 */
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import type { EyeballCertificate } from '../../../src/edge-simulator/index.js';
import { waitUntil } from '../../e2e/support/children.js';

const GROUP = 'gateway.networking.k8s.io';

/** The controllerName Warren's GatewayClass carries. */
export const WARREN_CONTROLLER_NAME = 'warren.dev/gateway-controller';

/**
 * Creates the objects of the CRD bundle (the CRDs, and the ValidatingAdmissionPolicy the standard channel ships
 * with them) and waits until each CRD is Established (bounded).
 */
export async function installCrds(kc: KubeConfig, bundle: readonly KubernetesObject[], timeoutMs = 30_000): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const extensions = kc.makeApiClient(ApiextensionsV1Api);
  for (const object of bundle) await objects.create(object);
  const crds = bundle.filter((o) => o.kind === 'CustomResourceDefinition');
  await waitUntil(
    `${crds.length} Gateway API CRDs Established`,
    async () => {
      const list = await extensions.listCustomResourceDefinition();
      const established = list.items.filter((c) => c.spec.group === GROUP && c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True'));
      return established.length >= crds.length;
    },
    timeoutMs,
  );
}

/** Creates a GatewayClass for Warren's controller. */
export async function createGatewayClass(kc: KubeConfig, name: string): Promise<void> {
  await KubernetesObjectApi.makeApiClient(kc).create({
    apiVersion: `${GROUP}/v1`,
    kind: 'GatewayClass',
    metadata: { name },
    spec: { controllerName: WARREN_CONTROLLER_NAME },
  } as KubernetesObject);
}

interface Listener {
  readonly hostname?: string;
  readonly port: number;
  readonly protocol: string;
  readonly tls?: { readonly certificateRefs?: ReadonlyArray<{ readonly name: string; readonly namespace?: string; readonly kind?: string; readonly group?: string }> };
}

interface Gateway {
  readonly metadata: { readonly namespace: string; readonly name: string };
  readonly spec: { readonly gatewayClassName: string; readonly listeners: readonly Listener[] };
}

/** How well a listener hostname matches a server name: exact 3, wildcard 2 (longer suffixes first), none 1, no match 0. */
function matchRank(listenerHostname: string | undefined, serverName: string): number {
  if (!listenerHostname) return 1;
  const host = listenerHostname.toLowerCase();
  if (host === serverName) return 3;
  if (host.startsWith('*.') && serverName.endsWith(host.slice(1)) && serverName.length > host.length - 1) return 2 + host.length / 1_000;
  return 0;
}

/**
 * The certificate for a TLS server name, as Cloudflare's edge would hold it for the zone: from the best-matching
 * HTTPS listener on `port` of the Gateways of `gatewayClass`, its first certificateRef (a Secret's `tls.crt` and
 * `tls.key`). Read from the apiserver on each handshake, so certificates the suite creates mid-run are served.
 * Whether the listener may use that Secret is Warren's to judge (its status); the edge only presents it.
 */
export function listenerCertificates(kc: KubeConfig, gatewayClass: string, port: number): (serverName: string | undefined) => Promise<EyeballCertificate | undefined> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  return async (serverName) => {
    if (!serverName) return undefined;
    const name = serverName.toLowerCase();
    const list = (await custom.listClusterCustomObject({ group: GROUP, version: 'v1', plural: 'gateways' })) as { items: Gateway[] };
    let best: { rank: number; namespace: string; secret: string } | undefined;
    for (const gateway of list.items) {
      if (gateway.spec.gatewayClassName !== gatewayClass) continue;
      for (const listener of gateway.spec.listeners) {
        const ref = listener.tls?.certificateRefs?.[0];
        if (listener.protocol !== 'HTTPS' || listener.port !== port || !ref || (ref.kind ?? 'Secret') !== 'Secret' || (ref.group ?? '') !== '') continue;
        const rank = matchRank(listener.hostname, name);
        if (rank > (best?.rank ?? 0)) best = { rank, namespace: ref.namespace ?? gateway.metadata.namespace, secret: ref.name };
      }
    }
    if (!best) return undefined;
    try {
      const secret = await core.readNamespacedSecret({ namespace: best.namespace, name: best.secret });
      const cert = secret.data?.['tls.crt'];
      const key = secret.data?.['tls.key'];
      if (!cert || !key) return undefined;
      return { certPem: Buffer.from(cert, 'base64').toString(), keyPem: Buffer.from(key, 'base64').toString() };
    } catch {
      return undefined;
    }
  };
}
