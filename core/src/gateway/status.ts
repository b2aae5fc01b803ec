import type { V1Service } from '@kubernetes/client-node';
import { analyzeAttachments, type GatewayAnalysis, type RouteAttachment } from './attach.js';
import { checkBackendRef } from './backend-refs.js';
import type { GatewayInfo, ListenerInfo, Problem, SecretLookup } from './listeners.js';
import { generationOf, type GatewayObjects } from './objects.js';
import { CONTROLLER_NAME, GATEWAY_API_VERSION, GATEWAY_GROUP, SUPPORTED_FEATURES, type GatewayAddress, type ListenerStatus, type ParentReference } from './types.js';

/**
 * The status Warren's objects should carry, computed from the same analysis as the routes (pure; the leader's
 * status writer compares it with what the objects carry and writes the difference).
 *
 * Conditions are given without `lastTransitionTime`: the writer keeps the time of an unchanged condition and
 * stamps a changed one. Every condition carries the object's current `metadata.generation`.
 */

/** A condition as computed (the writer adds `lastTransitionTime`). */
export interface DesiredCondition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

export interface DesiredListenerStatus extends Omit<ListenerStatus, 'conditions'> {
  readonly conditions: readonly DesiredCondition[];
}

export interface GatewayClassDesired {
  readonly name: string;
  readonly conditions: readonly DesiredCondition[];
  /** Set for accepted classes only. */
  readonly supportedFeatures: readonly { readonly name: string }[] | undefined;
}

export interface GatewayDesired {
  readonly key: string;
  readonly addresses: readonly GatewayAddress[];
  readonly conditions: readonly DesiredCondition[];
  readonly listeners: readonly DesiredListenerStatus[];
}

export interface RouteParentDesired {
  readonly parentRef: ParentReference;
  readonly controllerName: string;
  readonly conditions: readonly DesiredCondition[];
}

export interface RouteDesired {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly key: string;
  /** Warren's entries of `status.parents`; other controllers' entries are kept as they are. */
  readonly parents: readonly RouteParentDesired[];
}

export interface GatewayStatusInput {
  readonly objects: GatewayObjects;
  readonly services: ReadonlyMap<string, V1Service>;
  /** Certificate Secrets, for HTTPS listeners' `ResolvedRefs`. */
  readonly secret: SecretLookup;
  /**
   * What each Gateway (by `namespace/name`) publishes as its address: one for all (a shared tunnel or
   * `gateway.publishAddress`), or per Gateway (its own tunnel). Without an address a Gateway is not Programmed yet.
   */
  readonly address: GatewayAddress | undefined | ((gateway: string) => GatewayAddressing);
}

/** A Gateway's address, or why it has none (a Gateway API `Programmed` reason and a message). */
export type GatewayAddressing = { readonly address: GatewayAddress } | { readonly reason: string; readonly message: string };

const NO_TUNNEL_ID: GatewayAddressing = { reason: 'AddressNotAssigned', message: 'the tunnel has no id yet' };

export interface DesiredStatus {
  readonly classes: readonly GatewayClassDesired[];
  readonly gateways: readonly GatewayDesired[];
  readonly routes: readonly RouteDesired[];
}

export function desiredGatewayStatus(input: GatewayStatusInput): DesiredStatus {
  const analysis = analyzeAttachments(input.objects, input.secret);
  return {
    classes: [...analysis.classes.values()].map((c) => {
      const g = generationOf(c.gatewayClass);
      return {
        name: c.name,
        conditions: [
          c.problem
            ? condition('Accepted', false, c.problem.reason, c.problem.message, g)
            : condition('Accepted', true, 'Accepted', `Warren (${CONTROLLER_NAME}) accepts this GatewayClass`, g),
          condition('SupportedVersion', true, 'SupportedVersion', `Warren implements Gateway API ${GATEWAY_API_VERSION} (standard channel)`, g),
        ],
        supportedFeatures: c.problem ? undefined : [...SUPPORTED_FEATURES].sort().map((name) => ({ name })),
      };
    }),
    gateways: [...analysis.gateways.values()].map((gw) => gatewayStatus(gw, analysis, addressingOf(input.address, gw.key))),
    routes: analysis.routes.map((r) => routeStatus(r, input)),
  };
}

function addressingOf(address: GatewayStatusInput['address'], gateway: string): GatewayAddressing {
  if (typeof address === 'function') return address(gateway);
  return address ? { address } : NO_TUNNEL_ID;
}

function gatewayStatus(gw: GatewayInfo, analysis: GatewayAnalysis, addressing: GatewayAddressing): GatewayDesired {
  const address = 'address' in addressing ? addressing.address : undefined;
  const g = generationOf(gw.gateway);
  const attached = new Map<ListenerInfo, number>();
  for (const r of analysis.routes) {
    for (const p of r.parents) {
      if (p.problem || p.gateway !== gw) continue;
      for (const l of p.listeners) attached.set(l, (attached.get(l) ?? 0) + 1);
    }
  }
  const listeners = gw.listeners.map((l) => listenerStatus(l, g, attached.get(l) ?? 0, 'address' in addressing ? undefined : addressing.message));
  const valid = gw.listeners.filter((l) => !l.notAccepted && !l.conflict);
  const allValid = valid.length === gw.listeners.length && gw.listeners.every((l) => !l.unresolved);
  const requested = Array.isArray(gw.gateway.spec?.addresses) ? gw.gateway.spec.addresses : [];
  const conditions: DesiredCondition[] = [];
  if (requested.length > 0) {
    conditions.push(
      condition('Accepted', false, 'UnsupportedAddress', 'spec.addresses is not supported: every Gateway of Warren is reached through its Cloudflare tunnel', g),
    );
  } else if (gw.listeners.length > 0 && valid.length === 0) {
    conditions.push(condition('Accepted', false, 'ListenersNotValid', 'no listener is valid', g));
  } else {
    conditions.push(
      condition('Accepted', true, allValid ? 'Accepted' : 'ListenersNotValid', allValid ? 'Gateway accepted' : 'some listeners are not valid; see status.listeners', g),
    );
  }
  if (conditions[0]!.status === 'False') conditions.push(condition('Programmed', false, 'Invalid', 'the Gateway is not accepted', g));
  else if (!('address' in addressing)) conditions.push(condition('Programmed', false, addressing.reason, addressing.message, g));
  else conditions.push(condition('Programmed', true, 'Programmed', `served through ${addressing.address.value}`, g));
  return { key: gw.key, addresses: address && conditions[0]!.status === 'True' ? [address] : [], conditions, listeners };
}

/** `pending`: why the Gateway has no address yet (undefined once it has one). */
function listenerStatus(l: ListenerInfo, g: number, attachedRoutes: number, pending: string | undefined): DesiredListenerStatus {
  const conditions: DesiredCondition[] = [];
  conditions.push(
    l.notAccepted ? condition('Accepted', false, l.notAccepted.reason, l.notAccepted.message, g) : condition('Accepted', true, 'Accepted', 'listener accepted', g),
  );
  conditions.push(
    l.unresolved ? condition('ResolvedRefs', false, l.unresolved.reason, l.unresolved.message, g) : condition('ResolvedRefs', true, 'ResolvedRefs', 'references resolved', g),
  );
  conditions.push(l.conflict ? condition('Conflicted', true, l.conflict.reason, l.conflict.message, g) : condition('Conflicted', false, 'NoConflicts', 'no conflict', g));
  const problem: Problem | undefined = l.notAccepted ?? l.conflict ?? (l.unresolved && l.unresolved.reason !== 'InvalidRouteKinds' ? l.unresolved : undefined);
  if (problem) conditions.push(condition('Programmed', false, 'Invalid', problem.message, g));
  else if (pending !== undefined) conditions.push(condition('Programmed', false, 'Pending', pending, g));
  else conditions.push(condition('Programmed', true, 'Programmed', 'listener programmed', g));
  return {
    name: l.name,
    supportedKinds: l.supportedKinds.map((kind) => ({ group: GATEWAY_GROUP, kind })),
    attachedRoutes: l.notAccepted ? 0 : attachedRoutes,
    conditions,
  };
}

function routeStatus(r: RouteAttachment, input: GatewayStatusInput): RouteDesired {
  const g = generationOf(r.route);
  const refs = backendProblem(r, input);
  const parents = r.parents.map((p) => ({
    parentRef: parentRefOf(p.ref),
    controllerName: CONTROLLER_NAME,
    conditions: [
      p.problem
        ? condition('Accepted', false, p.problem.reason, p.problem.message, g)
        : condition('Accepted', true, 'Accepted', `attached to Gateway ${p.gateway.namespace}/${p.gateway.name}`, g),
      refs ? condition('ResolvedRefs', false, refs.reason, refs.message, g) : condition('ResolvedRefs', true, 'ResolvedRefs', 'all backendRefs resolved', g),
    ],
  }));
  return { kind: r.kind, key: r.key, parents };
}

/** The first backendRef of the route that cannot be served, if any. */
function backendProblem(r: RouteAttachment, input: GatewayStatusInput): Problem | undefined {
  const rules = Array.isArray(r.route.spec?.rules) ? r.route.spec.rules : [];
  for (const [i, rule] of rules.entries()) {
    const refs = Array.isArray(rule?.backendRefs) ? rule.backendRefs : [];
    for (const [b, ref] of refs.entries()) {
      const checked = checkBackendRef(ref, `spec.rules[${i}].backendRefs[${b}]`, r.kind, r.namespace, input.services, input.objects.grants);
      if (!checked.ok) return checked;
    }
  }
  return undefined;
}

/** The parentRef as written, with only the fields set (status echoes the reference). */
function parentRefOf(ref: ParentReference): ParentReference {
  const out: ParentReference = {};
  if (ref.group !== undefined) out.group = ref.group;
  if (ref.kind !== undefined) out.kind = ref.kind;
  if (ref.namespace !== undefined) out.namespace = ref.namespace;
  out.name = ref.name ?? '';
  if (ref.sectionName !== undefined) out.sectionName = ref.sectionName;
  if (ref.port !== undefined) out.port = ref.port;
  return out;
}

export function condition(type: string, ok: boolean, reason: string, message: string, observedGeneration: number): DesiredCondition {
  return { type, status: ok ? 'True' : 'False', reason, message: message.slice(0, 32_000), observedGeneration };
}
