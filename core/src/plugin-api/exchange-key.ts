/** Carries the value type of an {@link ExchangeKey}; exists in types only. */
declare const valueType: unique symbol;

/**
 * Names one per-exchange value a plugin keeps on `ExchangeContext` (`context.get(key)`, `context.set(key, value)`).
 * Keys compare by identity: two keys never clash, whatever their names; `name` is for diagnostics.
 */
export interface ExchangeKey<T> {
  readonly name: string;
  /** Never set: ties `T` to the key so that `get` and `set` are typed. */
  readonly [valueType]?: T;
}

/** A new key for a per-exchange value of type `T`; create it once (module level), not per request. */
export function defineExchangeKey<T>(name: string): ExchangeKey<T> {
  return Object.freeze({ name });
}
