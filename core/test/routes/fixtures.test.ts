/**
 * Table-driven routing tests: every core/test/fixtures/routes/*.yaml holds Kubernetes objects plus one
 * `kind: RouteTest` document with the settings, the requests to match and the exact diagnostics expected.
 *
 *   kind: RouteTest
 *   description: what the file covers
 *   config: {}                 # raw Warren settings (ingressClass, proxy.defaultBackend, …)
 *   plugins: {disable: [grpc]} # test plugins to switch off or on (see support.ts)
 *   owned: [ns/name, …]        # exact set of owned Ingresses (optional)
 *   hosts: [host, …]           # exact set of table hosts (optional)
 *   cases:
 *     - {host: a.example.com, path: /x, expect: svc}  # or expect: 404, or expect: 503 (a route whose backend is
 *       #   unresolved holds the path: no endpoints, never another route's backend), or 500 (unresolved, status 500)
 *       # optional: namespace, ingress (ns/name), route (id), endpoints (count), endpointKeys, terminating,
 *       # protocol, port, annotations, secretRefs, source, reason (of an unresolved route), service (with 503)
 *       # request facts: method (default GET), headers ({name: value or [values]}), the query from the path (`/x?a=1`)
 *       # weights: draws (count) and shares ({service: [low, high]}) bound each backend's share of the answers
 *   diagnostics:               # the exact multiset of (reason, object, field); `contains` are message substrings
 *     - {reason: TLSIgnored, object: Ingress default/web, field: spec.tls, contains: [...]}
 *
 * Objects of kind `FakeRoute` go to the snapshot's `extra` and become routes through the test route source
 * (`fakeRouteSource` in support.ts, reported as HTTPRoute); weighted picks use a seeded generator.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KubernetesObject } from '@kubernetes/client-node';
import test from 'ava';
import { parseAllDocuments } from 'yaml';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import type { RequestFacts, Route } from '../../src/routes/types.js';
import { FAKE_KIND, type FakeRoute, fakeRouteSource, objectName, seededRandom, testRoutingConfig } from './support.js';

interface Case {
  host: string;
  path: string;
  expect: string | number;
  namespace?: string;
  ingress?: string;
  route?: string;
  endpoints?: number;
  endpointKeys?: string[];
  terminating?: boolean;
  protocol?: string;
  port?: number;
  annotations?: Record<string, unknown>;
  secretRefs?: string[];
  source?: string;
  reason?: string;
  service?: string;
  method?: string;
  headers?: Record<string, string | string[]>;
  draws?: number;
  shares?: Record<string, [number, number]>;
}

function requestFacts(c: Case): RequestFacts {
  const q = c.path.indexOf('?');
  const headers = Object.entries(c.headers ?? {}).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).flatMap((v) => [name.toLowerCase(), v]));
  return { method: c.method ?? 'GET', headers, query: q < 0 ? '' : c.path.slice(q + 1) };
}

interface ExpectedDiagnostic {
  reason: string;
  object: string;
  field?: string;
  type?: string;
  contains?: string[];
}

interface RouteTest {
  kind: 'RouteTest';
  description: string;
  config?: unknown;
  plugins?: { enable?: string[]; disable?: string[] };
  owned?: string[];
  hosts?: string[];
  cases?: Case[];
  diagnostics?: ExpectedDiagnostic[];
}

const dir = fileURLToPath(new URL('../../../test/fixtures/routes/', import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

test('the fixture folder holds the routing fixtures', (t) => {
  t.true(files.length >= 12, `found ${files.join(', ')}`);
});

for (const file of files) {
  const documents = parseAllDocuments(readFileSync(dir + file, 'utf8'));
  const objects: unknown[] = [];
  let spec: RouteTest | undefined;
  for (const doc of Array.isArray(documents) ? documents : [documents]) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as { kind?: string } | null;
    if (value?.kind === 'RouteTest') spec = value as RouteTest;
    else if (value) objects.push(value);
  }
  if (!spec) throw new Error(`${file}: no RouteTest document`);
  const s = spec;

  test(`${file}: ${s.description}`, (t) => {
    const { snapshot, problems } = snapshotFromObjects(objects);
    t.deepEqual(problems, [], 'fixture objects load');
    const fakes = objects.filter((o): o is FakeRoute => (o as { kind?: unknown }).kind === FAKE_KIND);
    const extra = new Map([[FAKE_KIND, new Map(fakes.map((f) => [`${f.metadata.namespace ?? 'default'}/${f.metadata.name}`, f as KubernetesObject]))]]);
    const settings = { ...testRoutingConfig(s.config ?? {}, s.plugins ?? {}), sources: [fakeRouteSource], random: seededRandom(7) };
    const table = new RouteTableBuilder(settings).build({ ...snapshot, extra });

    for (const c of s.cases ?? []) {
      const label = `${c.host} ${c.method ?? ''} ${c.path} ${JSON.stringify(c.headers ?? {})}`;
      const facts = requestFacts(c);
      if (c.shares !== undefined) {
        const draws = c.draws ?? 1000;
        const counts = new Map<string, number>();
        for (let i = 0; i < draws; i++) {
          const service = table.match(c.host, c.path, facts)?.backend.service ?? '404';
          counts.set(service, (counts.get(service) ?? 0) + 1);
        }
        t.deepEqual([...counts.keys()].sort(), Object.keys(c.shares).sort(), `${label}: services answering`);
        for (const [service, [low, high]] of Object.entries(c.shares)) {
          const share = (counts.get(service) ?? 0) / draws;
          t.true(share >= low && share <= high, `${label}: share of ${service} is ${share}, expected ${low}–${high}`);
        }
        continue;
      }
      const route: Route | undefined = table.match(c.host, c.path, facts);
      if (c.expect === 404) {
        t.is(route, undefined, `${label}: expected 404, got ${route?.id}`);
        continue;
      }
      if (!route) {
        t.fail(`${label}: expected ${c.expect}, got 404`);
        continue;
      }
      if (c.expect === 503 || c.expect === 500) {
        t.truthy(route.unresolved, `${label}: expected an unresolved route (${c.expect}), got ${route.id} → ${route.backend.service}`);
        t.is(route.unresolved?.status ?? 503, c.expect, `${label}: status of the unresolved route`);
        t.is(route.backend.endpoints.length, 0, `${label}: an unresolved route has no endpoints`);
        if (c.reason !== undefined) t.is(route.unresolved?.reason, c.reason, `${label}: reason`);
        if (c.service !== undefined) t.is(route.backend.service, c.service, `${label}: service as written`);
      } else {
        t.is(route.unresolved, undefined, `${label}: route ${route.id} is unresolved: ${route.unresolved?.message}`);
        t.is(route.backend.service, String(c.expect), `${label}: service (route ${route.id})`);
      }
      if (c.namespace !== undefined) t.is(route.backend.namespace, c.namespace, `${label}: namespace`);
      if (c.ingress !== undefined) t.is(`${route.ingress.namespace}/${route.ingress.name}`, c.ingress, `${label}: ingress`);
      if (c.route !== undefined) t.is(route.id, c.route, `${label}: route id`);
      if (c.endpoints !== undefined) t.is(route.backend.endpoints.length, c.endpoints, `${label}: endpoint count`);
      if (c.endpointKeys !== undefined)
        t.deepEqual(
          route.backend.endpoints.map((e) => e.key),
          c.endpointKeys,
          `${label}: endpoints`,
        );
      if (c.terminating !== undefined) {
        t.true(
          route.backend.endpoints.every((e) => e.terminating === c.terminating),
          `${label}: terminating flags`,
        );
      }
      if (c.protocol !== undefined) t.is(route.protocol as string, c.protocol, `${label}: protocol`);
      if (c.port !== undefined) t.is(route.backend.port, c.port, `${label}: service port`);
      if (c.annotations !== undefined) t.deepEqual({ ...route.annotations }, c.annotations, `${label}: annotations`);
      if (c.secretRefs !== undefined) t.deepEqual([...route.secretRefs], c.secretRefs, `${label}: secretRefs`);
      if (c.source !== undefined) t.is(route.source as string | undefined, c.source, `${label}: source`);
    }

    if (s.owned !== undefined) {
      t.deepEqual(table.ownedIngresses.map((r) => `${r.namespace}/${r.name}`).sort(), [...s.owned].sort(), 'owned Ingresses');
    }
    if (s.hosts !== undefined) t.deepEqual([...table.hosts].sort(), [...s.hosts].sort(), 'hosts');

    const expected = (s.diagnostics ?? []).map((d) => `${d.type ?? 'Warning'} ${d.reason} ${d.object}${d.field ? ` ${d.field}` : ''}`).sort();
    const actual = table.diagnostics.map((d) => `${d.type} ${d.reason} ${objectName(d)}${d.field ? ` ${d.field}` : ''}`).sort();
    t.deepEqual(actual, expected, 'diagnostics (type reason object field)');
    for (const d of s.diagnostics ?? []) {
      const found = table.diagnostics.find((a) => a.reason === d.reason && objectName(a) === d.object && (d.field === undefined || a.field === d.field));
      for (const text of d.contains ?? []) {
        t.true(found?.message.includes(text), `${d.reason} ${d.object}: message ${JSON.stringify(found?.message)} should contain ${JSON.stringify(text)}`);
      }
      if (found) t.true(found.message.includes(d.object.split(' ')[1]!), `${d.reason}: message names the object: ${found.message}`);
    }
  });
}
