import {
  CoreV1Api,
  DiscoveryV1Api,
  NetworkingV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1EndpointSlice,
  type V1Ingress,
  type V1IngressClass,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
// The model (de)serializer is not re-exported from the package root; watch events arrive as plain JSON and are
// turned into the same typed shape the list calls return (e.g. `creationTimestamp` as a Date).
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';

/** The kinds Warren watches. */
export type WatchedKind = 'Ingress' | 'IngressClass' | 'Service' | 'EndpointSlice' | 'Secret';

/** Options for one page of a list call. */
export interface ListPage {
  readonly namespace?: string | undefined;
  readonly limit: number;
  readonly continueToken?: string | undefined;
  readonly fieldSelector?: string | undefined;
}

/** How to list, watch and deserialize one kind. */
export interface KindSpec<T extends KubernetesObject> {
  readonly kind: WatchedKind;
  /** Model name for the deserializer, e.g. `V1Ingress`. */
  readonly model: string;
  readonly namespaced: boolean;
  /** Field selector applied to list and watch (e.g. to skip Secret types that can never be referenced). */
  readonly fieldSelector?: string | undefined;
  /** URL path for watch requests, cluster-wide or in one namespace. */
  watchPath(namespace?: string): string;
  /** One page of a list call. */
  list(page: ListPage): Promise<KubernetesListObject<T>>;
  /** Turns a plain JSON object from a watch event into the typed shape. */
  deserialize(raw: unknown): T;
}

/** The annotation `kubectl apply` keeps: a full copy of the object as JSON, never read by Warren. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops what Warren never reads from an object before it is cached: `metadata.managedFields` and the
 * last-applied-configuration annotation. Together they are often larger than the rest of the object. Objects
 * written back (status updates, finalizer patches) do not need them: an update without managedFields keeps the
 * stored ones, and status updates ignore metadata. Mutates and returns `obj`.
 */
export function trimForCache<T extends KubernetesObject>(obj: T): T {
  const meta = obj.metadata;
  if (meta) {
    if (meta.managedFields !== undefined) delete meta.managedFields;
    if (meta.annotations && LAST_APPLIED_ANNOTATION in meta.annotations) {
      const { [LAST_APPLIED_ANNOTATION]: _dropped, ...rest } = meta.annotations;
      meta.annotations = rest;
    }
  }
  return obj;
}

/** Snapshot/cache key of an object: `namespace/name`, or the name for cluster-scoped kinds. */
export function objectKey(obj: KubernetesObject, namespaced: boolean): string {
  const name = obj.metadata?.name ?? '';
  return namespaced ? `${obj.metadata?.namespace ?? ''}/${name}` : name;
}

/**
 * Secret types that never hold routing material (CA bundles, client certificates) and can be large and numerous:
 * Helm release records and legacy service-account tokens. Skipping them server-side keeps relists cheap.
 */
export const SECRET_FIELD_SELECTOR = 'type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token';

/** The specs for every watched kind, bound to one client configuration. */
export function kindSpecs(kc: KubeConfig): {
  Ingress: KindSpec<V1Ingress>;
  IngressClass: KindSpec<V1IngressClass>;
  Service: KindSpec<V1Service>;
  EndpointSlice: KindSpec<V1EndpointSlice>;
  Secret: KindSpec<V1Secret>;
} {
  const core = kc.makeApiClient(CoreV1Api);
  const networking = kc.makeApiClient(NetworkingV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const q = (p: ListPage) => ({ limit: p.limit, _continue: p.continueToken, fieldSelector: p.fieldSelector });
  const des = <T>(model: string) => (raw: unknown) => ObjectSerializer.deserialize(raw, model) as T;
  const path = (base: string, resource: string) => (ns?: string) => (ns ? `${base}/namespaces/${encodeURIComponent(ns)}/${resource}` : `${base}/${resource}`);
  return {
    Ingress: {
      kind: 'Ingress',
      model: 'V1Ingress',
      namespaced: true,
      watchPath: path('/apis/networking.k8s.io/v1', 'ingresses'),
      list: (p) => (p.namespace ? networking.listNamespacedIngress({ namespace: p.namespace, ...q(p) }) : networking.listIngressForAllNamespaces(q(p))),
      deserialize: des<V1Ingress>('V1Ingress'),
    },
    IngressClass: {
      kind: 'IngressClass',
      model: 'V1IngressClass',
      namespaced: false,
      watchPath: () => '/apis/networking.k8s.io/v1/ingressclasses',
      list: (p) => networking.listIngressClass(q(p)),
      deserialize: des<V1IngressClass>('V1IngressClass'),
    },
    Service: {
      kind: 'Service',
      model: 'V1Service',
      namespaced: true,
      watchPath: path('/api/v1', 'services'),
      list: (p) => (p.namespace ? core.listNamespacedService({ namespace: p.namespace, ...q(p) }) : core.listServiceForAllNamespaces(q(p))),
      deserialize: des<V1Service>('V1Service'),
    },
    EndpointSlice: {
      kind: 'EndpointSlice',
      model: 'V1EndpointSlice',
      namespaced: true,
      watchPath: path('/apis/discovery.k8s.io/v1', 'endpointslices'),
      list: (p) =>
        p.namespace ? discovery.listNamespacedEndpointSlice({ namespace: p.namespace, ...q(p) }) : discovery.listEndpointSliceForAllNamespaces(q(p)),
      deserialize: des<V1EndpointSlice>('V1EndpointSlice'),
    },
    Secret: {
      kind: 'Secret',
      model: 'V1Secret',
      namespaced: true,
      fieldSelector: SECRET_FIELD_SELECTOR,
      watchPath: path('/api/v1', 'secrets'),
      list: (p) => (p.namespace ? core.listNamespacedSecret({ namespace: p.namespace, ...q(p) }) : core.listSecretForAllNamespaces(q(p))),
      deserialize: des<V1Secret>('V1Secret'),
    },
  };
}
