import { z } from 'zod';
import { parseConfig } from '../../src/config/load.js';
import { defineAnnotation, type PluginManifest } from '../../src/plugin-api/manifest.js';
import { routingConfig, type RoutingConfig } from '../../src/routes/build.js';
import { checkRulePath } from '../../src/routes/paths.js';
import { snapshotKey } from '../../src/routes/snapshot.js';
import type { RouteSource, SourcedCandidate } from '../../src/routes/sources.js';
import { HOSTLESS_KEY, resolveBackend } from '../../src/routes/translate.js';
import type { Diagnostic, IngressRef, ObjectRef, Route, RouteTable, ValueMatch } from '../../src/routes/types.js';

/**
 * Plugin manifests for routing tests, shaped like the built-in ones (ids, settings names, protocols) plus a
 * few annotations, so tests do not depend on the plugin packages' current state.
 */
export const TEST_MANIFESTS: readonly PluginManifest[] = [
  {
    id: 'upstream.tls',
    name: 'tls',
    description: 'HTTPS upstreams',
    coreRange: '^0.1.0',
    kind: 'transport',
    order: 10,
    enabledByDefault: true,
    protocols: ['https'],
    protocolTraits: { https: { tls: true, ports: [443, 8443] } },
    appProtocols: { https: 'https' },
    annotations: [
      defineAnnotation({ key: 'proxy-ssl-secret', description: 'CA Secret', schema: z.string().min(1), example: 'ns/ca', secretRef: true }),
      defineAnnotation({
        key: 'proxy-ssl-verify',
        description: 'verify',
        schema: z.enum(['on', 'off'], { error: 'on or off' }),
        example: 'on',
      }),
    ],
  },
  {
    id: 'upstream.http2',
    name: 'http2',
    description: 'h2',
    coreRange: '^0.1.0',
    kind: 'transport',
    order: 20,
    enabledByDefault: true,
    protocols: ['h2c', 'h2'],
    protocolTraits: { h2c: { http2: true }, h2: { http2: true, tls: true } },
    appProtocols: { 'kubernetes.io/h2c': 'h2c' },
  },
  {
    id: 'upstream.websocket',
    name: 'websocket',
    description: 'ws',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 10,
    enabledByDefault: true,
    protocols: ['ws', 'wss'],
    protocolTraits: { wss: { tls: true } },
    appProtocols: { 'kubernetes.io/ws': 'ws', 'kubernetes.io/wss': 'wss' },
  },
  {
    id: 'upstream.grpc',
    name: 'grpc',
    description: 'grpc',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 20,
    enabledByDefault: true,
    protocols: ['grpc', 'grpcs'],
    protocolTraits: { grpc: { http2: true }, grpcs: { http2: true, tls: true } },
    appProtocols: { 'example.com/grpc-tls': 'grpcs', grpc: 'grpc', 'grpc-web': 'http' },
    dependsOn: ['upstream.http2'],
  },
  {
    id: 'cloud.firewall',
    name: 'firewall',
    description: 'firewall',
    coreRange: '^0.1.0',
    kind: 'control',
    order: 20,
    enabledByDefault: false,
    annotations: [
      defineAnnotation({
        key: 'firewall-allow-countries',
        description: 'allowed countries',
        schema: z.string().regex(/^[A-Z]{2}(,[A-Z]{2})*$/, 'comma-separated ISO country codes such as "CH,DE"'),
        example: 'CH,DE',
      }),
    ],
  },
  {
    id: 'acme.limits',
    name: 'limits',
    description: 'a custom policy plugin',
    coreRange: '^0.1.0',
    kind: 'policy',
    order: 10,
    enabledByDefault: true,
    annotations: [
      defineAnnotation({
        key: 'rate-limit',
        description: 'requests per second',
        schema: z.string().regex(/^\d+$/, 'a whole number').transform(Number).pipe(z.number().int().min(1).max(100000)),
        example: '100',
      }),
    ],
  },
];

/** Builder settings from raw settings plus the names of test plugins to switch on or off. */
export function testRoutingConfig(config: unknown = {}, plugins: { enable?: readonly string[]; disable?: readonly string[] } = {}): RoutingConfig {
  const parsed = parseConfig(config);
  const enabled = TEST_MANIFESTS.filter((m) => (plugins.disable?.includes(m.name) ? false : plugins.enable?.includes(m.name) ? true : m.enabledByDefault === true));
  return routingConfig(parsed, enabled, TEST_MANIFESTS);
}

/** `Kind namespace/name` of a diagnostic's object. */
export function objectName(d: Diagnostic): string {
  return `${d.object.kind} ${d.object.namespace ? `${d.object.namespace}/` : ''}${d.object.name}`;
}

/** A comparable, order-free rendering of a table (for incremental-versus-full comparisons). */
export function canonical(table: RouteTable): unknown {
  const byId = (a: Route, b: Route) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const text = (v: unknown) => JSON.stringify(v);
  return {
    routes: [...table.routes].sort(byId).map((r) => text(r)),
    diagnostics: table.diagnostics.map(text).sort(),
    owned: table.ownedIngresses.map(text).sort(),
    hosts: [...table.hosts].sort(),
  };
}

/**
 * `FakeRoute`: a test-only kind that a {@link fakeRouteSource} turns into routes the way the Gateway API
 * translation turns an HTTPRoute into routes (reported as HTTPRoute), without Gateways, listeners or status:
 *
 *   kind: FakeRoute
 *   metadata: {name, namespace, creationTimestamp}
 *   spec:
 *     hostname: a.example          # absent: any host
 *     rules:
 *       - path: /api               # default "/"
 *         type: Exact              # default Prefix
 *         method: POST
 *         headers: [{name: X-Env, value: canary, type: RegularExpression}]   # type defaults to Exact
 *         query: [{name: v, value: "2"}]
 *         backends: [{service: s, port: 80, weight: 1}]   # any weight set: the rule splits by weight
 */
export interface FakeRoute {
  kind: 'FakeRoute';
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string | Date; generation?: number };
  spec: { hostname?: string; rules: FakeRule[] };
}

export interface FakeRule {
  path?: string;
  type?: 'Exact' | 'Prefix';
  method?: string;
  headers?: Array<{ name: string; value: string; type?: ValueMatch['type'] }>;
  query?: Array<{ name: string; value: string; type?: ValueMatch['type'] }>;
  backends: Array<{ service: string; port: number; weight?: number }>;
}

/** Snapshot `extra` kind of {@link FakeRoute}s. */
export const FAKE_KIND = 'FakeRoute';

/** A route source over {@link FakeRoute}s: a pure function of the snapshot, as the contract asks. */
export const fakeRouteSource: RouteSource = {
  kinds: [FAKE_KIND],
  translate(snapshot, ctx) {
    const candidates: SourcedCandidate[] = [];
    const diagnostics: Diagnostic[] = [];
    const services = new Set<string>();
    const objects = [...(snapshot.extra?.get(FAKE_KIND) ?? new Map()).values()] as FakeRoute[];
    for (const object of objects) {
      const namespace = object.metadata.namespace ?? 'default';
      const name = object.metadata.name;
      const created = object.metadata.creationTimestamp;
      const time = created === undefined ? Number.POSITIVE_INFINITY : new Date(created).getTime();
      const ref: IngressRef = {
        kind: 'HTTPRoute',
        namespace,
        name,
        uid: object.metadata.uid ?? `${namespace}/${name}`,
        creationTimestamp: created === undefined ? '' : new Date(created).toISOString(),
        generation: object.metadata.generation ?? 1,
      };
      const objectRef: ObjectRef = { kind: 'HTTPRoute', namespace, name, uid: ref.uid };
      const host = object.spec.hostname?.toLowerCase();
      object.spec.rules.forEach((rule, r) => {
        const checked = checkRulePath(rule.path ?? '/', rule.type ?? 'Prefix');
        if (!checked.ok) throw new Error(`FakeRoute ${name}: bad path ${rule.path}`);
        const values = (list: FakeRule['headers']): ValueMatch[] | undefined => list?.map((m) => ({ name: m.name, type: m.type ?? 'Exact', value: m.value }));
        const headers = values(rule.headers)?.map((m) => ({ ...m, name: m.name.toLowerCase() }));
        const query = values(rule.query);
        const conditions = rule.method || headers || query ? { method: rule.method, headers, query } : undefined;
        const weighted = rule.backends.some((b) => b.weight !== undefined);
        rule.backends.forEach((b, i) => {
          services.add(snapshotKey(namespace, b.service));
          const resolved = resolveBackend({ service: { name: b.service, port: { number: b.port } } }, namespace, ctx);
          const field = `spec.rules[${r}].backends[${i}]`;
          if (!resolved.ok)
            diagnostics.push({ type: 'Warning', reason: 'BackendNotFound', object: objectRef, field, message: `HTTPRoute ${namespace}/${name}: ${resolved.message}` });
          const route: Route = {
            id: `HTTPRoute:${namespace}/${name}#r${r}/m0/b${i}`,
            ingress: ref,
            host,
            path: checked.path,
            pathType: checked.pathType,
            backend: resolved.ok ? resolved.backend : { namespace, service: b.service, port: b.port, endpoints: [] },
            protocol: 'http',
            annotations: {},
            secretRefs: [],
            source: 'rule',
            unresolved: resolved.ok ? undefined : { reason: resolved.reason, message: resolved.message, status: 500 },
            conditions,
            weight: weighted ? { group: `HTTPRoute:${namespace}/${name}#r${r}`, weight: b.weight ?? 1 } : undefined,
          };
          candidates.push({
            route,
            hostKey: host ?? HOSTLESS_KEY,
            kind: checked.kind,
            key: checked.key,
            ruleIndex: r,
            pathIndex: 0,
            time,
            owner: `HTTPRoute/${namespace}/${name}`,
            order: r,
          });
        });
      });
    }
    return { candidates, diagnostics, services: [...services] };
  },
};

/** A deterministic generator in [0, 1) (mulberry32), for weighted picks whose shares tests bound. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
