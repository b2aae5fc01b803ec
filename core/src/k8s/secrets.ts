import type { V1Secret } from '@kubernetes/client-node';
import { apiPath, type KubeClient } from './api/client.js';
import type { Logger } from 'pino';
import type { SecretReader } from '../plugin-api/lifecycle.js';
import { apiFailure, isNotFound } from './api-errors.js';
import { trimForCache } from './kinds.js';
import type { ObjectStore, StoreChange } from './object-store.js';

export interface SecretCacheOptions {
  readonly store: ObjectStore<V1Secret>;
  readonly client: KubeClient;
  readonly logger: Logger;
  /** Applies store changes made outside the watch (fetches of newly referenced Secrets, dropped references). */
  readonly onStoreChange: (changes: ReadonlyMap<string, StoreChange>) => void;
  /** Namespaces Warren may read; a reference outside them is never fetched. Empty: all. */
  readonly namespaces: readonly string[];
}

/**
 * The Secret side of the informers, and the {@link SecretReader} plugins get.
 *
 * Only Secrets that routes reference (`Route.secretRefs`, `namespace/name`) are kept in memory: the Secret watch
 * drops every other Secret as it arrives, and Secret data never appears in logs. When the route builder reports
 * a new reference, the Secret is fetched once with a GET (the watch keeps it current from then on); when a
 * reference disappears, its data is dropped.
 */
export class SecretCache implements SecretReader {
  readonly #o: SecretCacheOptions;
  #referenced = new Set<string>();
  /** References per owner (`routes`: the route table; `gateway`: Gateway listener certificates); kept: the union. */
  readonly #owners = new Map<string, ReadonlySet<string>>();
  /** Keys being fetched; `deleted` is set when the watch reports a deletion meanwhile. */
  readonly #pending = new Map<string, { deleted: boolean }>();
  /** Referenced keys known not to exist (or not to be readable): a miss of `get` that is real. */
  readonly #absent = new Set<string>();
  readonly #listeners = new Set<(namespace: string, name: string) => void>();
  readonly #decoded = new WeakMap<V1Secret, Readonly<Record<string, Buffer>>>();

  constructor(options: SecretCacheOptions) {
    this.#o = options;
  }

  /** The reflector's filter: keep a Secret only while some route references it. */
  readonly keep = (key: string): boolean => this.#referenced.has(key);

  /** Keys currently referenced. */
  get references(): ReadonlySet<string> {
    return this.#referenced;
  }

  /**
   * Sets the Secrets `owner` references (for `routes`, the union of `secretRefs` over the current route table);
   * the cache keeps the union over all owners. Drops Secrets no longer referenced and fetches newly referenced ones. Resolves when the fetches are done (failures are logged; the
   * watch will deliver the Secret when it changes, and the next reference update retries).
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
    for (const key of removed) if (this.#o.store.delete(key)) dropped.set(key, 'deleted');
    if (dropped.size) this.#o.onStoreChange(dropped);
    const missing = [...next].filter((k) => !this.#o.store.has(k) && !this.#pending.has(k) && this.#allowed(k));
    if (added.length || missing.length) await Promise.all([...new Set([...added, ...missing])].filter((k) => this.#allowed(k)).map((k) => this.#fetch(k)));
  }

  /** Called with every change the Secret reflector (or a fetch) applied; tells listeners about rotations. */
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
          this.#o.logger.error({ err: apiFailure(err), secret: key }, 'a Secret change listener threw');
        }
      }
    }
  }

  /** The reflector's observer: records a deletion seen by the watch for a key whose fetch is in flight. */
  readonly observe = (type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string): void => {
    const pending = this.#pending.get(key);
    if (pending && type === 'DELETED') pending.deleted = true;
  };

  get(namespace: string, name: string): Readonly<Record<string, Buffer>> | undefined {
    const secret = this.#o.store.get(`${namespace}/${name}`);
    if (!secret) return undefined;
    let decoded = this.#decoded.get(secret);
    if (!decoded) {
      const out: Record<string, Buffer> = {};
      for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(String(v), 'base64');
      decoded = Object.freeze(out);
      this.#decoded.set(secret, decoded);
    }
    return decoded;
  }

  /** True while a Secret's fetch has not settled: it is neither in the cache nor known to be missing. */
  loading(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    return !this.#o.store.has(key) && !this.#absent.has(key) && this.#allowed(key);
  }

  onChange(listener: (namespace: string, name: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #allowed(key: string): boolean {
    const ns = splitKey(key)[0];
    return this.#o.namespaces.length === 0 || this.#o.namespaces.includes(ns);
  }

  async #fetch(key: string): Promise<void> {
    const [namespace, name] = splitKey(key);
    const state = { deleted: false };
    this.#pending.set(key, state);
    try {
      const secret = trimForCache(await this.#o.client.get<V1Secret>(apiPath('v1', 'secrets', namespace, name)));
      // The watch may have delivered a newer version, or a deletion, while the GET was in flight.
      if (state.deleted || this.#o.store.has(key) || !this.#referenced.has(key)) return;
      const change = this.#o.store.upsert(key, secret);
      if (change) this.#o.onStoreChange(new Map([[key, change]]));
    } catch (err) {
      if (!isNotFound(err)) this.#o.logger.warn({ secret: key, err: apiFailure(err) }, 'could not fetch a referenced Secret; the watch will deliver it when it changes');
      // Settled as missing (or unreadable): readers now report it, so tell them to look again.
      if (this.#referenced.has(key) && !this.#o.store.has(key)) {
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
