import type { V1Ingress, V1IngressClass, V1Service } from '@kubernetes/client-node';
import { ANNOTATION_PREFIX } from '../plugin-api/manifest.js';
import type { BackendFound, BackendResolver, PortRef } from './backends.js';
import { AUTO_PROTOCOL, BACKEND_PROTOCOL } from './core-annotations.js';
import { checkRuleHost } from './hosts.js';
import { parseIngressAnnotations, show } from './ingress-annotations.js';
import { classifyIngress, LEGACY_CLASS_ANNOTATION, type IngressClassConfig } from './ingress-class.js';
import { checkRulePath, type MatchKind } from './paths.js';
import type { RoutingPlugins } from './plugins.js';
import { chooseProtocol } from './protocol.js';
import { snapshotKey } from './snapshot.js';
import type { BackendProtocol, Diagnostic, IngressRef, ObjectRef, PathType, Route, RouteSource, ServiceBackend } from './types.js';

/**
 * Translates one Ingress into a {@link Fragment}: its candidate routes and its diagnostics. Fragments are cached
 * by the builder and translated again only when the Ingress, a Service or EndpointSlice it uses, or the IngressClasses
 * change. Conflicts between Ingresses are resolved later, per host.
 */

/** Most path entries one Ingress may hold; beyond it the whole Ingress is skipped (a hostile object). */
export const MAX_PATHS_PER_INGRESS = 5000;

/** Host key of Ingress default backends in the per-host candidate lists. */
export const DEFAULT_HOST_KEY = '#default';
/** Host key of rules without host. */
export const HOSTLESS_KEY = '';

/** A route before conflict resolution, with what the per-host index needs. */
export interface Candidate {
  readonly route: Route;
  /** Exact host, `*.parent` for wildcards, {@link HOSTLESS_KEY} or {@link DEFAULT_HOST_KEY}. */
  readonly hostKey: string;
  readonly kind: MatchKind;
  /** Exact path, or the prefix without trailing slash (`''` for `/`). */
  readonly key: string;
  /** Rule and path position (`-1` for `spec.defaultBackend`); see {@link candidateField}. */
  readonly ruleIndex: number;
  readonly pathIndex: number;
}

/** The backend field of a candidate: `spec.rules[0].http.paths[1].backend`, or `spec.defaultBackend` itself. */
function backendField(c: Pick<Candidate, 'ruleIndex' | 'pathIndex'>): string {
  return c.ruleIndex < 0 ? 'spec.defaultBackend' : `${candidateField(c)}.backend`;
}

/** Where a candidate was declared, e.g. `spec.rules[0].http.paths[1]` or `spec.defaultBackend`. */
export function candidateField(c: Pick<Candidate, 'ruleIndex' | 'pathIndex'>): string {
  return c.ruleIndex < 0 ? 'spec.defaultBackend' : `spec.rules[${c.ruleIndex}].http.paths[${c.pathIndex}]`;
}

export interface Fragment {
  readonly key: string;
  /** The object this fragment was translated from (identity is the cache key). */
  readonly source: V1Ingress;
  readonly owned: boolean;
  readonly ref: IngressRef | undefined;
  /** Conflict order: older first (ms since epoch; Infinity when unknown), then `namespace/name`. */
  readonly time: number;
  readonly candidates: readonly Candidate[];
  readonly diagnostics: readonly Diagnostic[];
  /** Keys of the Services this Ingress references (resolved or not). */
  readonly services: readonly string[];
  /**
   * The Warnings that rejected the whole Ingress for its `warren.dev/` annotations (an invalid or unknown key, or
   * a backend protocol no enabled plugin serves); set only then. See {@link keepLastGood}.
   */
  readonly rejectedBy?: readonly Diagnostic[] | undefined;
}

export interface TranslateContext {
  readonly services: ReadonlyMap<string, V1Service>;
  readonly classes: ReadonlyMap<string, V1IngressClass>;
  readonly defaultClasses: readonly V1IngressClass[];
  readonly resolver: BackendResolver;
  readonly ingressClass: IngressClassConfig;
  readonly plugins: RoutingPlugins;
}

const NONE: readonly never[] = Object.freeze([]);
/** How a Warning that rejects a whole Ingress ends; {@link keepLastGood} rewrites it. */
const ALL_SKIPPED = '; all routes of this Ingress are skipped';

/**
 * The fragment to use when the current version of an Ingress was rejected for its annotations (`rejected`) but an
 * earlier version of the same object (`good`, translated now, against the current Services and endpoints) was not:
 * the earlier version's routes and diagnostics, ownership under the current version, and the rejecting Warnings
 * saying that the last good version is still served.
 */
export function keepLastGood(rejected: Fragment, good: Fragment): Fragment {
  const now = rejected.ref?.generation ?? 0;
  const then = good.ref?.generation ?? 0;
  // Objects from files (local mode) carry no generation: then the message cannot name them.
  const versions =
    now > 0 && then > 0 && now !== then
      ? `generation ${now} is not applied: Warren keeps serving the last good version (generation ${then})`
      : 'this version is not applied: Warren keeps serving the last good version';
  const kept = `; ${versions} until this is fixed`;
  const warnings = (rejected.rejectedBy ?? NONE).map((d) => ({ ...d, message: d.message.slice(0, -ALL_SKIPPED.length) + kept }));
  return {
    ...good,
    source: rejected.source,
    ref: rejected.ref,
    time: rejected.time,
    diagnostics: [...warnings, ...good.diagnostics],
    rejectedBy: rejected.rejectedBy,
  };
}

/** Translates an Ingress; never throws (an unexpected failure becomes an `InvalidObject` Warning). */
export function translateIngress(key: string, ingress: V1Ingress, ctx: TranslateContext): Fragment {
  try {
    return translate(key, ingress, ctx);
  } catch (err) {
    const { namespace, name } = identity(key, ingress);
    return {
      key,
      source: ingress,
      owned: true,
      ref: ingressRef(namespace, name, ingress),
      time: creationTime(ingress),
      candidates: NONE,
      services: NONE,
      diagnostics: [
        warning(
          { kind: 'Ingress', namespace, name, uid: stringOr(ingress?.metadata?.uid) },
          'InvalidObject',
          `Ingress ${namespace}/${name} could not be processed (${(err as Error)?.message ?? String(err)}); all its routes are skipped`,
        ),
      ],
    };
  }
}

function translate(key: string, ingress: V1Ingress, ctx: TranslateContext): Fragment {
  const { namespace, name } = identity(key, ingress);
  const time = creationTime(ingress);
  if (typeof ingress !== 'object' || ingress === null) {
    return { key, source: ingress, owned: false, ref: undefined, time, candidates: NONE, diagnostics: NONE, services: NONE };
  }
  const cls = classifyIngress(ingress, ctx.classes, ctx.ingressClass, ctx.defaultClasses);
  if (!cls.owned) return { key, source: ingress, owned: false, ref: undefined, time, candidates: NONE, diagnostics: NONE, services: NONE };

  const ref = ingressRef(namespace, name, ingress);
  const object: ObjectRef = { kind: 'Ingress', namespace, name, uid: ref.uid || undefined };
  const shown = `Ingress ${namespace}/${name}`;
  const diagnostics: Diagnostic[] = [];
  const candidates: Candidate[] = [];
  // Backends always live in the Ingress's namespace: collect Service names, make keys once at the end.
  const serviceNames = new Set<string>();
  const fragment = (): Fragment => ({
    key,
    source: ingress,
    owned: true,
    ref,
    time,
    candidates,
    diagnostics,
    services: serviceNames.size === 0 ? NONE : [...serviceNames].map((n) => snapshotKey(namespace, n)),
  });

  if (cls.conflict) {
    diagnostics.push(warning(object, 'IngressClassConflict', `${shown}: ${cls.conflict}`, `metadata.annotations["${LEGACY_CLASS_ANNOTATION}"]`));
  }
  const spec = ingress.spec;
  if (spec !== undefined && (typeof spec !== 'object' || spec === null)) {
    diagnostics.push(warning(object, 'InvalidObject', `${shown}: spec must be an object; all its routes are skipped`, 'spec'));
    return fragment();
  }
  if (Array.isArray(spec?.tls) && spec.tls.length > 0) {
    diagnostics.push(warning(object, 'TLSIgnored', `${shown}: spec.tls is ignored; Cloudflare's edge terminates TLS with its own certificates`, 'spec.tls'));
  }

  // Annotations apply to the whole Ingress: any problem skips every route (fail closed).
  const annotations = parseIngressAnnotations(ingress.metadata?.annotations, namespace, ctx.plugins);
  let failClosed = annotations.problems.length > 0;
  for (const p of annotations.problems) {
    diagnostics.push(warning(object, 'InvalidAnnotation', `${shown}: ${p.message}${ALL_SKIPPED}`, annotationField(p.key)));
  }
  const annotatedProtocol = BACKEND_PROTOCOL.get({ annotations: annotations.values });
  if (annotatedProtocol !== undefined && annotatedProtocol !== AUTO_PROTOCOL && !ctx.plugins.serves(annotatedProtocol)) {
    failClosed = true;
    diagnostics.push(
      warning(
        object,
        'ProtocolUnavailable',
        `${shown}: backend protocol "${annotatedProtocol}" ${unavailable(annotatedProtocol, ctx.plugins)}${ALL_SKIPPED}`,
        annotationField(`${ANNOTATION_PREFIX}backend-protocol`),
      ),
    );
  }

  const rules = spec?.rules;
  if (rules !== undefined && rules !== null && !Array.isArray(rules)) {
    diagnostics.push(warning(object, 'InvalidObject', `${shown}: spec.rules must be a list; all its routes are skipped`, 'spec.rules'));
    return fragment();
  }
  const ruleList = rules ?? [];
  let pathCount = 0;
  for (const rule of ruleList) {
    const paths = rule?.http?.paths;
    if (Array.isArray(paths)) pathCount += paths.length;
  }
  if (pathCount > MAX_PATHS_PER_INGRESS) {
    diagnostics.push(
      warning(
        object,
        'TooManyPaths',
        `${shown}: declares ${pathCount} paths, more than the ${MAX_PATHS_PER_INGRESS} one Ingress may hold; all its routes are skipped (split it into several Ingresses)`,
        'spec.rules',
      ),
    );
    return fragment();
  }
  const defaultBackend = spec?.defaultBackend;
  if (ruleList.length === 0 && (defaultBackend === undefined || defaultBackend === null)) {
    diagnostics.push(warning(object, 'InvalidObject', `${shown}: has neither spec.rules nor spec.defaultBackend; nothing to route`, 'spec'));
    return fragment();
  }
  if (failClosed) return { ...fragment(), rejectedBy: diagnostics.filter((d) => d.message.endsWith(ALL_SKIPPED)) };

  const base = { ingress: ref, annotations: annotations.values, secretRefs: annotations.secretRefs };
  const consequence = (position: Pick<Candidate, 'ruleIndex' | 'pathIndex'>): string =>
    position.ruleIndex < 0 ? 'unmatched requests get 503' : 'requests to this path get 503';
  /**
   * A route that holds the place of a path whose backend cannot be served: it has no endpoints, so the proxy
   * answers 503 there rather than letting the request fall through to a broader route.
   */
  const placeholder = (
    id: string,
    host: string | undefined,
    path: string,
    pathType: PathType,
    source: RouteSource,
    backend: ServiceBackend,
    unresolved: { reason: string; message: string },
  ): Route => {
    const protocol = annotatedProtocol !== undefined && annotatedProtocol !== AUTO_PROTOCOL ? (annotatedProtocol as BackendProtocol) : 'http';
    return Object.freeze({ id, host, path, pathType, backend: Object.freeze({ ...backend, endpoints: NONE }), protocol, source, unresolved, ...base });
  };
  const makeRoute = (
    id: string,
    host: string | undefined,
    path: string,
    pathType: PathType,
    resolved: Resolved,
    source: RouteSource,
    position: Pick<Candidate, 'ruleIndex' | 'pathIndex'>,
  ): Route => {
    if (!resolved.ok) {
      const field = `${backendField(position)}${resolved.field ? `.${resolved.field}` : ''}`;
      const message = `${shown}: ${field}: ${resolved.message}; ${consequence(position)}`;
      diagnostics.push(warning(object, resolved.reason, message, field));
      return placeholder(id, host, path, pathType, source, unresolvedBackend(namespace, position.ruleIndex < 0 ? spec?.defaultBackend : pathBackend(position)), {
        reason: resolved.reason,
        message,
      });
    }
    const backend = resolved.backend;
    if (resolved.noEndpoints) {
      const field = backendField(position);
      diagnostics.push(warning(object, 'NoReadyEndpoints', `${shown}: ${field}: ${resolved.noEndpoints}; requests get 503 until endpoints are ready`, field));
    }
    const protocol = chooseProtocol(annotatedProtocol, backend, ctx.plugins);
    if (protocol !== 'http' && !ctx.plugins.serves(protocol)) {
      const field = backendField(position);
      const message = `${shown}: ${field}: backend protocol "${protocol}" (from Service ${backend.namespace}/${backend.service} port ${backend.port}${
        backend.appProtocol ? ` appProtocol "${backend.appProtocol}"` : ''
      }) ${unavailable(protocol, ctx.plugins)}; ${consequence(position)}`;
      diagnostics.push(warning(object, 'ProtocolUnavailable', message, field));
      return placeholder(id, host, path, pathType, source, backend, { reason: 'ProtocolUnavailable', message });
    }
    return Object.freeze({ id, host, path, pathType, backend, protocol, source, ...base });
  };
  const pathBackend = (position: Pick<Candidate, 'ruleIndex' | 'pathIndex'>): unknown => ruleList[position.ruleIndex]?.http?.paths?.[position.pathIndex]?.backend;

  for (let i = 0; i < ruleList.length; i++) {
    const rule = ruleList[i];
    if (typeof rule !== 'object' || rule === null) {
      diagnostics.push(warning(object, 'InvalidObject', `${shown}: spec.rules[${i}] must be an object; rule skipped`, `spec.rules[${i}]`));
      continue;
    }
    let host: string | undefined;
    let hostKey = HOSTLESS_KEY;
    if (rule.host !== undefined && rule.host !== null && rule.host !== '') {
      const checked = checkRuleHost(rule.host);
      if (!checked.ok) {
        const value = typeof rule.host === 'string' ? `${show(rule.host)} ` : '';
        diagnostics.push(warning(object, 'InvalidHost', `${shown}: spec.rules[${i}].host ${value}${checked.problem}; rule skipped`, `spec.rules[${i}].host`));
        continue;
      }
      host = checked.host;
      hostKey = checked.host;
    }
    const paths = rule.http?.paths;
    if (!Array.isArray(paths) || paths.length === 0) {
      diagnostics.push(warning(object, 'RuleSkipped', `${shown}: spec.rules[${i}] has no http.paths; rule skipped`, `spec.rules[${i}].http.paths`));
      continue;
    }
    for (let j = 0; j < paths.length; j++) {
      const entry = paths[j];
      const position = { ruleIndex: i, pathIndex: j };
      if (typeof entry !== 'object' || entry === null) {
        const field = candidateField(position);
        diagnostics.push(warning(object, 'InvalidObject', `${shown}: ${field} must be an object; path skipped`, field));
        continue;
      }
      const checked = checkRulePath(entry.path, entry.pathType);
      if (!checked.ok) {
        const reason = checked.field === 'pathType' ? 'UnsupportedPathType' : 'InvalidPath';
        const field = `${candidateField(position)}.${checked.field}`;
        diagnostics.push(warning(object, reason, `${shown}: ${field} ${checked.problem}; path skipped`, field));
        continue;
      }
      const resolved = resolveBackend(entry.backend, namespace, ctx, serviceNames);
      const route = makeRoute(`${namespace}/${name}#${i}/${j}`, host, checked.path, checked.pathType, resolved, 'rule', position);
      candidates.push({ route, hostKey, kind: checked.kind, key: checked.key, ruleIndex: i, pathIndex: j });
    }
  }
  if (defaultBackend !== undefined && defaultBackend !== null) {
    const position = { ruleIndex: -1, pathIndex: -1 };
    const resolved = resolveBackend(defaultBackend, namespace, ctx, serviceNames);
    const route = makeRoute(`${namespace}/${name}#default`, undefined, '/', 'Prefix', resolved, 'ingress-default', position);
    candidates.push({ route, hostKey: DEFAULT_HOST_KEY, kind: 'prefix', key: '', ruleIndex: -1, pathIndex: -1 });
  }
  return fragment();
}

/**
 * What a placeholder route shows of a backend reference that could not be resolved: the Service name and port as
 * written, where they have the right type (empty name and port 0 otherwise).
 */
function unresolvedBackend(namespace: string, value: unknown): ServiceBackend {
  const s = (value as { service?: { name?: unknown; port?: { number?: unknown; name?: unknown } } } | null | undefined)?.service;
  const port = s?.port;
  return {
    namespace,
    service: typeof s?.name === 'string' ? s.name : '',
    port: typeof port?.number === 'number' && Number.isInteger(port.number) ? port.number : 0,
    portName: typeof port?.name === 'string' && port.name !== '' ? port.name : undefined,
    endpoints: NONE,
  };
}

/** A backend reference's shape problem, or a resolution result. `field` is relative to the backend. */
export type Resolved = BackendFound | { readonly ok: false; readonly reason: string; readonly message: string; readonly field?: string | undefined };

/**
 * Checks the shape of an Ingress backend reference and resolves it. Returns the resolver's cached result when
 * the reference is well-formed. The Service name is added to `usedNames` even when it is not found, so the
 * Ingress is translated again when the Service appears.
 */
export function resolveBackend(value: unknown, namespace: string, ctx: Pick<TranslateContext, 'resolver' | 'services'>, usedNames?: Set<string>): Resolved {
  if (typeof value !== 'object' || value === null) return { ok: false, reason: 'InvalidBackend', message: 'must be an object with a service' };
  const b = value as { service?: unknown; resource?: unknown };
  if (b.resource !== undefined && b.resource !== null) {
    const kind = (b.resource as { kind?: unknown })?.kind;
    return {
      ok: false,
      reason: 'UnsupportedBackend',
      field: 'resource',
      message: `resource backends${typeof kind === 'string' ? ` (kind ${kind})` : ''} are not supported; use a Service`,
    };
  }
  if (typeof b.service !== 'object' || b.service === null) return { ok: false, reason: 'InvalidBackend', field: 'service', message: 'is missing' };
  const s = b.service as { name?: unknown; port?: unknown };
  if (typeof s.name !== 'string' || s.name === '') return { ok: false, reason: 'InvalidBackend', field: 'service.name', message: 'must be a non-empty string' };
  const port = portRef(s.port);
  if (port === undefined) return { ok: false, reason: 'InvalidBackend', field: 'service.port', message: portProblem(s.port) };
  usedNames?.add(s.name);
  return ctx.resolver.resolve(ctx.services, namespace, s.name, port);
}

/** A well-formed port reference: the number, or the name; undefined when malformed (see {@link portProblem}). */
function portRef(value: unknown): PortRef | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as { number?: unknown; name?: unknown };
  const hasNumber = p.number !== undefined && p.number !== null;
  const hasName = p.name !== undefined && p.name !== null && p.name !== '';
  if (hasNumber === hasName) return undefined;
  if (hasNumber) return typeof p.number === 'number' && Number.isInteger(p.number) && p.number >= 1 && p.number <= 65535 ? p.number : undefined;
  return typeof p.name === 'string' ? p.name : undefined;
}

function portProblem(value: unknown): string {
  if (typeof value !== 'object' || value === null) return 'must name a port by number or by name';
  const p = value as { number?: unknown; name?: unknown };
  const hasNumber = p.number !== undefined && p.number !== null;
  const hasName = p.name !== undefined && p.name !== null && p.name !== '';
  if (hasNumber === hasName) return 'must set exactly one of number and name';
  if (hasNumber) return `number ${JSON.stringify(p.number)} must be an integer from 1 to 65535`;
  return `name must be a string, got ${typeof p.name}`;
}

function unavailable(protocol: string, plugins: RoutingPlugins): string {
  const owner = plugins.disabledProtocolOwner(protocol);
  return owner ? `needs plugin ${owner}, which is disabled; enable it` : 'is served by no enabled plugin';
}

function annotationField(key: string): string {
  return key.startsWith(ANNOTATION_PREFIX) ? `metadata.annotations["${key}"]` : key;
}

function identity(key: string, ingress: V1Ingress): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  const meta = (typeof ingress === 'object' && ingress !== null ? ingress.metadata : undefined) ?? {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : slash === -1 ? 'default' : key.slice(0, slash);
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : key.slice(slash + 1);
  return { namespace, name };
}

function ingressRef(namespace: string, name: string, ingress: V1Ingress): IngressRef {
  const meta = (typeof ingress === 'object' && ingress !== null ? ingress.metadata : undefined) ?? {};
  const ts = meta.creationTimestamp as unknown;
  const creationTimestamp = ts instanceof Date ? (Number.isNaN(ts.getTime()) ? '' : ts.toISOString().replace('.000Z', 'Z')) : typeof ts === 'string' ? ts : '';
  return Object.freeze({
    namespace,
    name,
    uid: stringOr(meta.uid) ?? '',
    creationTimestamp,
    generation: typeof meta.generation === 'number' ? meta.generation : 0,
  });
}

function creationTime(ingress: V1Ingress): number {
  const ts = (typeof ingress === 'object' && ingress !== null ? ingress.metadata?.creationTimestamp : undefined) as unknown;
  const ms = ts instanceof Date ? ts.getTime() : typeof ts === 'string' ? Date.parse(ts) : Number.NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function warning(object: ObjectRef, reason: string, message: string, field?: string): Diagnostic {
  return field === undefined ? { type: 'Warning', reason, message, object } : { type: 'Warning', reason, message, object, field };
}
