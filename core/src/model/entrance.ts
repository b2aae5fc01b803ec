import type { Exchange, ExchangeHandler } from './exchange.js';

/**
 * The entrance an exchange arrived through, when it is a Gateway's own tunnel: routes are matched only among that
 * Gateway's (see `RouteTable.match`). Kept beside the exchange rather than on it, so acceptors stay unaware of
 * Gateways; an exchange without an entrance came through the main tunnel or another entry point.
 */
const entrances = new WeakMap<Exchange, string>();

/** The Gateway (`namespace/name`) whose own tunnel delivered `exchange`; undefined for any other entrance. */
export function gatewayEntranceOf(exchange: Exchange): string | undefined {
  return entrances.get(exchange);
}

/** A handler that marks every exchange as arrived through Gateway `gateway`'s own tunnel, then hands it to `inner`. */
export function gatewayEntrance(gateway: string, inner: ExchangeHandler): ExchangeHandler {
  return {
    handle(exchange) {
      entrances.set(exchange, gateway);
      return inner.handle(exchange);
    },
    whenRouting: inner.whenRouting?.bind(inner),
  };
}
