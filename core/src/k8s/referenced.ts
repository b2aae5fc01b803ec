import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiPath, type KubeClient } from './api/client.js';
import { apiFailure, isNotFound } from './api-errors.js';
import { trimForCache } from './kinds.js';
import type { ObjectStore, StoreChange } from './object-store.js';

export interface ReferencedCacheOptions<T extends KubernetesObject> {
  readonly store: ObjectStore<T>;
  readonly client: KubeClient;
  readonly logger: Logger;
  /** The kind as logs name it (`Secret`, `ConfigMap`) and its core/v1 resource (`secrets`, `configmaps`). */
  readonly kind: string;
  readonly resource: string;
  /** Applies store changes made outside the watch (fetches of newly referenced objects, dropped references). */
  readonly onStoreChange: (changes: ReadonlyMap<string, StoreChange>) => void;
  /** Namespaces Warren may read; a reference outside them is never fetched. Empty: all. */
  readonly namespaces: readonly string[];
}

/**
 * A core/v1 kind of which only the objects something references are kept in memory (Secrets, ConfigMaps): the
 * watch drops every other object as it arrives ({@link keep} is the reflector's filter). When a reference appears,
 * the object is fetched once with a GET (the watch keeps it current from then on); when it disappears, the object
 * is dropped. References are kept per owner (e.g. the route table, Gateway listeners); the cache holds the union.
 */
export class ReferencedCache<T extends KubernetesObject> {
  protected readonly o: ReferencedCacheOptions<T>;
  #referenced = new Set<string>();
  readonly #owners = new Map<string, ReadonlySet<string>>();
  /** Keys being fetched; `deleted` is set when the watch reports a deletion meanwhile. */
  readonly #pending = new Map<string, { deleted: boolean; done: Promise<void> }>();
  /** Referenced keys known not to exist (or not to be readable): a miss of `get` that is real. */
  readonly #absent = new Set<string>();
  readonly #listeners = new Set<(namespace: string, name: string) => void>();

  constructor(options: ReferencedCacheOptions<T>) {
    this.o = options;
  }

  /** The reflector's filter: keep an object only while something references it. */
  readonly keep = (key: string): boolean => this.#referenced.has(key);

  /** Keys currently referenced. */
  get references(): ReadonlySet<string> {
    return this.#referenced;
  }

  /**
   * Sets the objects `owner` references (`namespace/name`); the cache keeps the union over all owners. Drops
   * objects no longer referenced and fetches newly referenced ones. Resolves when the fetches are done (failures
   * are logged; the watch delivers the object when it changes, and the next reference update retries).
   */
  async setReferences(refs: Iterable<string>, owner = 'routes'): Promise<void> {
    this.#owners.set(owner, new Set(refs));
    const next = new Set<string>();
    for (const set of this.#owners.values()) for (const key of set) next.add(key);
    const added = [...next].filter((k) => !this.#referenced.has(k));
    const removed = [...this.#referenced].filter((k) => !next.has(k));
    this.#referenced = next;
    for (const key of removed) this.#absent.delete(key);
    const dropped = new Map<string, StoreChange>();
    for (const key of removed) if (this.o.store.delete(key)) dropped.set(key, 'deleted');
    if (dropped.size) this.o.onStoreChange(dropped);
    const missing = [...next].filter((k) => !this.o.store.has(k) && !this.#pending.has(k) && this.#allowed(k));
    const fetches = [...new Set([...added, ...missing])].filter((k) => this.#allowed(k)).map((k) => this.#pending.get(k)?.done ?? this.#fetch(k));
    if (fetches.length) await Promise.all(fetches);
  }

  /** Resolves once every fetch in flight has settled. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending.values()].map((p) => p.done));
  }

  /** Called with every change the reflector (or a fetch) applied; tells listeners about referenced objects. */
  notify(changes: ReadonlyMap<string, StoreChange>): void {
    for (const [key, change] of changes) {
      if (!this.#referenced.has(key)) continue;
      if (change === 'deleted') this.#absent.add(key);
      else this.#absent.delete(key);
      const [namespace, name] = splitKey(key);
      for (const listener of this.#listeners) {
        try {
          listener(namespace, name);
        } catch (err) {
          this.o.logger.error({ err: apiFailure(err), [this.o.kind.toLowerCase()]: key }, `a ${this.o.kind} change listener threw`);
        }
      }
    }
  }

  /** The reflector's observer: records a deletion seen by the watch for a key whose fetch is in flight. */
  readonly observe = (type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string): void => {
    const pending = this.#pending.get(key);
    if (pending && type === 'DELETED') pending.deleted = true;
  };

  /** The cached object, if referenced and present. */
  object(namespace: string, name: string): T | undefined {
    return this.o.store.get(`${namespace}/${name}`);
  }

  /** True while an object's fetch has not settled: it is neither in the cache nor known to be missing. */
  loading(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    return !this.o.store.has(key) && !this.#absent.has(key) && this.#allowed(key);
  }

  onChange(listener: (namespace: string, name: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #allowed(key: string): boolean {
    const ns = splitKey(key)[0];
    return this.o.namespaces.length === 0 || this.o.namespaces.includes(ns);
  }

  #fetch(key: string): Promise<void> {
    const state = { deleted: false, done: Promise.resolve() };
    state.done = this.#get(key, state);
    this.#pending.set(key, state);
    return state.done;
  }

  async #get(key: string, state: { deleted: boolean }): Promise<void> {
    const [namespace, name] = splitKey(key);
    // Registered as pending before the request goes out.
    await Promise.resolve();
    try {
      const object = trimForCache(await this.o.client.get<T>(apiPath('v1', this.o.resource, namespace, name)));
      // The watch may have delivered a newer version, or a deletion, while the GET was in flight.
      if (state.deleted || this.o.store.has(key) || !this.#referenced.has(key)) return;
      const change = this.o.store.upsert(key, object);
      if (change) this.o.onStoreChange(new Map([[key, change]]));
    } catch (err) {
      if (!isNotFound(err))
        this.o.logger.warn(
          { [this.o.kind.toLowerCase()]: key, err: apiFailure(err) },
          `could not fetch a referenced ${this.o.kind}; the watch will deliver it when it changes`,
        );
      // Settled as missing (or unreadable): readers now report it, so tell them to look again.
      if (this.#referenced.has(key) && !this.o.store.has(key)) {
        this.#absent.add(key);
        this.#pending.delete(key);
        this.notify(new Map([[key, 'deleted']]));
      }
    } finally {
      this.#pending.delete(key);
    }
  }
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
