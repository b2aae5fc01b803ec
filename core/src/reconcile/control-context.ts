import type { ControlContext } from '../plugin-api/control.js';
import type { Leadership } from '../state/leadership.js';
import type { Published } from '../state/published.js';
import type { GatewayTunnels } from '../state/gateway-tunnels.js';
import type { TunnelState } from '../state/tunnel.js';

/** The published state a control plugin call reads: the tunnel it targets and this replica's leadership. */
export interface ControlState {
  readonly tunnel: Published<TunnelState>;
  readonly leadership: Published<Leadership>;
  /** Managed tunnel: the Gateways' own tunnels (absent or empty when Gateways share the main tunnel). */
  readonly gatewayTunnels?: Published<GatewayTunnels> | undefined;
}

/** The context of one control plugin call, read from the published state when the call starts. */
export function controlContext(state: ControlState, signal: AbortSignal): ControlContext {
  const tunnel = state.tunnel.current;
  const gatewayTunnelIds = new Map<string, string>();
  for (const [gateway, t] of state.gatewayTunnels?.current ?? []) if (t.tunnelId) gatewayTunnelIds.set(gateway, t.tunnelId);
  return { signal, tunnelId: tunnel.id, formerTunnelIds: tunnel.formerIds, gatewayTunnelIds, term: state.leadership.current.term };
}

/**
 * Calls `listener` when the tunnel's identity (id or former ids) changes — what control plugins and the Ingress
 * status depend on — and not when only its connection count does. Returns an unsubscribe function.
 */
export function onTunnelIdentity(tunnel: Published<TunnelState>, listener: (state: TunnelState) => void): () => void {
  let last = tunnel.current;
  return tunnel.subscribe((state) => {
    const changed = state.id !== last.id || state.formerIds !== last.formerIds;
    last = state;
    if (changed) listener(state);
  });
}
