import { gatewayObjects, identityOf } from '../gateway/objects.js';
import { desiredGatewayStatus, type DesiredCondition } from '../gateway/status.js';
import { CONTROLLER_NAME, GATEWAY_GROUP, GATEWAY_KINDS, type Gateway, type GatewayRoute, type GatewayRouteKind } from '../gateway/types.js';
import type { Diagnostic, ObjectRef } from '../model/routes.js';
import { snapshotKey, type ClusterSnapshot } from '../routes/snapshot.js';

/**
 * What a cluster's Gateway API status would say is wrong, for folder mode, where there is no status to write:
 * Warren's GatewayClasses that are not accepted, Gateways and listeners that are not (unsupported protocol or
 * address, a listener conflict, a certificate that does not resolve), and — since everything in the folder is
 * meant for Warren — Gateways of a class that is not Warren's and route parentRefs naming no Gateway Warren serves.
 * Computed by the same analysis as the status writer's (`desiredGatewayStatus`); route problems the route
 * translation reports itself (a parentRef whose listener does not take the route, a bad backendRef, an invalid
 * filter) are in the route table's diagnostics and are not repeated here. Pure: the same snapshot gives the same
 * problems.
 */
export function folderGatewayProblems(snapshot: ClusterSnapshot): Diagnostic[] {
  const objects = gatewayObjects(snapshot.extra);
  const out: Diagnostic[] = [];
  const status = desiredGatewayStatus({
    objects,
    services: snapshot.services,
    secret: (namespace, name) => snapshot.secrets.get(snapshotKey(namespace, name)),
    // Every Gateway is served through the one tunnel of folder mode: no Gateway waits for an address.
    address: { type: 'Hostname', value: 'the tunnel' },
  });

  const own = new Map(status.classes.map((c) => [c.name, c]));
  for (const c of status.classes) {
    const object: ObjectRef = { kind: 'GatewayClass', name: c.name, uid: uidOf(objects.classes.get(c.name)) };
    for (const d of failed(c.conditions)) {
      out.push(warning(object, d.reason, `GatewayClass ${c.name}: ${d.message}; its Gateways are not served`, 'spec.parametersRef'));
    }
  }

  const served = new Set(status.gateways.map((g) => g.key));
  for (const g of status.gateways) {
    const gateway = objects.gateways.get(g.key)!;
    const { namespace, name } = identityOf(g.key, gateway);
    const object: ObjectRef = { kind: 'Gateway', namespace, name, uid: uidOf(gateway) };
    const shown = `Gateway ${namespace}/${name}`;
    const accepted = g.conditions.find((c) => c.type === 'Accepted');
    if (accepted?.status === 'False') {
      const field = accepted.reason === 'UnsupportedAddress' ? 'spec.addresses' : 'spec.listeners';
      out.push(warning(object, accepted.reason, `${shown}: ${accepted.message}; none of its routes are served`, field));
    }
    const specs = Array.isArray(gateway.spec?.listeners) ? gateway.spec.listeners : [];
    for (const l of g.listeners) {
      const index = specs.findIndex((s) => s?.name === l.name);
      const field = index === -1 ? 'spec.listeners' : `spec.listeners[${index}]`;
      for (const d of l.conditions) {
        const bad = (d.type === 'Conflicted' && d.status === 'True') || ((d.type === 'Accepted' || d.type === 'ResolvedRefs') && d.status === 'False');
        if (!bad) continue;
        const effect = d.type === 'ResolvedRefs' && d.reason !== 'InvalidRouteKinds' ? 'its routes are still served' : 'routes do not attach to it';
        out.push(warning(object, d.reason, `${shown}: listener ${l.name} (${field}): ${d.message}; ${effect}`, field));
      }
    }
  }

  /** Why a Gateway (by `namespace/name`) is not served; undefined when it is. */
  const unserved = (key: string): { reason: string; why: string } | undefined => {
    if (served.has(key)) return undefined;
    const gateway: Gateway | undefined = objects.gateways.get(key);
    if (!gateway) return { reason: 'GatewayNotFound', why: 'is not in the folder' };
    const className = typeof gateway.spec?.gatewayClassName === 'string' ? gateway.spec.gatewayClassName : '';
    const cls = objects.classes.get(className);
    if (!cls) return { reason: 'GatewayClassNotFound', why: `names GatewayClass ${JSON.stringify(className)}, which is not in the folder` };
    if (!own.has(className)) {
      const controller = typeof cls.spec?.controllerName === 'string' ? cls.spec.controllerName : '(none)';
      return { reason: 'NotWarrensGatewayClass', why: `is of GatewayClass ${className}, whose controllerName ${controller} is not Warren's (${CONTROLLER_NAME})` };
    }
    return { reason: 'GatewayClassNotAccepted', why: `is of GatewayClass ${className}, which Warren does not accept` };
  };

  for (const [key, gateway] of [...objects.gateways].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const problem = unserved(key);
    if (!problem) continue;
    const { namespace, name } = identityOf(key, gateway);
    out.push(
      warning(
        { kind: 'Gateway', namespace, name, uid: uidOf(gateway) },
        problem.reason,
        `Gateway ${namespace}/${name} ${problem.why}; it and its routes are not served`,
        'spec.gatewayClassName',
      ),
    );
  }

  const routes: Array<[GatewayRouteKind, ReadonlyMap<string, GatewayRoute>]> = [
    ['HTTPRoute', objects.httpRoutes],
    ['GRPCRoute', objects.grpcRoutes],
  ];
  for (const [kind, map] of routes) {
    for (const key of [...map.keys()].sort()) {
      const route = map.get(key)!;
      const { namespace, name } = identityOf(key, route);
      const object: ObjectRef = { kind, namespace, name, uid: uidOf(route) };
      const refs = Array.isArray(route.spec?.parentRefs) ? route.spec.parentRefs : [];
      if (refs.length === 0) {
        out.push(warning(object, 'NoParentRefs', `${kind} ${namespace}/${name}: spec.parentRefs names no Gateway; the route is not served`, 'spec.parentRefs'));
        continue;
      }
      for (const [i, ref] of refs.entries()) {
        const field = `spec.parentRefs[${i}]`;
        if ((ref?.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP || (ref?.kind ?? 'Gateway') !== 'Gateway') {
          const what = `${ref?.group ?? GATEWAY_GROUP}/${ref?.kind ?? 'Gateway'}`;
          out.push(warning(object, 'UnsupportedParent', `${kind} ${namespace}/${name}: ${field} names a ${what}; Warren attaches routes to Gateways only`, field));
          continue;
        }
        const gwNamespace = typeof ref.namespace === 'string' && ref.namespace !== '' ? ref.namespace : namespace;
        const problem = unserved(`${gwNamespace}/${ref.name ?? ''}`);
        if (!problem) continue;
        out.push(
          warning(
            object,
            problem.reason,
            `${kind} ${namespace}/${name}: ${field}: Gateway ${gwNamespace}/${ref.name ?? ''} ${problem.why}; the route is not served through it`,
            field,
          ),
        );
      }
    }
  }
  return out;
}

/** How many Gateway API objects the snapshot holds (to say they are ignored when `gateway.enabled` is false). */
export function gatewayObjectCount(snapshot: ClusterSnapshot): number {
  let count = 0;
  for (const kind of GATEWAY_KINDS) count += snapshot.extra?.get(kind)?.size ?? 0;
  return count;
}

function failed(conditions: readonly DesiredCondition[]): DesiredCondition[] {
  return conditions.filter((c) => c.type === 'Accepted' && c.status === 'False');
}

function uidOf(object: { metadata?: { uid?: string | undefined } | undefined } | undefined): string | undefined {
  const uid = object?.metadata?.uid;
  return typeof uid === 'string' && uid !== '' ? uid : undefined;
}

function warning(object: ObjectRef, reason: string, message: string, field: string): Diagnostic {
  return { type: 'Warning', reason, message, object, field };
}
