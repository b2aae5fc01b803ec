/**
 * A value that one writer publishes and any number of readers take (`current`) or follow (`subscribe`), the way
 * `RouteStore` publishes route tables. State shared between parts of Warren is published this way instead of
 * being held in closures and pushed to its readers by hand.
 */
export interface Published<T> {
  /** The value now. */
  readonly current: T;
  /** Calls `listener` after every change (not with the current value). Returns an unsubscribe function. */
  subscribe(listener: (value: T) => void): () => void;
}

/** The writer's side of a {@link Published} value. */
export class PublishedValue<T> implements Published<T> {
  #current: T;
  readonly #listeners = new Set<(value: T) => void>();
  readonly #same: (a: T, b: T) => boolean;
  readonly #onListenerError: (err: unknown) => void;

  /**
   * @param same when a published value equals the current one, nothing changes and no listener runs (default
   *   `Object.is`)
   * @param onListenerError where a listener's exception goes (default: rethrown in a microtask, i.e. unhandled)
   */
  constructor(initial: T, options: { readonly same?: (a: T, b: T) => boolean; readonly onListenerError?: (err: unknown) => void } = {}) {
    this.#current = initial;
    this.#same = options.same ?? Object.is;
    this.#onListenerError =
      options.onListenerError ??
      ((err) =>
        queueMicrotask(() => {
          throw err;
        }));
  }

  get current(): T {
    return this.#current;
  }

  /** Makes `value` current and tells every listener, synchronously, in subscription order. False when unchanged. */
  publish(value: T): boolean {
    if (this.#same(this.#current, value)) return false;
    this.#current = value;
    for (const listener of [...this.#listeners]) {
      try {
        listener(value);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
    return true;
  }

  subscribe(listener: (value: T) => void): () => void {
    const wrapped = (value: T): void => listener(value);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }
}

/** A value that never changes (e.g. the leadership of a replica without leader election). */
export function constant<T>(value: T): Published<T> {
  return { current: value, subscribe: () => () => {} };
}
