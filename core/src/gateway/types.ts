import type { KubernetesObject } from '@kubernetes/client-node';

/**
 * The Gateway API objects Warren reads (`gateway.networking.k8s.io`, standard channel v1.6), as the API server
 * sends them: only the fields Warren uses, every one optional, because objects are read without validation
 * (a cache may hold anything the CRD schema let through, and local files hold anything at all).
 */

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** The Gateway API release whose CRDs Warren was built against (GatewayClass `SupportedVersion`). */
export const GATEWAY_API_VERSION = 'v1.6.3';
/** The bundle-version annotation every Gateway API CRD carries. */
export const BUNDLE_VERSION_ANNOTATION = 'gateway.networking.k8s.io/bundle-version';
/** `spec.controllerName` of the GatewayClasses Warren implements. */
export const CONTROLLER_NAME = 'warren.dev/gateway-controller';

/**
 * The core features of the conformance profiles Warren implements (GATEWAY-HTTP, GATEWAY-GRPC).
 */
export const CORE_FEATURES: readonly string[] = ['Gateway', 'HTTPRoute', 'ReferenceGrant', 'GRPCRoute'];

/**
 * The extended features Warren implements: announced in GatewayClass status and declared to the conformance run, in
 * which each must pass. The single list to edit when a feature is added.
 */
export const EXTENDED_FEATURES: readonly string[] = [
  'HTTPRouteQueryParamMatching',
  'HTTPRouteMethodMatching',
  'HTTPRouteResponseHeaderModification',
  'HTTPRoutePortRedirect',
  'HTTPRouteSchemeRedirect',
  'HTTPRoutePathRedirect',
  'HTTPRouteHostRewrite',
  'HTTPRoutePathRewrite',
  'HTTPRoute303RedirectStatusCode',
  'HTTPRoute307RedirectStatusCode',
  'HTTPRoute308RedirectStatusCode',
  'HTTPRouteBackendProtocolH2C',
  'HTTPRouteBackendProtocolWebSocket',
  'HTTPRouteBackendRequestHeaderModification',
  'HTTPRouteRequestTimeout',
  'HTTPRouteBackendTimeout',
  'HTTPRouteNamedRouteRule',
  'BackendTLSPolicy',
  'BackendTLSPolicySANValidation',
  'GatewayHTTPListenerIsolation',
  'GatewayPort8080',
];

/** Conformance features GatewayClass status announces (`status.supportedFeatures`, sorted by name). */
export const SUPPORTED_FEATURES: readonly string[] = [...CORE_FEATURES, ...EXTENDED_FEATURES];

/** The Gateway API kinds Warren watches, as `ClusterSnapshot.extra` keys. */
export const GATEWAY_KINDS = ['GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'ReferenceGrant', 'BackendTLSPolicy'] as const;
export type GatewayKind = (typeof GATEWAY_KINDS)[number];

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number | undefined;
  lastTransitionTime: string;
}

export interface GatewayClass extends KubernetesObject {
  spec?: { controllerName?: string; parametersRef?: { group?: string; kind?: string; name?: string; namespace?: string } };
  status?: { conditions?: Condition[]; supportedFeatures?: Array<{ name: string }> };
}

export interface RouteGroupKind {
  group?: string;
  kind?: string;
}

export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

export interface Listener {
  name?: string;
  hostname?: string;
  port?: number;
  protocol?: string;
  tls?: { mode?: string; certificateRefs?: SecretObjectReference[] };
  allowedRoutes?: {
    namespaces?: { from?: 'All' | 'Same' | 'Selector' | 'None' | string; selector?: LabelSelector };
    kinds?: RouteGroupKind[];
  };
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key?: string; operator?: string; values?: string[] }>;
}

export interface ListenerStatus {
  name: string;
  supportedKinds: Array<{ group?: string; kind: string }>;
  attachedRoutes: number;
  conditions: Condition[];
}

export interface GatewayAddress {
  type?: string;
  value: string;
}

export interface Gateway extends KubernetesObject {
  spec?: { gatewayClassName?: string; listeners?: Listener[]; addresses?: GatewayAddress[] };
  status?: { addresses?: GatewayAddress[]; conditions?: Condition[]; listeners?: ListenerStatus[] };
}

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  sectionName?: string;
  port?: number;
}

export interface BackendRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  port?: number;
  weight?: number;
}

export interface HeaderModifier {
  set?: Array<{ name?: string; value?: string }>;
  add?: Array<{ name?: string; value?: string }>;
  remove?: string[];
}

export interface PathModifier {
  type?: 'ReplaceFullPath' | 'ReplacePrefixMatch' | string;
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  type?: string;
  requestHeaderModifier?: HeaderModifier;
  responseHeaderModifier?: HeaderModifier;
  requestRedirect?: { scheme?: string; hostname?: string; path?: PathModifier; port?: number; statusCode?: number };
  urlRewrite?: { hostname?: string; path?: PathModifier };
}

export interface ValueMatchSpec {
  type?: 'Exact' | 'RegularExpression' | string;
  name?: string;
  value?: string;
}

export interface HTTPRouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression' | string; value?: string };
  headers?: ValueMatchSpec[];
  queryParams?: ValueMatchSpec[];
  method?: string;
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: Array<BackendRef & { filters?: HTTPRouteFilter[] }>;
  timeouts?: { request?: string; backendRequest?: string };
}

export interface RouteParentStatus {
  parentRef: ParentReference;
  controllerName: string;
  conditions: Condition[];
}

export interface HTTPRoute extends KubernetesObject {
  spec?: { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: HTTPRouteRule[] };
  status?: { parents?: RouteParentStatus[] };
}

export interface GRPCMethodMatch {
  type?: 'Exact' | 'RegularExpression' | string;
  service?: string;
  method?: string;
}

export interface GRPCRouteRule {
  name?: string;
  matches?: Array<{ method?: GRPCMethodMatch; headers?: ValueMatchSpec[] }>;
  filters?: HTTPRouteFilter[];
  backendRefs?: Array<BackendRef & { filters?: HTTPRouteFilter[] }>;
}

export interface GRPCRoute extends KubernetesObject {
  spec?: { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: GRPCRouteRule[] };
  status?: { parents?: RouteParentStatus[] };
}

export interface ReferenceGrant extends KubernetesObject {
  spec?: {
    from?: Array<{ group?: string; kind?: string; namespace?: string }>;
    to?: Array<{ group?: string; kind?: string; name?: string }>;
  };
}

export interface BackendTLSPolicy extends KubernetesObject {
  spec?: {
    targetRefs?: Array<{ group?: string; kind?: string; name?: string; sectionName?: string }>;
    validation?: {
      hostname?: string;
      wellKnownCACertificates?: string;
      caCertificateRefs?: Array<{ group?: string; kind?: string; name?: string }>;
      subjectAltNames?: Array<{ type?: string; hostname?: string; uri?: string }>;
    };
  };
  status?: { ancestors?: PolicyAncestorStatus[] };
}

/** One entry of a policy's `status.ancestors`. */
export interface PolicyAncestorStatus {
  ancestorRef: ParentReference;
  controllerName: string;
  conditions: Condition[];
}

/** Either route kind, with the fields both share. */
export type GatewayRoute = HTTPRoute | GRPCRoute;
export type GatewayRouteKind = 'HTTPRoute' | 'GRPCRoute';
