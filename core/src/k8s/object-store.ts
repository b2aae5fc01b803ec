import type { KubernetesObject } from '@kubernetes/client-node';
import { LayeredMap, LayeredMapView } from '../routes/layered-map.js';

/**
 * What happened to one key in a store update. `status-only` is an update that left the spec, annotations, labels
 * and deletion state alone (a status write, a finalizer or managed-fields change): routes cannot depend on it.
 */
export type StoreChange = 'added' | 'updated' | 'status-only' | 'deleted';

/**
 * True when `next` differs from `old` only outside what routing reads: same `metadata.generation` (the API server
 * bumps it on every spec change and on deletion), same annotations, labels and deletion timestamp.
 */
export function onlyStatusChanged(old: KubernetesObject, next: KubernetesObject): boolean {
  const a = old.metadata;
  const b = next.metadata;
  if (a?.generation === undefined || a.generation !== b?.generation) return false;
  return sameRecord(a.annotations, b.annotations) && sameRecord(a.labels, b.labels) && String(a.deletionTimestamp ?? '') === String(b.deletionTimestamp ?? '');
}

function sameRecord(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ka = a ? Object.keys(a) : [];
  const kb = b ? Object.keys(b) : [];
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (a![k] !== b?.[k]) return false;
  return true;
}

/**
 * One kind's object cache, keyed like `ClusterSnapshot` (`namespace/name`, or the name for cluster-scoped kinds).
 *
 * Readers never see a half-applied state:
 *  - every write (a watch event, or a whole relist applied as one diff) is synchronous, so no reader runs in the
 *    middle of it;
 *  - {@link snapshot} hands out a map that is never mutated afterwards (a version of a layered map: made lazily,
 *    once per batch of writes, in proportion to the writes, and reused while nothing changes).
 *
 * Objects are stored as received and must be treated as immutable; a changed object is always a new object.
 */
export class ObjectStore<T extends KubernetesObject> {
  readonly #statusOnly: ((old: T, next: T) => boolean) | undefined;
  readonly #live = new Map<string, T>();
  /** The contents as of the last {@link snapshot}, shared with the snapshots handed out (never mutated). */
  #frozen = LayeredMap.empty<string, T>();
  #view: ReadonlyMap<string, T> | undefined = new LayeredMapView(this.#frozen);
  /** Keys written since the last {@link snapshot}. */
  readonly #unfrozen = new Set<string>();
  /** Keys changed since the last {@link takeChanges}: true once a change other than status-only touched the key. */
  readonly #changed = new Map<string, boolean>();

  /** @param statusOnly classifies updates as `status-only` (e.g. {@link onlyStatusChanged} for kinds with a status). */
  constructor(statusOnly?: (old: T, next: T) => boolean) {
    this.#statusOnly = statusOnly;
  }

  get size(): number {
    return this.#live.size;
  }

  get(key: string): T | undefined {
    return this.#live.get(key);
  }

  has(key: string): boolean {
    return this.#live.has(key);
  }

  keys(): IterableIterator<string> {
    return this.#live.keys();
  }

  /** Inserts or replaces `key`; returns what changed, or undefined when the object is the same version. */
  upsert(key: string, obj: T): StoreChange | undefined {
    const old = this.#live.get(key);
    if (old !== undefined && sameVersion(old, obj)) return undefined;
    const change = old === undefined ? 'added' : this.#statusOnly?.(old, obj) ? 'status-only' : 'updated';
    this.#live.set(key, change === 'status-only' ? shareUnchanged(old!, obj) : obj);
    this.#touch(key, change !== 'status-only');
    return change;
  }

  /** Removes `key`; returns 'deleted' when it was present. */
  delete(key: string): StoreChange | undefined {
    if (!this.#live.delete(key)) return undefined;
    this.#touch(key, true);
    return 'deleted';
  }

  /**
   * Replaces every object whose key satisfies `inScope` with `objects` (a relist of that scope), as one
   * synchronous diff. Returns the changed keys with what happened to each.
   */
  replace(objects: ReadonlyMap<string, T>, inScope: (key: string) => boolean = () => true): Map<string, StoreChange> {
    const changes = new Map<string, StoreChange>();
    for (const key of [...this.#live.keys()]) {
      if (inScope(key) && !objects.has(key)) {
        this.#live.delete(key);
        this.#touch(key, true);
        changes.set(key, 'deleted');
      }
    }
    for (const [key, obj] of objects) {
      const change = this.upsert(key, obj);
      if (change) changes.set(key, change);
    }
    return changes;
  }

  /**
   * An immutable view of the current contents. Costs what was written since the last call (a new version of a
   * layered map), not a copy of the cache; nothing when nothing changed.
   */
  snapshot(): ReadonlyMap<string, T> {
    if (this.#view !== undefined) return this.#view;
    const changes = new Map<string, T | undefined>();
    for (const key of this.#unfrozen) changes.set(key, this.#live.get(key));
    this.#unfrozen.clear();
    this.#frozen = this.#frozen.with(changes);
    return (this.#view = new LayeredMapView(this.#frozen));
  }

  /**
   * Keys changed since the previous call (for incremental route builds), then forgets them. Keys whose every
   * change was status-only are left out: routes cannot depend on those, and after Warren's own status writes
   * (one per Ingress at start-up) listing them would make the next build recompile every Ingress.
   */
  takeChanges(): string[] {
    const keys: string[] = [];
    for (const [key, routing] of this.#changed) if (routing) keys.push(key);
    this.#changed.clear();
    return keys;
  }

  #touch(key: string, routing: boolean): void {
    this.#view = undefined;
    this.#unfrozen.add(key);
    if (routing || !this.#changed.has(key)) this.#changed.set(key, routing);
  }
}

/**
 * `next` (a status-only update of `old`, not yet handed out) with what did not change taken from `old`: the spec,
 * annotations, labels and identity strings. Route builds keep using `old` until a routing change of the key (status
 * writes are not in their change hint), so without this every Ingress would be held twice after Warren writes its
 * status: about 2 KB per Ingress with five paths.
 */
function shareUnchanged<T extends KubernetesObject>(old: T, next: T): T {
  const was = old as T & { spec?: unknown };
  const now = next as T & { spec?: unknown };
  if (was.spec !== undefined && now.spec !== undefined) now.spec = was.spec;
  const a = old.metadata;
  const b = next.metadata;
  if (a && b) {
    // Equal records (onlyStatusChanged); an empty record is not replaced by an absent one.
    if (b.annotations && a.annotations) b.annotations = a.annotations;
    if (b.labels && a.labels) b.labels = a.labels;
    if (b.name === a.name) b.name = a.name;
    if (b.namespace === a.namespace) b.namespace = a.namespace;
    if (b.uid === a.uid) b.uid = a.uid;
    if (String(b.creationTimestamp) === String(a.creationTimestamp)) b.creationTimestamp = a.creationTimestamp;
  }
  return next;
}

function sameVersion(a: KubernetesObject, b: KubernetesObject): boolean {
  const va = a.metadata?.resourceVersion;
  return va !== undefined && va !== '' && va === b.metadata?.resourceVersion;
}
