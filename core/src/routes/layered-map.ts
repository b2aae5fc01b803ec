const REMOVED: unique symbol = Symbol('removed');

/**
 * An immutable map shared between route-table generations: a large base plus a small overlay of changes.
 * `with()` returns a new version in time proportional to the overlay, not to the whole map, and leaves the
 * old version untouched, so a published table keeps answering exactly as before. When the overlay grows past
 * a fraction of the base, it is folded into a fresh base (amortised O(1) per change).
 */
export class LayeredMap<K, V> {
  readonly #base: ReadonlyMap<K, V>;
  readonly #overlay: ReadonlyMap<K, V | typeof REMOVED> | undefined;
  readonly size: number;

  private constructor(base: ReadonlyMap<K, V>, overlay: ReadonlyMap<K, V | typeof REMOVED> | undefined, size: number) {
    this.#base = base;
    this.#overlay = overlay;
    this.size = size;
    Object.freeze(this);
  }

  static empty<K, V>(): LayeredMap<K, V> {
    return new LayeredMap<K, V>(new Map(), undefined, 0);
  }

  get(key: K): V | undefined {
    const overlay = this.#overlay;
    if (overlay !== undefined) {
      const value = overlay.get(key);
      if (value !== undefined) return value === REMOVED ? undefined : value;
    }
    return this.#base.get(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** A new version with `changes` applied (an `undefined` value removes the key). */
  with(changes: ReadonlyMap<K, V | undefined>): LayeredMap<K, V> {
    if (changes.size === 0) return this;
    const limit = 64 + (this.#base.size >> 3);
    if ((this.#overlay?.size ?? 0) + changes.size > limit) {
      // Fold everything into a fresh base.
      const base = new Map(this.#base);
      if (this.#overlay) for (const [key, value] of this.#overlay) value === REMOVED ? base.delete(key) : base.set(key, value);
      for (const [key, value] of changes) value === undefined ? base.delete(key) : base.set(key, value);
      return new LayeredMap(base, undefined, base.size);
    }
    let size = this.size;
    const overlay = new Map<K, V | typeof REMOVED>(this.#overlay ?? []);
    for (const [key, value] of changes) {
      const had = this.get(key) !== undefined;
      if (value === undefined) {
        if (!had) continue;
        size--;
        if (this.#base.has(key)) overlay.set(key, REMOVED);
        else overlay.delete(key);
      } else {
        if (!had) size++;
        overlay.set(key, value);
      }
    }
    return new LayeredMap(this.#base, overlay.size > 0 ? overlay : undefined, size);
  }

  /**
   * The keys whose value differs between `older` and this version (added, removed or replaced), in time
   * proportional to the two overlays, when both are layers over the same base (versions from `with()` between
   * two folds). Undefined when the bases differ: the caller then compares the maps in full.
   */
  changedSince(older: LayeredMap<K, V>): Set<K> | undefined {
    if (older.#base !== this.#base) return undefined;
    const keys = new Set<K>();
    for (const overlay of [this.#overlay, older.#overlay]) {
      if (overlay === undefined) continue;
      for (const key of overlay.keys()) if (this.get(key) !== older.get(key)) keys.add(key);
    }
    return keys;
  }

  /** Every live value, in no particular order. */
  *values(): IterableIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  /** Every live key, in no particular order. */
  *keys(): IterableIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  /** Every live entry, in no particular order. */
  *entries(): IterableIterator<[K, V]> {
    const overlay = this.#overlay;
    for (const entry of this.#base) {
      if (overlay === undefined || !overlay.has(entry[0])) yield entry as [K, V];
    }
    if (overlay !== undefined) {
      for (const [key, value] of overlay) if (value !== REMOVED) yield [key, value];
    }
  }
}

/**
 * One version of a {@link LayeredMap} as a `ReadonlyMap`, for readers written against maps (route builds read
 * cache snapshots this way). Iteration order is unspecified.
 */
export class LayeredMapView<K, V> implements ReadonlyMap<K, V> {
  readonly #map: LayeredMap<K, V>;

  constructor(map: LayeredMap<K, V>) {
    this.#map = map;
    Object.freeze(this);
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.#map.entries()) callback.call(thisArg, value, key, this);
  }

  *entries(): MapIterator<[K, V]> {
    yield* this.#map.entries();
  }

  *keys(): MapIterator<K> {
    yield* this.#map.keys();
  }

  *values(): MapIterator<V> {
    yield* this.#map.values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
}
