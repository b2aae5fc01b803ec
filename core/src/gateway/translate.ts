import type { BackendFound } from '../routes/backends.js';
import { BACKEND_PROTOCOL } from '../routes/core-annotations.js';
import { parseIngressAnnotations, type ParsedAnnotations } from '../routes/ingress-annotations.js';
import { checkRulePath, type MatchKind } from '../routes/paths.js';
import { chooseProtocol } from '../routes/protocol.js';
import type { RouteSourceContext, SourcedCandidate, SourcedRoutes } from '../routes/sources.js';
import type { Diagnostic, IngressRef, ListenerScope, ObjectRef, PathType, RequestConditions, Route, RouteFilters, ServiceBackend, ValueMatch } from '../routes/types.js';
import type { GatewayAnalysis, RouteAttachment } from './attach.js';
import { checkBackendRef } from './backend-refs.js';
import { policiesByService, policyFor } from './backend-tls.js';
import { combineFilters, convertFilters, parseGatewayDuration } from './filters.js';
import { listenerScope } from './listener-precedence.js';
import type { Problem } from './listeners.js';
import { creationStampOf, creationTimeOf, generationOf, type GatewayObjects } from './objects.js';
import type { BackendRef, GRPCRouteRule, HTTPRouteFilter, HTTPRouteMatch, HTTPRouteRule, ValueMatchSpec } from './types.js';

/**
 * Turns the HTTPRoutes and GRPCRoutes attached to Warren's Gateways into candidate routes of the one route table.
 *
 * Each rule × match × backendRef becomes a {@link Route} with id `HTTPRoute:ns/name#r<rule>/m<match>[/b<backend>]`,
 * once per hostname the route serves through its accepted parents. The routes of a rule with several backendRefs
 * share `weight.group` (the rule's id) and the matcher picks one per request in proportion to their weights. A
 * backendRef that cannot be served (not a Service, not permitted, not found) keeps its share and answers 500; a
 * rule without backendRefs and without a redirect answers 500; a rule Warren cannot implement as written (an
 * unsupported filter or match) answers 500 on all its matches and gets a Warning — never served partially.
 */

/** The gRPC protocol GRPCRoute backends speak unless their Service port's `appProtocol` names another. */
const GRPC_PROTOCOL = 'grpc';
/** Candidate order: rule index × this + match index. */
const RULE_STRIDE = 10_000;
const NONE: readonly never[] = Object.freeze([]);

interface RouteContext {
  readonly attachment: RouteAttachment;
  readonly ref: IngressRef;
  readonly object: ObjectRef;
  readonly time: number;
  readonly owner: string;
  /** Where the route's requests come in: each hostname, per Gateway when Gateways have tunnels of their own. */
  readonly targets: readonly Target[];
  readonly diagnostics: Diagnostic[];
  readonly services: Set<string>;
  readonly ctx: RouteSourceContext;
  readonly objects: GatewayObjects;
  /** The object's `warren.dev/` annotations: plugin settings, as on an Ingress. */
  readonly annotations: ParsedAnnotations;
  /** Set when an annotation is invalid: every route of the object answers 500 (fail closed, as for Ingress). */
  readonly rejected: Problem | undefined;
  /** BackendTLSPolicies by target Service. */
  readonly tlsPolicies: ReturnType<typeof policiesByService>;
}

/**
 * A hostname the route serves (undefined: any), the Gateway whose own tunnel serves it (undefined: shared) and the
 * listeners of that Gateway it is attached through for that hostname.
 */
interface Target {
  readonly host: string | undefined;
  readonly gateway: string | undefined;
  readonly listeners: readonly ListenerScope[] | undefined;
}

/** How the translation scopes routes: see {@link translateGatewayRoutes}. */
export interface GatewayTranslateOptions {
  /** Each Gateway has a tunnel of its own: every route is emitted per parent Gateway, with {@link Route.gateway}. */
  readonly perGatewayTunnels?: boolean | undefined;
}

/** One match of a rule, in the terms of the route model. */
interface MatchSpec {
  readonly path: string;
  readonly pathType: PathType;
  readonly kind: MatchKind;
  readonly key: string;
  readonly conditions: RequestConditions | undefined;
}

export function translateGatewayRoutes(analysis: GatewayAnalysis, objects: GatewayObjects, ctx: RouteSourceContext, options: GatewayTranslateOptions = {}): SourcedRoutes {
  const candidates: SourcedCandidate[] = [];
  const diagnostics: Diagnostic[] = [];
  const services = new Set<string>();
  const tlsPolicies = policiesByService(objects.tlsPolicies);
  for (const attachment of analysis.routes) {
    const targets = targetsOf(attachment, options.perGatewayTunnels === true);
    const { kind, namespace, name, route } = attachment;
    const uid = typeof route.metadata?.uid === 'string' ? route.metadata.uid : '';
    const object: ObjectRef = { kind, namespace, name, uid: uid || undefined };
    for (const h of attachment.badHostnames)
      diagnostics.push(
        warning(object, 'InvalidHost', `${kind} ${namespace}/${name}: spec.hostnames entry ${JSON.stringify(h)} is not a valid hostname; ignored`, 'spec.hostnames'),
      );
    for (const p of attachment.parents) {
      if (p.problem)
        diagnostics.push(warning(object, p.problem.reason, `${kind} ${namespace}/${name}: spec.parentRefs[${p.index}]: ${p.problem.message}`, `spec.parentRefs[${p.index}]`));
    }
    if (targets.length === 0) continue;
    // The same `warren.dev/` annotations as on an Ingress configure the plugins for this route's requests.
    const annotations = parseIngressAnnotations(route.metadata?.annotations, namespace, ctx.plugins);
    for (const p of annotations.problems) {
      diagnostics.push(warning(object, 'InvalidAnnotation', `${kind} ${namespace}/${name}: ${p.message}; all its routes answer 500`, `metadata.annotations["${p.key}"]`));
    }
    const rejected = annotations.problems.length > 0 ? { reason: 'InvalidAnnotation', message: annotations.problems.map((p) => p.message).join('; ') } : undefined;
    const rc: RouteContext = {
      attachment,
      ref: Object.freeze({ kind, namespace, name, uid, creationTimestamp: creationStampOf(route), generation: generationOf(route) }),
      object,
      time: creationTimeOf(route),
      owner: `${kind}/${namespace}/${name}`,
      targets,
      diagnostics,
      services,
      ctx,
      objects,
      annotations,
      rejected,
      tlsPolicies,
    };
    const rules = (Array.isArray(route.spec?.rules) ? route.spec.rules : []) as Array<HTTPRouteRule | GRPCRouteRule>;
    for (const [i, rule] of rules.entries()) translateRule(rc, rule, i, candidates);
  }
  return { candidates, diagnostics, services: [...services] };
}

/**
 * The hostnames a route serves through its accepted parents. Shared tunnel: each hostname once (listeners are not
 * told apart: which Gateway a request was sent to is unknown). Tunnel per Gateway: each (Gateway, hostname) once,
 * with the listeners it is attached through for that hostname, so a route attached to two Gateways is served
 * through both tunnels, a Gateway's tunnel serves nothing of a route that is not attached to it, and a request
 * takes the route only through one of those listeners.
 */
function targetsOf(attachment: RouteAttachment, perGateway: boolean): Target[] {
  const seen = new Map<string, { host: string | undefined; gateway: string | undefined; listeners: ListenerScope[] | undefined }>();
  for (const p of attachment.parents) {
    if (p.problem) continue;
    const gateway = perGateway ? p.gateway.key : undefined;
    for (const [i, listener] of p.listeners.entries()) {
      for (const host of p.listenerHosts[i] ?? NONE) {
        const key = `${gateway ?? ''}\u0000${host ?? ''}`;
        let target = seen.get(key);
        if (!target) seen.set(key, (target = { host, gateway, listeners: gateway === undefined ? undefined : [] }));
        if (target.listeners && !target.listeners.some((s) => s.name === listener.name)) target.listeners.push(listenerScope(p.gateway, listener));
      }
    }
  }
  return [...seen.values()];
}

function translateRule(rc: RouteContext, rule: HTTPRouteRule | GRPCRouteRule, i: number, out: SourcedCandidate[]): void {
  const { kind, namespace, name } = rc.attachment;
  const shown = `${kind} ${namespace}/${name}`;
  const field = `spec.rules[${i}]`;
  const ruleId = `${kind}:${namespace}/${name}#r${i}`;
  const matches = kind === 'GRPCRoute' ? grpcMatches(rule as GRPCRouteRule, field) : httpMatches(rule as HTTPRouteRule, field);
  let problem: Problem | undefined = rc.rejected ?? (matches.ok ? undefined : matches);
  const specs = matches.ok ? matches.specs : [{ path: '/', pathType: 'Prefix' as const, kind: 'prefix' as const, key: '', conditions: undefined }];
  const prefixOnly = specs.every((m) => m.kind === 'prefix');
  const converted = convertFilters(rule?.filters as HTTPRouteFilter[] | undefined, `${field}.filters`, prefixOnly);
  if (!problem && !converted.ok) problem = converted;
  const ruleFilters = converted.ok ? converted.filters : undefined;
  const timeouts = kind === 'HTTPRoute' ? ruleTimeouts(rc, rule as HTTPRouteRule, field) : undefined;
  if (problem && !rc.rejected)
    rc.diagnostics.push(warning(rc.object, problem.reason === 'UnsupportedValue' ? 'UnsupportedFeature' : problem.reason, `${shown}: ${problem.message}`, field));

  // Each backendRef: a served backend, or why it answers 500.
  const refs = (Array.isArray(rule?.backendRefs) ? rule.backendRefs : []) as Array<BackendRef & { filters?: HTTPRouteFilter[] }>;
  const backends = refs.map((ref, b) => backendOf(rc, ref, `${field}.backendRefs[${b}]`, prefixOnly));
  const weighted = backends.length > 1 || backends.some((b) => b.weight === 0);

  for (const [j, m] of specs.entries()) {
    const matchId = `${ruleId}/m${j}`;
    const emit = (id: string, make: (host: string | undefined) => Route) => {
      for (const { host, gateway, listeners } of rc.targets) {
        const route = gateway === undefined ? make(host) : { ...make(host), gateway, listeners };
        out.push({ route, hostKey: host ?? '', kind: m.kind, key: m.key, ruleIndex: i, pathIndex: j, time: rc.time, owner: rc.owner, order: i * RULE_STRIDE + j });
      }
      void id;
    };
    const base = (id: string, host: string | undefined): Omit<Route, 'backend' | 'protocol'> => ({
      id,
      ingress: rc.ref,
      host,
      path: m.path,
      pathType: m.pathType,
      annotations: rc.annotations.values,
      secretRefs: rc.annotations.secretRefs,
      source: 'rule',
      conditions: m.conditions,
      timeouts,
    });
    if (problem) {
      emit(matchId, (host) => ({ ...base(matchId, host), ...failed(namespace, problem.reason, problem.message) }));
      continue;
    }
    if (backends.length === 0) {
      if (ruleFilters?.redirect) {
        emit(matchId, (host) => ({ ...base(matchId, host), backend: placeholder(namespace, '', 0), protocol: 'http', filters: ruleFilters }));
      } else {
        const message = `${shown}: ${field} has no backendRefs`;
        emit(matchId, (host) => ({ ...base(matchId, host), ...failed(namespace, 'NoBackends', message) }));
      }
      continue;
    }
    for (const [b, backend] of backends.entries()) {
      const id = `${matchId}/b${b}`;
      const weight = weighted ? { group: `${ruleId}/m${j}`, weight: backend.weight } : undefined;
      const filters = combineFilters(ruleFilters, backend.filters);
      emit(id, (host) =>
        backend.ok
          ? {
              ...base(id, host),
              annotations: backend.annotations.values,
              secretRefs: backend.annotations.secretRefs,
              backend: backend.found.backend,
              protocol: backend.protocol,
              filters,
              weight,
            }
          : { ...base(id, host), ...failed(namespace, backend.reason, backend.message, backend.placeholder), filters, weight },
      );
    }
  }
}

type BackendOutcome =
  | {
      readonly ok: true;
      readonly found: BackendFound;
      readonly protocol: string;
      readonly weight: number;
      readonly filters: RouteFilters | undefined;
      /** The object's annotations, with a BackendTLSPolicy's settings for this backend when one applies. */
      readonly annotations: ParsedAnnotations;
    }
  | {
      readonly ok: false;
      readonly reason: string;
      readonly message: string;
      readonly weight: number;
      readonly filters: RouteFilters | undefined;
      readonly placeholder: ServiceBackend;
    };

function backendOf(rc: RouteContext, ref: BackendRef & { filters?: HTTPRouteFilter[] }, field: string, prefixOnly: boolean): BackendOutcome {
  const { kind, namespace, name } = rc.attachment;
  const shown = `${kind} ${namespace}/${name}`;
  const weight = typeof ref?.weight === 'number' && ref.weight >= 0 ? ref.weight : 1;
  const converted = convertFilters(ref?.filters, `${field}.filters`, prefixOnly);
  const filters = converted.ok ? converted.filters : undefined;
  const fail = (reason: string, message: string, ns = namespace, svc = '', port = 0): BackendOutcome => {
    rc.diagnostics.push(warning(rc.object, reason, `${shown}: ${message}`, field));
    return { ok: false, reason, message, weight, filters, placeholder: placeholder(ns, svc, port) };
  };
  if (!converted.ok) return fail('UnsupportedFeature', converted.message);
  const checked = checkBackendRef(ref, field, kind, namespace, rc.ctx.services, rc.objects.grants);
  const refNs = typeof ref?.namespace === 'string' && ref.namespace !== '' ? ref.namespace : namespace;
  if (typeof ref?.name === 'string' && ref.name !== '' && (checked.ok || checked.reason !== 'InvalidKind')) rc.services.add(`${refNs}/${ref.name}`);
  if (!checked.ok) return fail(checked.reason, checked.message, refNs, typeof ref?.name === 'string' ? ref.name : '', typeof ref?.port === 'number' ? ref.port : 0);
  const found = rc.ctx.resolver.resolve(rc.ctx.services, checked.namespace, checked.name, checked.port);
  if (!found.ok) return fail('BackendNotFound', `${field}: ${found.message}`, checked.namespace, checked.name, checked.port);
  let annotations = rc.annotations;
  const policy = policyFor(rc.tlsPolicies, `${checked.namespace}/${checked.name}`, found.backend.portName, (ns, n) => rc.objects.configMaps.get(`${ns}/${n}`));
  if (policy && !policy.ok) return fail(policy.reason, `${field}: ${policy.message}`, checked.namespace, checked.name, checked.port);
  if (policy?.ok) {
    // The policy's settings join the route's own annotations, checked by the tls plugin's schemas.
    annotations = parseIngressAnnotations({ ...rc.attachment.route.metadata?.annotations, ...policy.annotations }, namespace, rc.ctx.plugins);
    if (annotations.problems.length > 0) {
      return fail(
        'InvalidBackendTLSPolicy',
        `${field}: ${policy.policy} cannot apply: ${annotations.problems.map((p) => p.message).join('; ')}`,
        checked.namespace,
        checked.name,
        checked.port,
      );
    }
  }
  let protocol = chooseProtocol(BACKEND_PROTOCOL.get({ annotations: annotations.values }), found.backend, rc.ctx.plugins);
  if (kind === 'GRPCRoute' && protocol === 'http') protocol = GRPC_PROTOCOL;
  if (!rc.ctx.plugins.serves(protocol)) {
    const owner = rc.ctx.plugins.disabledProtocolOwner(protocol);
    return fail(
      'ProtocolUnavailable',
      `${field}: backend protocol "${protocol}" ${owner ? `needs plugin ${owner}, which is disabled` : 'is served by no enabled plugin'}`,
      checked.namespace,
      checked.name,
      checked.port,
    );
  }
  return { ok: true, found, protocol, weight, filters, annotations };
}

function httpMatches(rule: HTTPRouteRule, field: string): { ok: true; specs: MatchSpec[] } | ({ ok: false } & Problem) {
  const list: HTTPRouteMatch[] = Array.isArray(rule?.matches) && rule.matches.length > 0 ? rule.matches : [{}];
  const specs: MatchSpec[] = [];
  for (const [j, m] of list.entries()) {
    const at = `${field}.matches[${j}]`;
    const type = m?.path?.type ?? 'PathPrefix';
    if (type !== 'PathPrefix' && type !== 'Exact')
      return { ok: false, reason: 'UnsupportedValue', message: `${at}.path.type ${JSON.stringify(type)} is not supported (Exact, PathPrefix)` };
    const checked = checkRulePath(m?.path?.value ?? '/', type === 'Exact' ? 'Exact' : 'Prefix');
    if (!checked.ok) return { ok: false, reason: 'UnsupportedValue', message: `${at}.path.value ${checked.problem}` };
    const headers = valueMatches(m?.headers, true);
    const query = valueMatches(m?.queryParams, false);
    if (!headers.ok) return { ok: false, reason: 'UnsupportedValue', message: `${at}.headers: ${headers.message}` };
    if (!query.ok) return { ok: false, reason: 'UnsupportedValue', message: `${at}.queryParams: ${query.message}` };
    const method = typeof m?.method === 'string' && m.method !== '' ? m.method.toUpperCase() : undefined;
    specs.push({ path: checked.path, pathType: checked.pathType, kind: checked.kind, key: checked.key, conditions: conditionsOf(method, headers.list, query.list) });
  }
  return { ok: true, specs };
}

/**
 * GRPCRoute method matches as paths: service and method → the exact path `/service/method`; service alone → the
 * prefix `/service`. A method without a service, and regular expressions, have no path form: unsupported.
 */
function grpcMatches(rule: GRPCRouteRule, field: string): { ok: true; specs: MatchSpec[] } | ({ ok: false } & Problem) {
  const list = Array.isArray(rule?.matches) && rule.matches.length > 0 ? rule.matches : [{}];
  const specs: MatchSpec[] = [];
  for (const [j, m] of list.entries()) {
    const at = `${field}.matches[${j}]`;
    const method = m?.method;
    let path = '/';
    let exact = false;
    if (method) {
      if ((method.type ?? 'Exact') !== 'Exact')
        return { ok: false, reason: 'UnsupportedValue', message: `${at}.method.type ${JSON.stringify(method.type)} is not supported (Exact)` };
      if (!method.service) return { ok: false, reason: 'UnsupportedValue', message: `${at}.method: a method without a service is not supported` };
      path = method.method ? `/${method.service}/${method.method}` : `/${method.service}`;
      exact = Boolean(method.method);
    }
    const checked = checkRulePath(path, exact ? 'Exact' : 'Prefix');
    if (!checked.ok) return { ok: false, reason: 'UnsupportedValue', message: `${at}.method ${checked.problem}` };
    const headers = valueMatches(m?.headers, true);
    if (!headers.ok) return { ok: false, reason: 'UnsupportedValue', message: `${at}.headers: ${headers.message}` };
    specs.push({ path: checked.path, pathType: checked.pathType, kind: checked.kind, key: checked.key, conditions: conditionsOf(undefined, headers.list, []) });
  }
  return { ok: true, specs };
}

function valueMatches(list: ValueMatchSpec[] | undefined, lowerNames: boolean): { ok: true; list: ValueMatch[] } | { ok: false; message: string } {
  const out: ValueMatch[] = [];
  for (const v of Array.isArray(list) ? list : []) {
    const type = v?.type ?? 'Exact';
    if (type !== 'Exact' && type !== 'RegularExpression') return { ok: false, message: `match type ${JSON.stringify(type)} is not supported` };
    if (typeof v.name !== 'string' || v.name === '') return { ok: false, message: 'a match needs a name' };
    const name = lowerNames ? v.name.toLowerCase() : v.name;
    // The first match of a name counts (the spec ignores later ones).
    if (out.some((o) => o.name === name)) continue;
    out.push({ name, type, value: String(v.value ?? '') });
  }
  return { ok: true, list: out };
}

function conditionsOf(method: string | undefined, headers: readonly ValueMatch[], query: readonly ValueMatch[]): RequestConditions | undefined {
  if (method === undefined && headers.length === 0 && query.length === 0) return undefined;
  return { method, headers: headers.length ? headers : undefined, query: query.length ? query : undefined };
}

function ruleTimeouts(rc: RouteContext, rule: HTTPRouteRule, field: string): Route['timeouts'] {
  const t = rule?.timeouts;
  if (!t) return undefined;
  const read = (key: 'request' | 'backendRequest') => {
    if (t[key] === undefined) return undefined;
    const ms = parseGatewayDuration(t[key]);
    if (ms === undefined)
      rc.diagnostics.push(
        warning(rc.object, 'InvalidTimeout', `${rc.owner}: ${field}.timeouts.${key} ${JSON.stringify(t[key])} is not a duration; ignored`, `${field}.timeouts.${key}`),
      );
    return ms === 0 ? undefined : ms;
  };
  const request = read('request');
  const backendRequest = read('backendRequest');
  return request === undefined && backendRequest === undefined ? undefined : { request, backendRequest };
}

function placeholder(namespace: string, service: string, port: number): ServiceBackend {
  return { namespace, service, port, endpoints: NONE };
}

function failed(namespace: string, reason: string, message: string, backend?: ServiceBackend): Pick<Route, 'backend' | 'protocol' | 'unresolved'> {
  return { backend: backend ?? placeholder(namespace, '', 0), protocol: 'http', unresolved: { reason, message, status: 500 } };
}

function warning(object: ObjectRef, reason: string, message: string, field?: string): Diagnostic {
  return field === undefined ? { type: 'Warning', reason, message, object } : { type: 'Warning', reason, message, object, field };
}
