import { PublishedValue } from './published.js';

/**
 * The tunnel Warren runs, published by the tunnel part (credentials resolved, tunnel replaced, connections
 * registered) and read by the Ingress status (the published hostname), control plugins (DNS targets, former
 * tunnels) and readiness.
 */
export interface TunnelState {
  /** The tunnel UUID once credentials are known. */
  readonly id: string | undefined;
  /** Managed tunnels this installation ran before `id`, newest first (deleted in Cloudflare and replaced). */
  readonly formerIds: readonly string[];
  /** Connections currently registered with the edge. Ready means ≥ 1. */
  readonly registeredConnections: number;
}

export const NO_TUNNEL: TunnelState = Object.freeze({ id: undefined, formerIds: Object.freeze([]), registeredConnections: 0 });

/** The published {@link TunnelState}; one writer (the tunnel part). */
export class TunnelStateStore extends PublishedValue<TunnelState> {
  constructor(initial: TunnelState = NO_TUNNEL, onListenerError?: (err: unknown) => void) {
    super(initial, { same: sameTunnelState, ...(onListenerError ? { onListenerError } : {}) });
  }

  /** The tunnel now run and those it replaced. */
  identify(id: string, formerIds: readonly string[] = []): void {
    this.publish({ ...this.current, id, formerIds: Object.freeze([...formerIds]) });
  }

  /** The number of connections registered with the edge. */
  connections(registered: number): void {
    this.publish({ ...this.current, registeredConnections: registered });
  }
}

function sameTunnelState(a: TunnelState, b: TunnelState): boolean {
  return (
    a.id === b.id && a.registeredConnections === b.registeredConnections && a.formerIds.length === b.formerIds.length && a.formerIds.every((id, i) => id === b.formerIds[i])
  );
}
