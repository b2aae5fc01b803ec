/**
 * BackendTLSPolicy as the spec defines it, on the pure side (translation and desired status, no cluster):
 * CA bundles from ConfigMaps (`ca.crt`) as well as Secrets, reference failures with their reasons, the conflict
 * rule, and one `status.ancestors` entry per Gateway the target Service is reached through.
 */
import test from 'ava';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { createTestCa } from '../../src/edge-simulator/certs.js';
import { caConfigMapRefs } from '../../src/gateway/backend-tls.js';
import { desiredPolicyStatus } from '../../src/gateway/backend-tls-status.js';
import { gatewayObjects } from '../../src/gateway/objects.js';
import { GatewayRouteSource } from '../../src/gateway/source.js';
import { loadBuiltinManifests } from '../../src/plugins/builtin.js';
import { BackendResolver } from '../../src/routes/backends.js';
import { RoutingPlugins } from '../../src/routes/plugins.js';
import { gatewaySnapshot, showConditions } from './support.js';

const ca = createTestCa('Policy Test CA');
const NS = 'apps';

const policy = (name: string, spec: Record<string, unknown>, created = '2026-01-01T00:00:00Z', generation = 1) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'BackendTLSPolicy',
  metadata: { name, namespace: NS, creationTimestamp: created, generation },
  spec,
});
const configMap = (name: string, data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: NS }, data });
const svc = (name: string, ports: Array<{ name?: string; port: number }>) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec: { ports } });
const cmRef = (name: string) => ({ group: '', kind: 'ConfigMap', name });
const target = (name: string, sectionName?: string) => ({ group: '', kind: 'Service', name, ...(sectionName ? { sectionName } : {}) });

const base = [
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'warren', generation: 1 }, spec: { controllerName: 'warren.dev/gateway-controller' } },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'gw', namespace: NS, generation: 1 },
    spec: { gatewayClassName: 'warren', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
  },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'other', namespace: NS, generation: 1 },
    spec: { gatewayClassName: 'warren', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
  },
];

/** An HTTPRoute on `parents` with one rule per backend, path `/<service>-<port>`. */
const route = (name: string, parents: string[], backends: Array<[string, number]>) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name, namespace: NS, generation: 1 },
  spec: {
    parentRefs: parents.map((p) => ({ name: p })),
    hostnames: [`${name}.example.com`],
    rules: backends.map(([s, port]) => ({ matches: [{ path: { type: 'PathPrefix', value: `/${s}-${port}` } }], backendRefs: [{ name: s, port }] })),
  },
});

/** Snapshot with ConfigMaps in `extra`, as the informers keep the ones policies name. */
function snapshotOf(objects: readonly unknown[]) {
  const snapshot = gatewaySnapshot(objects);
  const cms = new Map<string, KubernetesObject>();
  for (const o of objects as KubernetesObject[]) if (o.kind === 'ConfigMap') cms.set(`${o.metadata!.namespace}/${o.metadata!.name}`, o);
  (snapshot.extra as Map<string, ReadonlyMap<string, KubernetesObject>>).set('ConfigMap', cms);
  return snapshot;
}

async function translate(objects: readonly unknown[]) {
  const snapshot = snapshotOf(objects);
  const plugins = new RoutingPlugins(await loadBuiltinManifests());
  const result = new GatewayRouteSource().translate(snapshot, { services: snapshot.services, resolver: new BackendResolver(), plugins });
  const byPath = new Map(result.candidates.map((c) => [c.route.path, c.route]));
  return { result, byPath };
}

function statusOf(objects: readonly unknown[]) {
  const snapshot = snapshotOf(objects);
  const secrets = snapshot.secrets as ReadonlyMap<string, V1Secret>;
  const desired = desiredPolicyStatus({ objects: gatewayObjects(snapshot.extra), services: snapshot.services, secret: (ns, n) => secrets.get(`${ns}/${n}`) });
  return Object.fromEntries(
    desired.map((d) => [
      d.key.slice(NS.length + 1),
      Object.fromEntries(d.ancestors.map((a) => [`${a.ancestorRef.kind}/${a.ancestorRef.namespace}/${a.ancestorRef.name}`, showConditions(a.conditions)])),
    ]),
  );
}

const ACCEPTED = ['Accepted=True/Accepted', 'ResolvedRefs=True/ResolvedRefs'];

test('a ConfigMap CA becomes the tls plugin settings of the routes to the Service, with its bundle inline', async (t) => {
  const objects = [
    ...base,
    svc('secure', [{ name: 'https', port: 443 }]),
    configMap('ca', { 'ca.crt': ca.certPem }),
    policy('secure', { targetRefs: [target('secure')], validation: { hostname: 'secure.internal', caCertificateRefs: [cmRef('ca')] } }),
    route('r', ['gw'], [['secure', 443]]),
  ];
  const { result, byPath } = await translate(objects);
  t.deepEqual(result.diagnostics, []);
  const r = byPath.get('/secure-443')!;
  t.is(r.protocol, 'https');
  t.is(r.annotations['proxy-ssl-name'], 'secure.internal');
  t.is(r.annotations['proxy-ssl-verify'], 'on');
  t.is(r.annotations['proxy-ssl-ca'], `${ca.certPem.trim()}\n`);
  t.is(r.annotations['proxy-ssl-secret'], undefined);
  t.deepEqual(statusOf(objects), { secure: { 'Gateway/apps/gw': ACCEPTED } });
  t.deepEqual(caConfigMapRefs(gatewayObjects(snapshotOf(objects).extra).tlsPolicies), ['apps/ca'], 'the ConfigMap the informers keep');
});

test('a missing ConfigMap, a missing or empty ca.crt, or one that is not PEM: 500 for the backend, InvalidCACertificateRef, NoValidCACertificate', async (t) => {
  const cases: Array<[string, unknown[], RegExp]> = [
    ['missing', [], /ConfigMap apps\/ca not found/],
    ['no key', [configMap('ca', { 'other.crt': ca.certPem })], /key ca\.crt is missing/],
    ['empty', [configMap('ca', { 'ca.crt': '' })], /key ca\.crt is empty/],
    ['not PEM', [configMap('ca', { 'ca.crt': 'hello' })], /key ca\.crt holds no PEM certificate/],
    ['junk PEM', [configMap('ca', { 'ca.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' })], /certificate 1 of 1 does not parse/],
  ];
  for (const [what, extra, message] of cases) {
    const objects = [
      ...base,
      ...extra,
      svc('secure', [{ port: 443 }]),
      policy('secure', { targetRefs: [target('secure')], validation: { hostname: 'secure.internal', caCertificateRefs: [cmRef('ca')] } }),
      route('r', ['gw'], [['secure', 443]]),
    ];
    const { result, byPath } = await translate(objects);
    const r = byPath.get('/secure-443')!;
    t.deepEqual(r.unresolved && [r.unresolved.status, r.unresolved.reason], [500, 'InvalidCACertificateRef'], what);
    t.deepEqual(
      result.diagnostics.map((d) => [d.reason, d.object.kind, d.object.name]),
      [['InvalidCACertificateRef', 'HTTPRoute', 'r']],
      `${what}: a Warning on the HTTPRoute`,
    );
    t.regex(result.diagnostics[0]!.message, message, what);
    t.deepEqual(statusOf(objects), { secure: { 'Gateway/apps/gw': ['Accepted=False/NoValidCACertificate', 'ResolvedRefs=False/InvalidCACertificateRef'] } }, what);
  }
});

test('a CA reference of an unknown kind: 500 for the backend, ResolvedRefs InvalidKind', async (t) => {
  const objects = [
    ...base,
    svc('secure', [{ port: 443 }]),
    policy('secure', {
      targetRefs: [target('secure')],
      validation: { hostname: 'secure.internal', caCertificateRefs: [{ group: 'invalid.io', kind: 'InvalidKind', name: 'x' }] },
    }),
    route('r', ['gw'], [['secure', 443]]),
  ];
  const { byPath } = await translate(objects);
  const r = byPath.get('/secure-443')!;
  t.deepEqual(r.unresolved && [r.unresolved.status, r.unresolved.reason], [500, 'InvalidKind']);
  t.deepEqual(statusOf(objects), { secure: { 'Gateway/apps/gw': ['Accepted=False/NoValidCACertificate', 'ResolvedRefs=False/InvalidKind'] } });
});

test('one invalid reference of two fails the backend, but the policy stays Accepted', async (t) => {
  const objects = [
    ...base,
    configMap('ca', { 'ca.crt': ca.certPem }),
    svc('secure', [{ port: 443 }]),
    policy('secure', { targetRefs: [target('secure')], validation: { hostname: 'secure.internal', caCertificateRefs: [cmRef('ca'), cmRef('gone')] } }),
    route('r', ['gw'], [['secure', 443]]),
  ];
  const { byPath } = await translate(objects);
  t.is(byPath.get('/secure-443')!.unresolved?.status, 500);
  t.deepEqual(statusOf(objects), { secure: { 'Gateway/apps/gw': ['Accepted=True/Accepted', 'ResolvedRefs=False/InvalidCACertificateRef'] } });
});

test('conflicts: the older policy (then the first by name) wins a Service and sectionName; a section-specific and a Service-wide one both apply', async (t) => {
  const valid = (hostname: string) => ({ hostname, caCertificateRefs: [cmRef('ca')] });
  const objects = [
    ...base,
    configMap('ca', { 'ca.crt': ca.certPem }),
    svc('a', [{ name: 'https', port: 443 }]),
    svc('b', [
      { name: 'https-1', port: 443 },
      { name: 'https-2', port: 8443 },
    ]),
    svc('c', [
      { name: 'https-1', port: 443 },
      { name: 'https-2', port: 8443 },
    ]),
    // Created later, but wins: older.
    policy('a-2', { targetRefs: [target('a')], validation: valid('two.example.com') }, '2026-01-01T00:00:00Z'),
    policy('a-1', { targetRefs: [target('a')], validation: valid('one.example.com') }, '2026-01-02T00:00:00Z'),
    // Same second: first by name.
    policy('b-2', { targetRefs: [target('b', 'https-1')], validation: valid('two.example.com') }),
    policy('b-1', { targetRefs: [target('b', 'https-1')], validation: valid('one.example.com') }),
    policy('c-section', { targetRefs: [target('c', 'https-1')], validation: valid('section.example.com') }),
    policy('c-service', { targetRefs: [target('c')], validation: valid('service.example.com') }),
    route(
      'r',
      ['gw'],
      [
        ['a', 443],
        ['b', 443],
        ['c', 443],
        ['c', 8443],
      ],
    ),
  ];
  const { byPath } = await translate(objects);
  t.is(byPath.get('/a-443')!.annotations['proxy-ssl-name'], 'two.example.com');
  t.is(byPath.get('/b-443')!.annotations['proxy-ssl-name'], 'one.example.com');
  t.is(byPath.get('/c-443')!.annotations['proxy-ssl-name'], 'section.example.com');
  t.is(byPath.get('/c-8443')!.annotations['proxy-ssl-name'], 'service.example.com');
  const conflicted = ['Accepted=False/Conflicted', 'ResolvedRefs=True/ResolvedRefs'];
  t.deepEqual(statusOf(objects), {
    'a-2': { 'Gateway/apps/gw': ACCEPTED },
    'a-1': { 'Gateway/apps/gw': conflicted },
    'b-1': { 'Gateway/apps/gw': ACCEPTED },
    'b-2': { 'Gateway/apps/gw': conflicted },
    'c-section': { 'Gateway/apps/gw': ACCEPTED },
    'c-service': { 'Gateway/apps/gw': ACCEPTED },
  });
});

test('ancestors: each Gateway the target Service port is reached through, none for a port no route uses; conditions observe the generation', (t) => {
  const objects = [
    ...base,
    configMap('ca', { 'ca.crt': ca.certPem }),
    svc('s', [
      { name: 'https', port: 443 },
      { name: 'admin', port: 9443 },
    ]),
    svc('lonely', [{ port: 443 }]),
    policy('s', { targetRefs: [target('s')], validation: { hostname: 's.internal', caCertificateRefs: [cmRef('ca')] } }, undefined, 7),
    policy('s-admin', { targetRefs: [target('s', 'admin')], validation: { hostname: 'admin.internal', caCertificateRefs: [cmRef('ca')] } }),
    policy('lonely', { targetRefs: [target('lonely')], validation: { hostname: 'l.internal', caCertificateRefs: [cmRef('ca')] } }),
    route('r1', ['gw'], [['s', 443]]),
    route('r2', ['other', 'gw'], [['s', 443]]),
  ];
  t.deepEqual(statusOf(objects), {
    s: { 'Gateway/apps/gw': ACCEPTED, 'Gateway/apps/other': ACCEPTED },
    's-admin': {},
    lonely: {},
  });
  const snapshot = snapshotOf(objects);
  const desired = desiredPolicyStatus({ objects: gatewayObjects(snapshot.extra), services: snapshot.services, secret: () => undefined });
  const s = desired.find((d) => d.key === 'apps/s')!;
  t.deepEqual(
    s.ancestors.flatMap((a) => a.conditions.map((c) => c.observedGeneration)),
    [7, 7, 7, 7],
  );
  t.deepEqual(s.ancestors[0]!.ancestorRef, { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'apps', name: 'gw' });
  t.is(s.ancestors[0]!.controllerName, 'warren.dev/gateway-controller');
});

test('a Secret CA keeps working (named to the tls plugin); status resolves it when cached, and reports it missing otherwise', async (t) => {
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'upstream-ca', namespace: NS }, data: { 'ca.crt': Buffer.from(ca.certPem).toString('base64') } };
  const objects = [
    ...base,
    svc('secure', [{ port: 443 }]),
    policy('secure', { targetRefs: [target('secure')], validation: { hostname: 'secure.internal', caCertificateRefs: [{ group: '', kind: 'Secret', name: 'upstream-ca' }] } }),
    route('r', ['gw'], [['secure', 443]]),
  ];
  const { byPath } = await translate(objects);
  t.is(byPath.get('/secure-443')!.annotations['proxy-ssl-secret'], 'apps/upstream-ca');
  t.deepEqual(statusOf([...objects, secret]), { secure: { 'Gateway/apps/gw': ACCEPTED } });
  t.deepEqual(statusOf(objects), { secure: { 'Gateway/apps/gw': ['Accepted=False/NoValidCACertificate', 'ResolvedRefs=False/InvalidCACertificateRef'] } });
});

test('subjectAltNames become the names the certificate must carry one of; an entry without its value makes the policy Invalid', async (t) => {
  const objects = (sans: unknown[]) => [
    ...base,
    configMap('ca', { 'ca.crt': ca.certPem }),
    svc('secure', [{ port: 443 }]),
    policy('secure', { targetRefs: [target('secure')], validation: { hostname: 'abc.example.com', caCertificateRefs: [cmRef('ca')], subjectAltNames: sans } }),
    route('r', ['gw'], [['secure', 443]]),
  ];
  const good = objects([
    { type: 'Hostname', hostname: 'abc.example.com' },
    { type: 'URI', uri: 'spiffe://abc.example.com/test-identity' },
  ]);
  const r = (await translate(good)).byPath.get('/secure-443')!;
  t.deepEqual(r.annotations['proxy-ssl-subject-alt-names'], ['DNS:abc.example.com', 'URI:spiffe://abc.example.com/test-identity'], 'parsed by the tls plugin schema');
  t.is(r.annotations['proxy-ssl-name'], 'abc.example.com', 'still the SNI');
  t.deepEqual(statusOf(good), { secure: { 'Gateway/apps/gw': ACCEPTED } });
  const bad = objects([{ type: 'URI' }]);
  t.deepEqual((await translate(bad)).byPath.get('/secure-443')!.unresolved?.reason, 'InvalidBackendTLSPolicy');
  t.deepEqual(statusOf(bad), { secure: { 'Gateway/apps/gw': ['Accepted=False/Invalid', 'ResolvedRefs=True/ResolvedRefs'] } });
});
