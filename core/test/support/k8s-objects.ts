/**
 * Builders for the Kubernetes objects control-plane tests create on the real apiserver. EndpointSlices point at
 * Warren's test hosts (198.18.0.x, which exist only inside the network namespace of scripts/test.sh); loopback
 * addresses are rejected by API validation and ClusterIPs are never dialled.
 */
import type { V1EndpointSlice, V1Ingress, V1IngressClass, V1Service } from '@kubernetes/client-node';
import type { AdminClients } from './apiserver.js';

export const CLASS_NAME = 'cloudflare-tunnel';
export const CONTROLLER_VALUE = 'warren.dev/ingress-controller';

/** A test-host address: `testHost(2)` → `198.18.0.2` (2–41 exist in the test namespace). */
export function testHost(n: number): string {
  if (n < 2 || n > 41) throw new RangeError(`test host ${n} is outside 198.18.0.2–198.18.0.41`);
  return `198.18.0.${n}`;
}

export function ingressClass(name = CLASS_NAME, options: { isDefault?: boolean; controller?: string } = {}): V1IngressClass {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IngressClass',
    metadata: { name, annotations: options.isDefault ? { 'ingressclass.kubernetes.io/is-default-class': 'true' } : {} },
    spec: { controller: options.controller ?? CONTROLLER_VALUE },
  };
}

export interface PathSpec {
  readonly path?: string;
  readonly pathType?: string;
  readonly service: string;
  readonly port: number | string;
}

export interface IngressSpecInput {
  /** `undefined` → CLASS_NAME; `null` → no class at all. */
  readonly className?: string | null;
  readonly rules?: ReadonlyArray<{ readonly host?: string; readonly paths: readonly PathSpec[] }>;
  readonly defaultBackend?: { readonly service: string; readonly port: number | string };
  readonly annotations?: Readonly<Record<string, string>>;
  readonly tls?: ReadonlyArray<{ readonly hosts: string[]; readonly secretName?: string }>;
}

function backend(service: string, port: number | string) {
  return { service: { name: service, port: typeof port === 'number' ? { number: port } : { name: port } } };
}

export function ingress(namespace: string, name: string, spec: IngressSpecInput): V1Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace, annotations: { ...(spec.annotations ?? {}) } },
    spec: {
      ...(spec.className === null ? {} : { ingressClassName: spec.className ?? CLASS_NAME }),
      ...(spec.defaultBackend ? { defaultBackend: backend(spec.defaultBackend.service, spec.defaultBackend.port) } : {}),
      ...(spec.tls ? { tls: spec.tls.map((t) => ({ ...t })) } : {}),
      rules: (spec.rules ?? []).map((r) => ({
        ...(r.host ? { host: r.host } : {}),
        http: { paths: r.paths.map((p) => ({ path: p.path ?? '/', pathType: p.pathType ?? 'Prefix', backend: backend(p.service, p.port) })) },
      })),
    },
  };
}

export function service(namespace: string, name: string, ports: ReadonlyArray<{ port: number; name?: string; targetPort?: number; appProtocol?: string }>): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: {
      ports: ports.map((p) => ({ port: p.port, name: p.name, targetPort: p.targetPort ?? p.port, protocol: 'TCP', appProtocol: p.appProtocol })),
    },
  };
}

/** An EndpointSlice for `serviceName` listing `addresses` as ready endpoints on `port` (named `portName`). */
export function endpointSlice(
  namespace: string,
  serviceName: string,
  addresses: readonly string[],
  port: number,
  options: { portName?: string; sliceName?: string; notReady?: readonly string[] } = {},
): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: options.sliceName ?? `${serviceName}-slice`,
      namespace,
      labels: { 'kubernetes.io/service-name': serviceName, 'endpointslice.kubernetes.io/managed-by': 'warren-test-harness' },
    },
    addressType: 'IPv4',
    endpoints: [
      ...addresses.map((a) => ({ addresses: [a], conditions: { ready: true, serving: true, terminating: false } })),
      ...(options.notReady ?? []).map((a) => ({ addresses: [a], conditions: { ready: false, serving: false, terminating: false } })),
    ],
    ports: [{ name: options.portName ?? '', port, protocol: 'TCP' }],
  };
}

/** Creates a Service (one port) and its EndpointSlice in one go. */
export async function createBackend(
  admin: AdminClients,
  namespace: string,
  name: string,
  addresses: readonly string[],
  options: { port?: number; targetPort?: number; portName?: string } = {},
): Promise<void> {
  const port = options.port ?? 80;
  const targetPort = options.targetPort ?? 8080;
  await admin.core.createNamespacedService({ namespace, body: service(namespace, name, [{ port, targetPort, name: options.portName }]) });
  await admin.discovery.createNamespacedEndpointSlice({
    namespace,
    body: endpointSlice(namespace, name, addresses, targetPort, { portName: options.portName ?? '' }),
  });
}

/** Creates the IngressClass unless it exists. */
export async function ensureIngressClass(admin: AdminClients, cls: V1IngressClass = ingressClass()): Promise<void> {
  try {
    await admin.networking.createIngressClass({ body: cls });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}
