import { ErrorCode, WarrenError } from '../errors.js';
import type { ExchangeKey } from '../plugin-api/exchange-key.js';
import type { ExchangeContext } from '../plugin-api/upstream.js';
import type { Route } from '../routes/types.js';
import type { Exchange } from './exchange.js';
import type { ExchangeRun } from './forward.js';

/**
 * What plugins see of an exchange (`options.context`): its facts, their own per-exchange values and the timeout
 * controls. Core's state of the exchange (timers, attempts, the upstream controller) stays in `ExchangeRun`,
 * which core reaches from a context it handed out through {@link PluginContext.runOf}.
 */
export class PluginContext implements ExchangeContext {
  readonly #run: ExchangeRun;
  /** Created on the first `set`: most exchanges carry no plugin values. */
  #values: Map<ExchangeKey<unknown>, unknown> | undefined;

  constructor(run: ExchangeRun) {
    this.#run = run;
  }

  /** The exchange core runs behind `context`; refuses a context core did not create (a plugin replaced it). */
  static runOf(context: ExchangeContext): ExchangeRun {
    if (!(#run in context)) {
      throw new WarrenError(ErrorCode.PluginLoad, 'a plugin replaced options.context: dispatch options carry an exchange context that core did not create', {
        terminal: true,
      });
    }
    return context.#run;
  }

  get exchange(): Exchange {
    return this.#run.exchange;
  }

  get route(): Route {
    return this.#run.route;
  }

  get endpoint(): string | undefined {
    return this.#run.endpoint;
  }

  get<T>(key: ExchangeKey<T>): T | undefined {
    return this.#values?.get(key) as T | undefined;
  }

  set<T>(key: ExchangeKey<T>, value: T): void {
    (this.#values ??= new Map()).set(key, value);
  }

  suspendIdleTimeout(): void {
    this.#run.suspendIdleTimeout();
  }

  setIdleTimeout(ms: number): void {
    this.#run.setIdleTimeout(ms);
  }

  setDeadline(ms: number): void {
    this.#run.setDeadline(ms);
  }
}
