import { checkRuleHost } from '../routes/hosts.js';
import { analyzeGateway, classProblem, isOwnClass, namespaceAllowed, type GatewayInfo, type ListenerInfo, type Problem, type SecretLookup } from './listeners.js';
import { identityOf, type GatewayObjects } from './objects.js';
import { GATEWAY_GROUP, type GatewayClass, type GatewayRoute, type GatewayRouteKind, type ParentReference } from './types.js';

/**
 * Which Gateways and listeners each HTTPRoute and GRPCRoute attaches to, and with which hostnames: the part of
 * the Gateway API that both the route translation and the status computation read, computed once per snapshot.
 */

export interface ParentAttachment {
  /** Position in `spec.parentRefs`. */
  readonly index: number;
  readonly ref: ParentReference;
  readonly gateway: GatewayInfo;
  /** Why the route is not accepted by this parent (`NoMatchingParent`, `NotAllowedByListeners`, `NoMatchingListenerHostname`). */
  readonly problem?: Problem | undefined;
  /** The listeners the route attached to (empty when `problem` is set). */
  readonly listeners: readonly ListenerInfo[];
  /** The hostnames the route serves through this parent (lower-case; undefined: any host). */
  readonly hosts: readonly (string | undefined)[];
  /** The hostnames it serves through each of `listeners`, in the same order. */
  readonly listenerHosts: ReadonlyArray<readonly (string | undefined)[]>;
}

export interface RouteAttachment {
  readonly kind: GatewayRouteKind;
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly route: GatewayRoute;
  /** Parents that are Gateways of Warren's classes; other parents are other controllers' business. */
  readonly parents: readonly ParentAttachment[];
  /** `spec.hostnames` entries that are not valid hostnames. */
  readonly badHostnames: readonly string[];
}

export interface OwnClass {
  readonly name: string;
  readonly gatewayClass: GatewayClass;
  readonly problem?: Problem | undefined;
}

export interface GatewayAnalysis {
  /** Warren's GatewayClasses (by `spec.controllerName`), accepted or not. */
  readonly classes: ReadonlyMap<string, OwnClass>;
  /** Gateways of Warren's accepted classes, by `namespace/name`. */
  readonly gateways: ReadonlyMap<string, GatewayInfo>;
  /** Every HTTPRoute and GRPCRoute with at least one parent Gateway of Warren's, in a stable order. */
  readonly routes: readonly RouteAttachment[];
}

/** Analyses the Gateway API objects of a snapshot; never throws for any object content. */
export function analyzeAttachments(objects: GatewayObjects, secret?: SecretLookup): GatewayAnalysis {
  const classes = new Map<string, OwnClass>();
  for (const [name, cls] of objects.classes) {
    if (isOwnClass(cls)) classes.set(name, { name, gatewayClass: cls, problem: classProblem(cls) });
  }
  const gateways = new Map<string, GatewayInfo>();
  for (const [key, gw] of objects.gateways) {
    const cls = classes.get(gw?.spec?.gatewayClassName ?? '');
    if (cls && !cls.problem) gateways.set(key, analyzeGateway(key, gw, objects.grants, secret));
  }
  const routes: RouteAttachment[] = [];
  const add = (kind: GatewayRouteKind, map: ReadonlyMap<string, GatewayRoute>) => {
    for (const key of [...map.keys()].sort()) {
      const attachment = attachRoute(kind, key, map.get(key)!, gateways, objects);
      if (attachment.parents.length > 0) routes.push(attachment);
    }
  };
  add('HTTPRoute', objects.httpRoutes);
  add('GRPCRoute', objects.grpcRoutes);
  return { classes, gateways, routes };
}

function attachRoute(kind: GatewayRouteKind, key: string, route: GatewayRoute, gateways: ReadonlyMap<string, GatewayInfo>, objects: GatewayObjects): RouteAttachment {
  const { namespace, name } = identityOf(key, route);
  const hostnames: string[] = [];
  const badHostnames: string[] = [];
  for (const h of Array.isArray(route?.spec?.hostnames) ? route.spec.hostnames : []) {
    const checked = checkRuleHost(h);
    if (checked.ok) hostnames.push(checked.host);
    else badHostnames.push(String(h));
  }
  const parents: ParentAttachment[] = [];
  const refs = Array.isArray(route?.spec?.parentRefs) ? route.spec.parentRefs : [];
  for (const [index, ref] of refs.entries()) {
    if ((ref?.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP || (ref?.kind ?? 'Gateway') !== 'Gateway') continue;
    const gwNamespace = typeof ref.namespace === 'string' && ref.namespace !== '' ? ref.namespace : namespace;
    const gateway = gateways.get(`${gwNamespace}/${ref.name ?? ''}`);
    if (!gateway) continue;
    parents.push(attachParent(kind, namespace, hostnames, index, ref, gateway, objects));
  }
  return { kind, key, namespace, name, route, parents, badHostnames };
}

function attachParent(
  kind: GatewayRouteKind,
  namespace: string,
  hostnames: readonly string[],
  index: number,
  ref: ParentReference,
  gateway: GatewayInfo,
  objects: GatewayObjects,
): ParentAttachment {
  const shown = `Gateway ${gateway.namespace}/${gateway.name}`;
  const named = gateway.listeners.filter((l) => (ref.sectionName === undefined || l.name === ref.sectionName) && (ref.port === undefined || l.port === ref.port));
  if (named.length === 0) {
    const what = [ref.sectionName !== undefined ? `named ${ref.sectionName}` : '', ref.port !== undefined ? `on port ${ref.port}` : ''].filter(Boolean).join(' ');
    return refused(index, ref, gateway, 'NoMatchingParent', `${shown} has no listener ${what || 'at all'}`);
  }
  const allowed = named.filter((l) => l.attachable && l.supportedKinds.includes(kind) && namespaceAllowed(l, gateway.namespace, namespace, objects.namespaces));
  if (allowed.length === 0) return refused(index, ref, gateway, 'NotAllowedByListeners', `no listener of ${shown} allows ${kind}s from namespace ${namespace}`);
  const listeners: ListenerInfo[] = [];
  const listenerHosts: (string | undefined)[][] = [];
  const hosts = new Set<string | undefined>();
  for (const l of allowed) {
    const served = intersectHostnames(l.hostname, hostnames);
    if (served.length === 0) continue;
    listeners.push(l);
    listenerHosts.push(served);
    for (const h of served) hosts.add(h);
  }
  if (listeners.length === 0) {
    return refused(index, ref, gateway, 'NoMatchingListenerHostname', `no hostname of this ${kind} intersects the hostnames of the listeners of ${shown}`);
  }
  return { index, ref, gateway, listeners, hosts: [...hosts], listenerHosts };
}

function refused(index: number, ref: ParentReference, gateway: GatewayInfo, reason: string, message: string): ParentAttachment {
  return { index, ref, gateway, problem: { reason, message }, listeners: [], hosts: [], listenerHosts: [] };
}

/**
 * The hostnames a route serves on a listener: the route's hostnames that the listener's hostname covers (a
 * wildcard covers one or more labels), each narrowed to the more specific of the two; the listener's hostname
 * when the route names none; undefined (any host) when neither names one.
 */
export function intersectHostnames(listener: string | undefined, route: readonly string[]): (string | undefined)[] {
  if (route.length === 0) return [listener];
  if (listener === undefined) return [...route];
  const out: string[] = [];
  for (const h of route) {
    const narrowed = narrower(listener, h);
    if (narrowed !== undefined && !out.includes(narrowed)) out.push(narrowed);
  }
  return out;
}

function narrower(a: string, b: string): string | undefined {
  if (a === b) return a;
  if (covers(a, b)) return b;
  if (covers(b, a)) return a;
  return undefined;
}

/** True when wildcard `pattern` (`*.example.com`) covers `host` (exact or a narrower wildcard). */
export function covers(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*.')) return false;
  const suffix = pattern.slice(1);
  const rest = host.startsWith('*.') ? host.slice(1) : host;
  return rest.length > suffix.length && rest.endsWith(suffix);
}
