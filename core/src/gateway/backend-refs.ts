import type { V1Service } from '@kubernetes/client-node';
import { referencePermitted } from './grants.js';
import type { Problem } from './listeners.js';
import { isCoreGroup } from './objects.js';
import { GATEWAY_GROUP, type BackendRef, type GatewayRouteKind, type ReferenceGrant } from './types.js';

/** A backendRef that names a Service Warren may route to. */
export interface CheckedBackendRef {
  readonly ok: true;
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
}

/** A backendRef that cannot be served, with the route `ResolvedRefs` reason (`InvalidKind`, `RefNotPermitted`, `BackendNotFound`). */
export type BackendRefResult = CheckedBackendRef | ({ readonly ok: false } & Problem);

/**
 * Checks a route's backendRef: a core Service (the only kind Warren balances over), in the route's namespace or
 * in one whose ReferenceGrant allows the route's kind, that exists and has the port.
 */
export function checkBackendRef(
  ref: BackendRef,
  field: string,
  routeKind: GatewayRouteKind,
  routeNamespace: string,
  services: ReadonlyMap<string, V1Service>,
  grants: ReadonlyMap<string, ReferenceGrant>,
): BackendRefResult {
  if (!isCoreGroup(ref?.group) || (ref?.kind ?? 'Service') !== 'Service') {
    return { ok: false, reason: 'InvalidKind', message: `${field} names ${ref?.group || 'core'}/${ref?.kind}; Warren routes to Services only` };
  }
  const name = typeof ref.name === 'string' ? ref.name : '';
  const namespace = typeof ref.namespace === 'string' && ref.namespace !== '' ? ref.namespace : routeNamespace;
  if (!referencePermitted(grants, { group: GATEWAY_GROUP, kind: routeKind, namespace: routeNamespace }, { group: '', kind: 'Service', namespace, name })) {
    return {
      ok: false,
      reason: 'RefNotPermitted',
      message: `${field}: Service ${namespace}/${name} is in another namespace and no ReferenceGrant there allows ${routeKind}s from ${routeNamespace}`,
    };
  }
  const service = services.get(`${namespace}/${name}`);
  if (!service) return { ok: false, reason: 'BackendNotFound', message: `${field}: Service ${namespace}/${name} not found` };
  const port = ref.port;
  if (typeof port !== 'number') return { ok: false, reason: 'BackendNotFound', message: `${field}: a port is required for a Service backend` };
  const ports = Array.isArray(service.spec?.ports) ? service.spec.ports : [];
  if (!ports.some((p) => p?.port === port && (p.protocol ?? 'TCP') === 'TCP')) {
    return { ok: false, reason: 'BackendNotFound', message: `${field}: Service ${namespace}/${name} has no TCP port ${port}` };
  }
  return { ok: true, namespace, name, port };
}
