import type { IngressRef, ObjectRef, RouteOwnerKind } from './routes.js';

/**
 * The object a route came from, for readers outside routing: `route.ingress` names an Ingress, an HTTPRoute or a
 * GRPCRoute (`kind` unset means Ingress). Events, keys and labels must carry the kind, or an HTTPRoute would be
 * taken for the Ingress of the same namespace and name.
 */

/** The kind of the route's object. */
export function routeOwnerKind(ref: Pick<IngressRef, 'kind'>): RouteOwnerKind {
  return ref.kind ?? 'Ingress';
}

/** True when the route's object is an Ingress: the only kind Warren writes status, finalizers or `Synced` to. */
export function isIngressOwned(ref: Pick<IngressRef, 'kind'>): boolean {
  return routeOwnerKind(ref) === 'Ingress';
}

/** The route's object as an Event or diagnostic subject. */
export function routeOwnerRef(ref: IngressRef): ObjectRef & { readonly kind: RouteOwnerKind } {
  return { kind: routeOwnerKind(ref), namespace: ref.namespace, name: ref.name, uid: ref.uid || undefined };
}

/**
 * A key for the route's object that no other kind shares: `namespace/name` for an Ingress (as Ingress-keyed state
 * always was), `Kind:namespace/name` for the others (as in their route ids). Kubernetes names hold no `:` or `/`.
 */
export function routeOwnerKey(ref: Pick<IngressRef, 'kind' | 'namespace' | 'name'>): string {
  const key = `${ref.namespace}/${ref.name}`;
  return isIngressOwned(ref) ? key : `${ref.kind}:${key}`;
}

/** `Ingress ns/name`, `HTTPRoute ns/name`: the object as messages and logs name it. */
export function routeOwnerText(ref: Pick<IngressRef, 'kind' | 'namespace' | 'name'>): string {
  return `${routeOwnerKind(ref)} ${ref.namespace}/${ref.name}`;
}
