import { X509Certificate } from 'node:crypto';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { checkRuleHost } from '../routes/hosts.js';
import { referencePermitted } from './grants.js';
import { identityOf, isCoreGroup } from './objects.js';
import { CONTROLLER_NAME, GATEWAY_GROUP, type Gateway, type GatewayClass, type GatewayRouteKind, type LabelSelector, type Listener, type ReferenceGrant } from './types.js';

/**
 * What Warren makes of a Gateway's listeners. Cloudflare's edge terminates TLS and forwards every request through
 * the tunnel, so a listener's TLS settings do not change how requests are served; they are checked so that status
 * says truthfully what is accepted. Which listener a request reaches (its hostname and port) is decided per request
 * on a Gateway's own tunnel (see `listener-precedence.ts`).
 */

/** The route kinds a listener of each supported protocol accepts when `allowedRoutes.kinds` is empty. */
const DEFAULT_KINDS: readonly GatewayRouteKind[] = ['HTTPRoute', 'GRPCRoute'];
const SUPPORTED_PROTOCOLS: ReadonlySet<string> = new Set(['HTTP', 'HTTPS']);

/** A failed listener condition: its reason (a Gateway API reason string) and a message naming the field. */
export interface Problem {
  readonly reason: string;
  readonly message: string;
}

export interface ListenerInfo {
  readonly index: number;
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  /** Lower-case; undefined matches every host. */
  readonly hostname: string | undefined;
  readonly supportedKinds: readonly GatewayRouteKind[];
  /** Set when the listener is not accepted (`UnsupportedProtocol`). */
  readonly notAccepted?: Problem | undefined;
  /** Set when a reference does not resolve (`InvalidRouteKinds`, `InvalidCertificateRef`, `RefNotPermitted`). */
  readonly unresolved?: Problem | undefined;
  /** Set when another listener of the Gateway claims the same port with another protocol, or the same hostname. */
  readonly conflict?: Problem | undefined;
  readonly namespaces: { readonly from: string; readonly selector?: LabelSelector | undefined };
  /** Routes may attach: accepted and not conflicted (unresolved references do not detach routes). */
  readonly attachable: boolean;
}

export interface GatewayInfo {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly gateway: Gateway;
  readonly listeners: readonly ListenerInfo[];
}

/** How Secret references are checked: `undefined` skips the check (the route translation does not read Secrets). */
export type SecretLookup = ((namespace: string, name: string) => V1Secret | undefined) | undefined;

/** True when the GatewayClass names Warren's controller. */
export function isOwnClass(cls: GatewayClass | undefined): boolean {
  return cls?.spec?.controllerName === CONTROLLER_NAME;
}

/** Why Warren does not accept one of its GatewayClasses, or undefined when it does. */
export function classProblem(cls: GatewayClass): Problem | undefined {
  const ref = cls.spec?.parametersRef;
  if (ref && typeof ref === 'object') {
    return { reason: 'InvalidParameters', message: `spec.parametersRef names ${ref.kind ?? '?'} ${ref.name ?? '?'}, but Warren's GatewayClass takes no parameters` };
  }
  return undefined;
}

/** Analyses one Gateway's listeners; `secret` checks certificate Secrets when given. */
export function analyzeGateway(key: string, gateway: Gateway, grants: ReadonlyMap<string, ReferenceGrant>, secret: SecretLookup): GatewayInfo {
  const { namespace, name } = identityOf(key, gateway);
  const specs: Listener[] = Array.isArray(gateway.spec?.listeners) ? gateway.spec.listeners : [];
  const base = specs.map((l, index) => analyzeListener(l, index, namespace, grants, secret));
  const listeners = base.map((l) => {
    const conflict = conflictOf(l, base);
    return conflict ? { ...l, conflict, attachable: false } : l;
  });
  return { key, namespace, name, gateway, listeners };
}

function analyzeListener(l: Listener, index: number, namespace: string, grants: ReadonlyMap<string, ReferenceGrant>, secret: SecretLookup): ListenerInfo {
  const name = typeof l?.name === 'string' ? l.name : `#${index}`;
  const protocol = typeof l?.protocol === 'string' ? l.protocol : '';
  const port = typeof l?.port === 'number' ? l.port : 0;
  const field = `spec.listeners[${index}]`;
  let hostname: string | undefined;
  let notAccepted: Problem | undefined;
  if (typeof l?.hostname === 'string' && l.hostname !== '') {
    const checked = checkRuleHost(l.hostname);
    if (checked.ok) hostname = checked.host;
    else notAccepted = { reason: 'UnsupportedValue', message: `${field}.hostname ${JSON.stringify(l.hostname)} ${checked.problem}` };
  }
  if (!SUPPORTED_PROTOCOLS.has(protocol)) {
    notAccepted = { reason: 'UnsupportedProtocol', message: `${field}.protocol ${JSON.stringify(protocol)} is not supported; Warren serves HTTP and HTTPS listeners` };
  } else if (protocol === 'HTTPS' && l.tls?.mode === 'Passthrough') {
    notAccepted = { reason: 'UnsupportedProtocol', message: `${field}.tls.mode Passthrough is not supported: Cloudflare's edge terminates TLS` };
  }

  // allowedRoutes.kinds: keep the kinds Warren serves; any other makes ResolvedRefs false.
  const wanted = Array.isArray(l?.allowedRoutes?.kinds) ? l.allowedRoutes.kinds : undefined;
  let supportedKinds: GatewayRouteKind[] = [...DEFAULT_KINDS];
  let unresolved: Problem | undefined;
  if (wanted && wanted.length > 0) {
    supportedKinds = [];
    const invalid: string[] = [];
    for (const k of wanted) {
      const group = k?.group ?? GATEWAY_GROUP;
      if (group === GATEWAY_GROUP && (k?.kind === 'HTTPRoute' || k?.kind === 'GRPCRoute')) {
        if (!supportedKinds.includes(k.kind)) supportedKinds.push(k.kind);
      } else invalid.push(`${group}/${k?.kind ?? '?'}`);
    }
    if (invalid.length)
      unresolved = { reason: 'InvalidRouteKinds', message: `${field}.allowedRoutes.kinds: ${invalid.join(', ')} not supported; Warren serves HTTPRoute and GRPCRoute` };
  }
  // A listener of a protocol Warren does not serve supports no route kind at all.
  if (!SUPPORTED_PROTOCOLS.has(protocol)) supportedKinds = [];
  if (!unresolved && protocol === 'HTTPS' && !notAccepted) unresolved = certificateProblem(l, field, namespace, grants, secret);

  const from = typeof l?.allowedRoutes?.namespaces?.from === 'string' ? l.allowedRoutes.namespaces.from : 'Same';
  return {
    index,
    name,
    port,
    protocol,
    hostname,
    supportedKinds,
    notAccepted,
    unresolved,
    namespaces: { from, selector: l?.allowedRoutes?.namespaces?.selector },
    // Unresolved references (certificates, route kinds) leave routes attached: status then counts them, and TLS is
    // terminated at Cloudflare's edge, never with the listener's certificate.
    attachable: notAccepted === undefined,
  };
}

function certificateProblem(l: Listener, field: string, namespace: string, grants: ReadonlyMap<string, ReferenceGrant>, secret: SecretLookup): Problem | undefined {
  const refs = Array.isArray(l.tls?.certificateRefs) ? l.tls.certificateRefs : [];
  if (refs.length === 0) return { reason: 'InvalidCertificateRef', message: `${field}.tls.certificateRefs is empty; an HTTPS listener needs a certificate` };
  for (const [i, ref] of refs.entries()) {
    const at = `${field}.tls.certificateRefs[${i}]`;
    if (!isCoreGroup(ref?.group) || (ref?.kind ?? 'Secret') !== 'Secret') {
      return { reason: 'InvalidCertificateRef', message: `${at} names ${ref?.group || 'core'}/${ref?.kind}; only core Secrets are supported` };
    }
    const ns = typeof ref.namespace === 'string' && ref.namespace !== '' ? ref.namespace : namespace;
    const secretName = ref.name ?? '';
    if (!referencePermitted(grants, { group: GATEWAY_GROUP, kind: 'Gateway', namespace }, { group: '', kind: 'Secret', namespace: ns, name: secretName })) {
      return { reason: 'RefNotPermitted', message: `${at}: Secret ${ns}/${secretName} is in another namespace and no ReferenceGrant there allows it` };
    }
    if (!secret) continue;
    const found = secret(ns, secretName);
    if (!found) return { reason: 'InvalidCertificateRef', message: `${at}: Secret ${ns}/${secretName} not found` };
    if (!validCertificate(found))
      return { reason: 'InvalidCertificateRef', message: `${at}: Secret ${ns}/${secretName} holds no valid PEM certificate and key in tls.crt and tls.key` };
  }
  return undefined;
}

function validCertificate(secret: V1Secret): boolean {
  const crt = secret.data?.['tls.crt'];
  const key = secret.data?.['tls.key'];
  if (typeof crt !== 'string' || typeof key !== 'string') return false;
  try {
    new X509Certificate(Buffer.from(crt, 'base64'));
    return Buffer.from(key, 'base64').toString('latin1').includes('PRIVATE KEY-----');
  } catch {
    return false;
  }
}

function conflictOf(l: ListenerInfo, all: readonly ListenerInfo[]): Problem | undefined {
  for (const other of all) {
    if (other === l || other.port !== l.port || other.notAccepted || l.notAccepted) continue;
    if (other.protocol !== l.protocol)
      return { reason: 'ProtocolConflict', message: `listener ${l.name} and listener ${other.name} use port ${l.port} with different protocols` };
    if (other.hostname === l.hostname)
      return { reason: 'HostnameConflict', message: `listener ${l.name} and listener ${other.name} claim the same hostname on port ${l.port}` };
  }
  return undefined;
}

/** True when a route in `routeNamespace` may attach to `listener` of a Gateway in `gatewayNamespace`. */
export function namespaceAllowed(listener: ListenerInfo, gatewayNamespace: string, routeNamespace: string, namespaces: ReadonlyMap<string, KubernetesObject>): boolean {
  const { from, selector } = listener.namespaces;
  if (from === 'All') return true;
  if (from === 'Same') return routeNamespace === gatewayNamespace;
  if (from === 'Selector') return selector !== undefined && selectorMatches(selector, namespaces.get(routeNamespace)?.metadata?.labels ?? {});
  return false;
}

/** A Kubernetes label selector; an unknown operator matches nothing (fail closed). */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const key = e?.key ?? '';
    const values = Array.isArray(e?.values) ? e.values : [];
    const has = Object.hasOwn(labels, key);
    switch (e?.operator) {
      case 'In':
        if (!has || !values.includes(labels[key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
