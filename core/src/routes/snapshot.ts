import type { KubernetesObject, V1EndpointSlice, V1Ingress, V1IngressClass, V1Secret, V1Service } from '@kubernetes/client-node';

/**
 * The input of a route-table build: the object caches at one moment, as plain maps.
 *
 * Producers: the informer layer (cluster objects) and the local folder source (YAML files). Both hand the
 * builder a `ClusterSnapshot`; the builder never calls the API server itself.
 *
 * Keys are `namespace/name` for namespaced kinds (see {@link snapshotKey}) and the bare name for the
 * cluster-scoped IngressClass. Values are the objects as the Kubernetes client deserialises them (or as
 * YAML parses them: `metadata.creationTimestamp` may be a `Date` or an RFC 3339 string, both are accepted).
 *
 * Contract for producers:
 *  - an object that changed is a new object (or at least carries a new `metadata.resourceVersion`); never
 *    mutate an object in place after handing it over, because the builder caches per object;
 *  - the maps themselves may be reused and mutated between builds (the builder keeps its own record);
 *  - Secrets are carried for the Secret reader; the route builder does not read them (routes only record
 *    which Secrets they reference, in `Route.secretRefs`).
 */
export interface ClusterSnapshot {
  readonly ingresses: ReadonlyMap<string, V1Ingress>;
  /** Keyed by name (IngressClass is cluster-scoped). */
  readonly ingressClasses: ReadonlyMap<string, V1IngressClass>;
  readonly services: ReadonlyMap<string, V1Service>;
  readonly endpointSlices: ReadonlyMap<string, V1EndpointSlice>;
  readonly secrets: ReadonlyMap<string, V1Secret>;
  /**
   * Objects of further kinds (e.g. `HTTPRoute`), keyed by kind then by {@link snapshotKey} (the bare name for
   * cluster-scoped kinds); read by the builder's extra route sources (`routes/sources.ts`). Absent: none.
   */
  readonly extra?: ReadonlyMap<string, ReadonlyMap<string, KubernetesObject>> | undefined;
}

/** The snapshot fields of the core kinds (everything but {@link ClusterSnapshot.extra}). */
export type CoreSnapshotField = Exclude<keyof ClusterSnapshot, 'extra'>;

/**
 * Optional hint for an incremental build: the keys (as in {@link ClusterSnapshot}) that were added, updated
 * or deleted since the previous build of the same builder. When a producer passes it, it must be complete
 * except for updates that left everything routes read alone (status-only writes: see `onlyStatusChanged`);
 * without it the builder finds the changes itself by comparing object identity and `resourceVersion`
 * (linear in the number of objects, about a millisecond per 10,000).
 */
export interface SnapshotChanges {
  readonly ingresses?: Iterable<string> | undefined;
  readonly ingressClasses?: Iterable<string> | undefined;
  readonly services?: Iterable<string> | undefined;
  readonly endpointSlices?: Iterable<string> | undefined;
  readonly secrets?: Iterable<string> | undefined;
  /** Per kind in {@link ClusterSnapshot.extra}, the keys that changed. */
  readonly extra?: ReadonlyMap<string, Iterable<string>> | undefined;
}

/** EndpointSlice label naming the Service a slice belongs to. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** The snapshot key of a namespaced object: `namespace/name`. */
export function snapshotKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** A snapshot with no objects. */
export function emptySnapshot(): ClusterSnapshot {
  return { ingresses: new Map(), ingressClasses: new Map(), services: new Map(), endpointSlices: new Map(), secrets: new Map() };
}

/** A snapshot being filled, with mutable maps. */
export interface MutableClusterSnapshot extends ClusterSnapshot {
  readonly ingresses: Map<string, V1Ingress>;
  readonly ingressClasses: Map<string, V1IngressClass>;
  readonly services: Map<string, V1Service>;
  readonly endpointSlices: Map<string, V1EndpointSlice>;
  readonly secrets: Map<string, V1Secret>;
}

/** A problem with one input object of {@link snapshotFromObjects}; the object was left out. */
export interface SnapshotProblem {
  /** Position of the object in the input. */
  readonly index: number;
  readonly message: string;
}

const KIND_MAP = {
  Ingress: 'ingresses',
  IngressClass: 'ingressClasses',
  Service: 'services',
  EndpointSlice: 'endpointSlices',
  Secret: 'secrets',
} as const;

/**
 * Sorts plain Kubernetes objects (e.g. parsed YAML documents) into a snapshot. Objects of other kinds are
 * skipped silently (a folder may hold Deployments too); objects without `metadata.name` or with a duplicate
 * key are reported and left out. A missing namespace means `default`. The objects are stored as they are
 * (not copied), so callers must not mutate them afterwards.
 */
export function snapshotFromObjects(objects: Iterable<unknown>): { snapshot: MutableClusterSnapshot; problems: SnapshotProblem[] } {
  const snapshot: MutableClusterSnapshot = {
    ingresses: new Map(),
    ingressClasses: new Map(),
    services: new Map(),
    endpointSlices: new Map(),
    secrets: new Map(),
  };
  const problems: SnapshotProblem[] = [];
  let index = -1;
  for (const object of objects) {
    index++;
    if (typeof object !== 'object' || object === null) continue;
    const kind = (object as { kind?: unknown }).kind;
    if (typeof kind !== 'string' || !Object.hasOwn(KIND_MAP, kind)) continue;
    const metadata = (object as { metadata?: { name?: unknown; namespace?: unknown } }).metadata;
    const name = metadata?.name;
    if (typeof name !== 'string' || name === '') {
      problems.push({ index, message: `${kind} #${index} has no metadata.name; skipped` });
      continue;
    }
    const namespace = typeof metadata?.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
    const key = kind === 'IngressClass' ? name : snapshotKey(namespace, name);
    const map = snapshot[KIND_MAP[kind as keyof typeof KIND_MAP]] as Map<string, unknown>;
    if (map.has(key)) {
      problems.push({ index, message: `${kind} ${key} appears twice; the later copy (#${index}) is skipped` });
      continue;
    }
    map.set(key, object);
  }
  return { snapshot, problems };
}
