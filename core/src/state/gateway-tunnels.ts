import { PublishedValue } from './published.js';

/** The tunnel of one Gateway: its id once known, or why the Gateway has none. */
export interface GatewayTunnel {
  /** The tunnel UUID once its credentials are known. */
  readonly tunnelId: string | undefined;
  /** Connections of this replica registered for the tunnel. */
  readonly registeredConnections: number;
  /** Set when the Gateway gets no tunnel (`reason` is a Gateway API condition reason, e.g. `NoResources`). */
  readonly problem?: { readonly reason: string; readonly message: string } | undefined;
}

/**
 * Managed tunnel: the tunnels of Warren's Gateways, by Gateway `namespace/name`, published by the Gateway tunnels
 * part and read by the Gateway status (each Gateway's address) and control plugins (DNS targets). Empty when the
 * Gateways share the main tunnel.
 */
export type GatewayTunnels = ReadonlyMap<string, GatewayTunnel>;

export const NO_GATEWAY_TUNNELS: GatewayTunnels = new Map();

/** The published {@link GatewayTunnels}; one writer. */
export class GatewayTunnelsStore extends PublishedValue<GatewayTunnels> {
  constructor(onListenerError?: (err: unknown) => void) {
    super(NO_GATEWAY_TUNNELS, { same: sameTunnels, ...(onListenerError ? { onListenerError } : {}) });
  }

  /** Sets (or, with undefined, removes) the entry of one Gateway. */
  set(gateway: string, tunnel: GatewayTunnel | undefined): void {
    const next = new Map(this.current);
    if (tunnel) next.set(gateway, Object.freeze({ ...tunnel }));
    else next.delete(gateway);
    this.publish(next);
  }
}

function sameTunnels(a: GatewayTunnels, b: GatewayTunnels): boolean {
  if (a.size !== b.size) return false;
  for (const [key, x] of a) {
    const y = b.get(key);
    if (
      !y ||
      x.tunnelId !== y.tunnelId ||
      x.registeredConnections !== y.registeredConnections ||
      x.problem?.reason !== y.problem?.reason ||
      x.problem?.message !== y.problem?.message
    )
      return false;
  }
  return true;
}

/** Calls `listener` when a Gateway's tunnel id or problem changes, not when only connection counts do. */
export function onGatewayTunnelIdentity(
  tunnels: { readonly current: GatewayTunnels; subscribe(l: (v: GatewayTunnels) => void): () => void },
  listener: () => void,
): () => void {
  let last = tunnels.current;
  return tunnels.subscribe((now) => {
    const before = last;
    last = now;
    if (before.size !== now.size) return listener();
    for (const [key, x] of now) {
      const y = before.get(key);
      if (!y || x.tunnelId !== y.tunnelId || x.problem?.reason !== y.problem?.reason || x.problem?.message !== y.problem?.message) return listener();
    }
  });
}
