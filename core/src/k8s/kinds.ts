import type { KubernetesListObject, KubernetesObject, V1EndpointSlice, V1Ingress, V1IngressClass, V1Secret, V1Service } from '@kubernetes/client-node';
import type { GatewayKind } from '../gateway/types.js';
import { apiPath, type KubeClient } from './api/client.js';

/** The kinds Warren always watches. */
export type CoreKind = 'Ingress' | 'IngressClass' | 'Service' | 'EndpointSlice' | 'Secret';
/**
 * Kinds watched only when served and enabled: the Gateway API kinds, Namespaces (their labels select routes) and,
 * with BackendTLSPolicy, the ConfigMaps policies name as CA bundles (only those are kept).
 */
export type ExtraKind = GatewayKind | 'Namespace' | 'ConfigMap';
/** The kinds Warren watches. */
export type WatchedKind = CoreKind | ExtraKind;

/** Options for one page of a list call. */
export interface ListPage {
  readonly namespace?: string | undefined;
  readonly limit: number;
  readonly continueToken?: string | undefined;
  readonly fieldSelector?: string | undefined;
}

/**
 * How to list and watch one kind. Objects are the JSON the API server sent, typed with the client-node model
 * interfaces; their timestamp fields hold RFC 3339 strings, not Dates (route code accepts both).
 */
export interface KindSpec<T extends KubernetesObject> {
  readonly kind: WatchedKind;
  readonly namespaced: boolean;
  /** Field selector applied to list and watch (e.g. to skip Secret types that can never be referenced). */
  readonly fieldSelector?: string | undefined;
  /** Upper bound on objects per list page, for kinds whose objects can be large (Secrets hold up to 1 MiB). */
  readonly maxPageSize?: number | undefined;
  /** URL path for watch requests, cluster-wide or in one namespace. */
  watchPath(namespace?: string): string;
  /** One page of a list call. */
  list(page: ListPage): Promise<KubernetesListObject<T>>;
}

/** The annotation `kubectl apply` keeps: a full copy of the object as JSON, never read by Warren. */
const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops what Warren never reads from an object before it is cached: `metadata.managedFields` and the
 * last-applied-configuration annotation. Together they are often larger than the rest of the object. Objects
 * written back (status updates, finalizer patches) do not need them: an update without managedFields keeps the
 * stored ones, and status updates ignore metadata. Replaces `obj.metadata` and returns `obj`.
 *
 * The metadata is rebuilt without the field rather than `delete`d from: a deletion turns the object into a hash
 * table, about 400 bytes more per cached object (10 MB of heap at 10,000 Ingresses, docs/benchmarks.md).
 */
export function trimForCache<T extends KubernetesObject>(obj: T): T {
  const meta = obj.metadata;
  if (meta) {
    const { managedFields: _fields, ...rest } = meta;
    if (meta.annotations && LAST_APPLIED_ANNOTATION in meta.annotations) {
      const { [LAST_APPLIED_ANNOTATION]: _dropped, ...annotations } = meta.annotations;
      rest.annotations = annotations;
    }
    obj.metadata = rest;
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
const SECRET_FIELD_SELECTOR = 'type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token';

/** Secrets per list page: a page is parsed whole, and Secrets can be large. */
export const SECRET_PAGE_SIZE = 100;

/** The spec of a kind found by discovery (or a fixed core kind), bound to one client. */
export function kindSpec<T extends KubernetesObject>(
  client: KubeClient,
  kind: WatchedKind,
  groupVersion: string,
  resource: string,
  namespaced: boolean,
  fieldSelector?: string,
  maxPageSize?: number,
): KindSpec<T> {
  const watchPath = (ns?: string): string => apiPath(groupVersion, resource, namespaced ? ns : undefined);
  return {
    kind,
    namespaced,
    fieldSelector,
    maxPageSize,
    watchPath,
    list: (p) => client.get<KubernetesListObject<T>>(watchPath(p.namespace), { query: { limit: p.limit, continue: p.continueToken, fieldSelector: p.fieldSelector } }),
  };
}

/** The specs for every core kind, bound to one client. */
export function kindSpecs(client: KubeClient): {
  Ingress: KindSpec<V1Ingress>;
  IngressClass: KindSpec<V1IngressClass>;
  Service: KindSpec<V1Service>;
  EndpointSlice: KindSpec<V1EndpointSlice>;
  Secret: KindSpec<V1Secret>;
} {
  const spec = <T extends KubernetesObject>(kind: CoreKind, groupVersion: string, resource: string, namespaced: boolean, fieldSelector?: string, maxPageSize?: number) =>
    kindSpec<T>(client, kind, groupVersion, resource, namespaced, fieldSelector, maxPageSize);
  return {
    Ingress: spec<V1Ingress>('Ingress', 'networking.k8s.io/v1', 'ingresses', true),
    IngressClass: spec<V1IngressClass>('IngressClass', 'networking.k8s.io/v1', 'ingressclasses', false),
    Service: spec<V1Service>('Service', 'v1', 'services', true),
    EndpointSlice: spec<V1EndpointSlice>('EndpointSlice', 'discovery.k8s.io/v1', 'endpointslices', true),
    // Every Secret passes through a list page before the cache drops the unreferenced ones: bound the page.
    Secret: spec<V1Secret>('Secret', 'v1', 'secrets', true, SECRET_FIELD_SELECTOR, SECRET_PAGE_SIZE),
  };
}
