/**
 * An exchange's client-gone state (the `Exchange` contract's `signal` and `onClientGone`): the signal is made only
 * when someone asks for it, and the pipeline's listener is a plain callback. An `AbortController` per exchange
 * and a listener on its signal (Node's `EventTarget` records and maps) cost more than the rest of an exchange's
 * bookkeeping, and most exchanges never see their client go.
 */
export class ClientGone {
  #controller: AbortController | undefined;
  #gone = false;
  #reason: unknown;
  #first: (() => void) | undefined;
  /** Listeners after the first (rare: the pipeline registers one). */
  #more: Array<() => void> | undefined;

  get gone(): boolean {
    return this.#gone;
  }

  /** Aborted once the client is gone, with the reason `fire` was given (an `AbortError` without one). */
  get signal(): AbortSignal {
    const controller = (this.#controller ??= new AbortController());
    if (this.#gone && !controller.signal.aborted) controller.abort(this.#reason);
    return controller.signal;
  }

  /** `Exchange.onClientGone`: keeps `listener` for the client's going, or returns false when it is gone already. */
  listen(listener: () => void): boolean {
    if (this.#gone) return false;
    if (this.#first === undefined) this.#first = listener;
    else (this.#more ??= []).push(listener);
    return true;
  }

  /**
   * The client went: listeners in the order they came, then the signal (if made). Once. A listener that throws
   * keeps none of the others or the signal from hearing it (as with listeners on a signal); the first such error
   * is thrown once all were told.
   */
  fire(reason?: unknown): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#reason = reason;
    const first = this.#first;
    const more = this.#more;
    this.#first = undefined;
    this.#more = undefined;
    let failure: { readonly error: unknown } | undefined;
    const tell = (listener: () => void): void => {
      try {
        listener();
      } catch (error) {
        failure ??= { error };
      }
    };
    if (first) tell(first);
    if (more) for (const listener of more) tell(listener);
    this.#controller?.abort(reason);
    if (failure) throw failure.error;
  }
}

/** `Exchange.onClientGone` for an exchange whose client-gone state is an existing signal. */
export function onSignalAbort(signal: AbortSignal): (listener: () => void) => boolean {
  return (listener) => {
    if (signal.aborted) return false;
    signal.addEventListener('abort', listener, { once: true });
    return true;
  };
}
