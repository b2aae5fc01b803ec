import { isIngressOwned } from '../model/route-owner.js';
import { deferredListener, type RouteStore } from '../routes/store.js';
import type { RouteTable } from '../routes/types.js';
import type { IngressSource } from './status.js';

/**
 * The Ingresses the current route table owns, for reconcilers that act per owned Ingress (status, finalizers).
 * `follow(enqueue)` feeds every Ingress whose ownership changed with a new table, and every Ingress object that
 * changed in the cache, into `enqueue`; it returns a function that stops following.
 *
 * Only Ingresses: a table's HTTPRoutes and GRPCRoutes never count, even one named like an Ingress, so status and
 * finalizers are never written to an Ingress on their account.
 *
 * Table diffs run after `RouteStore.publish` returned, once per burst with the newest table: diffing every owned
 * Ingress must not delay the subscribers that make a table serve (the proxy pipeline).
 */
export class OwnedIngresses {
  readonly #store: RouteStore;
  readonly #ingresses: IngressSource;
  #owned = new Set<string>();

  constructor(store: RouteStore, ingresses: IngressSource) {
    this.#store = store;
    this.#ingresses = ingresses;
  }

  /** True when the current table owns the Ingress `namespace/name`. */
  has(key: string): boolean {
    return this.#owned.has(key);
  }

  follow(enqueue: (key: string) => void): () => void {
    let seen = this.#store.current;
    this.#owned = ownedKeys(seen);
    const unsubscribeTable = this.#store.subscribe(
      deferredListener((table) => {
        // An incrementally built table names what changed (O(change)); otherwise compare every owned Ingress.
        const changes = table.ownedChangesSince?.(seen);
        seen = table;
        if (changes) {
          for (const [key, ref] of changes) {
            if (ref !== undefined && !isIngressOwned(ref)) continue;
            if (ref !== undefined ? this.#owned.has(key) : !this.#owned.has(key)) continue;
            if (ref !== undefined) this.#owned.add(key);
            else this.#owned.delete(key);
            enqueue(key);
          }
          return;
        }
        const next = ownedKeys(table);
        for (const key of next) if (!this.#owned.has(key)) enqueue(key);
        for (const key of this.#owned) if (!next.has(key)) enqueue(key);
        this.#owned = next;
      }),
    );
    const unsubscribeIngresses = this.#ingresses.onChange((kind, changes) => {
      if (kind !== 'Ingress') return;
      for (const [key, change] of changes) if (change !== 'deleted') enqueue(key);
    });
    return () => {
      unsubscribeTable();
      unsubscribeIngresses();
    };
  }
}

function ownedKeys(table: RouteTable): Set<string> {
  return new Set(table.ownedIngresses.filter(isIngressOwned).map((i) => `${i.namespace}/${i.name}`));
}
