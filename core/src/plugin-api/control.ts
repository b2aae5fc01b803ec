import type { RouteTable } from '../model/routes.js';
import type { PluginLifecycle } from './lifecycle.js';
import type { Annotated } from './manifest.js';

/**
 * The class of a `control` plugin: reacts to route tables outside the data plane (DNS records, firewall rules).
 * Core registers it (its id is the manifest's) and runs it on the leader only.
 *
 * `onRoutesChanged` gets the whole desired state, never a diff, and must be idempotent: it is called after
 * every new table generation (coalesced), after leadership is gained, and periodically to repair drift.
 * Calls for one plugin never overlap. A rejection is logged and retried with backoff.
 */
export interface ControlPlugin extends PluginLifecycle {
  onRoutesChanged(table: RouteTable, ctx: ControlContext): Promise<void>;
  /**
   * Called when an owned Ingress is being deleted (it carries Warren's finalizer) so the plugin can clean
   * up external state for it. Resolve when done; reject to retry (bounded by core).
   */
  onIngressDeleted?(ingress: { namespace: string; name: string; hosts: readonly string[] }, ctx: ControlContext): Promise<void>;
  /**
   * True when the plugin manages external state for this Ingress and so needs Warren's finalizer on it. The
   * Ingress's annotations are parsed as on routes: read them with the plugin's annotation specs (`spec.get(ingress)`);
   * a value its schema rejects is absent.
   */
  needsFinalizer?(ingress: FinalizerCandidate): boolean;
}

/** An owned Ingress as {@link ControlPlugin.needsFinalizer} sees it. */
export interface FinalizerCandidate extends Annotated {
  readonly namespace: string;
  readonly name: string;
}

export interface ControlContext {
  readonly signal: AbortSignal;
  /** The tunnel id, once known; DNS targets `<tunnelId>.cfargotunnel.com`. */
  readonly tunnelId: string | undefined;
  /**
   * Tunnels this installation ran before `tunnelId`, newest first: managed tunnels that were deleted in Cloudflare
   * and replaced. External state a plugin recorded under one of them is this installation's and should move to
   * `tunnelId`. Empty when nothing was replaced.
   */
  readonly formerTunnelIds?: readonly string[] | undefined;
  /**
   * Managed tunnel: the tunnel id of each Gateway (`namespace/name`) that has a tunnel of its own. A route with
   * `Route.gateway` is served through that Gateway's tunnel, so DNS for its hostname targets that tunnel (and
   * waits while the Gateway has none yet).
   */
  readonly gatewayTunnelIds?: ReadonlyMap<string, string> | undefined;
  /**
   * This replica's leadership term: 1 in its first, one more each time it leads again (undefined: the caller does
   * not count terms). External state a plugin cached in an earlier term is stale: another replica led meanwhile
   * and may have changed it, so read it afresh when the term changes.
   */
  readonly term?: number | undefined;
}
