import type { KubernetesObject } from '@kubernetes/client-node';
import type { ExtraObjects } from '../routes/sources.js';
import type { ConfigMapLike } from './backend-tls.js';
import { GATEWAY_GROUP, type BackendTLSPolicy, type Gateway, type GatewayClass, type GRPCRoute, type HTTPRoute, type ReferenceGrant } from './types.js';

/** Typed views of the Gateway API objects in `ClusterSnapshot.extra` (empty maps for kinds not present). */
export interface GatewayObjects {
  readonly classes: ReadonlyMap<string, GatewayClass>;
  readonly gateways: ReadonlyMap<string, Gateway>;
  readonly httpRoutes: ReadonlyMap<string, HTTPRoute>;
  readonly grpcRoutes: ReadonlyMap<string, GRPCRoute>;
  readonly grants: ReadonlyMap<string, ReferenceGrant>;
  readonly tlsPolicies: ReadonlyMap<string, BackendTLSPolicy>;
  /** Namespaces by name (for `allowedRoutes.namespaces.from: Selector`). */
  readonly namespaces: ReadonlyMap<string, KubernetesObject>;
  /** The ConfigMaps BackendTLSPolicies name as CA bundles (only those are cached), by `namespace/name`. */
  readonly configMaps: ReadonlyMap<string, ConfigMapLike>;
}

const EMPTY: ReadonlyMap<string, unknown> = new Map<string, unknown>();

export function gatewayObjects(extra: ExtraObjects | undefined): GatewayObjects {
  const get = <T>(kind: string) => (extra?.get(kind) ?? EMPTY) as ReadonlyMap<string, T>;
  return {
    classes: get('GatewayClass'),
    gateways: get('Gateway'),
    httpRoutes: get('HTTPRoute'),
    grpcRoutes: get('GRPCRoute'),
    grants: get('ReferenceGrant'),
    tlsPolicies: get('BackendTLSPolicy'),
    namespaces: get('Namespace'),
    configMaps: get('ConfigMap'),
  };
}

/** `namespace/name` of a namespaced object, from its metadata or else its snapshot key. */
export function identityOf(key: string, object: KubernetesObject): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  const meta = object?.metadata ?? {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : slash === -1 ? 'default' : key.slice(0, slash);
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : key.slice(slash + 1);
  return { namespace, name };
}

/** `metadata.generation` (0 when absent, as for objects from files). */
export function generationOf(object: KubernetesObject): number {
  const g = object?.metadata?.generation;
  return typeof g === 'number' ? g : 0;
}

/** Creation time in ms since epoch; Infinity when unknown (then the object loses ties). */
export function creationTimeOf(object: KubernetesObject): number {
  const ts = object?.metadata?.creationTimestamp as unknown;
  const ms = ts instanceof Date ? ts.getTime() : typeof ts === 'string' ? Date.parse(ts) : Number.NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

/** RFC 3339 creation time (`''` when unknown). */
export function creationStampOf(object: KubernetesObject): string {
  const ts = object?.metadata?.creationTimestamp as unknown;
  if (ts instanceof Date) return Number.isNaN(ts.getTime()) ? '' : ts.toISOString().replace('.000Z', 'Z');
  return typeof ts === 'string' ? ts : '';
}

/** A group as written, with the Gateway API's default for parent references (`gateway.networking.k8s.io`). */
export function groupOr(group: unknown, fallback: string): string {
  return typeof group === 'string' ? group : fallback;
}

/** True for the core API group as references spell it (`""`, the default of backend and Secret references). */
export function isCoreGroup(group: unknown): boolean {
  return group === undefined || group === '';
}

export { GATEWAY_GROUP };
