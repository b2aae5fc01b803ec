import type { ClusterSnapshot } from '../routes/snapshot.js';
import type { RouteSource, RouteSourceContext, SourcedRoutes } from '../routes/sources.js';
import { analyzeAttachments } from './attach.js';
import { gatewayObjects } from './objects.js';
import { translateGatewayRoutes, type GatewayTranslateOptions } from './translate.js';
import { GATEWAY_KINDS } from './types.js';

/**
 * The Gateway API as a route source: the HTTPRoutes and GRPCRoutes attached to the Gateways of Warren's
 * GatewayClasses (`spec.controllerName: warren.dev/gateway-controller`) become candidates of the one route table.
 * Pure: the same snapshot gives the same routes.
 */
export class GatewayRouteSource implements RouteSource {
  readonly kinds: readonly string[] = [...GATEWAY_KINDS, 'Namespace', 'ConfigMap'];
  readonly #options: GatewayTranslateOptions;

  /** With `perGatewayTunnels`, each route is served only through the tunnels of the Gateways it is attached to. */
  constructor(options: GatewayTranslateOptions = {}) {
    this.#options = options;
  }

  translate(snapshot: ClusterSnapshot, context: RouteSourceContext): SourcedRoutes {
    const objects = gatewayObjects(snapshot.extra);
    if (objects.classes.size === 0) return { candidates: [], diagnostics: [], services: [] };
    return translateGatewayRoutes(analyzeAttachments(objects), objects, context, this.#options);
  }
}

/**
 * The route sources the settings ask for: the Gateway API's unless `gateway.enabled` is false. `perGatewayTunnels`
 * when every Gateway gets a tunnel of its own (a managed tunnel, see `GatewayTunnels`).
 */
export function gatewayRouteSources(config: { readonly gateway: { readonly enabled: boolean } }, perGatewayTunnels = false): RouteSource[] {
  return config.gateway.enabled ? [new GatewayRouteSource({ perGatewayTunnels })] : [];
}
