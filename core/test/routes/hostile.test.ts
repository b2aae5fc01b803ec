/**
 * Hostile volumes and shapes that do not fit in a YAML fixture: thousands of paths, megabyte annotations,
 * snapshot loading problems, the manifest-derived annotation registry and its messages.
 */
import test from 'ava';
import { z } from 'zod';
import { defineAnnotation } from '../../src/plugin-api/manifest.js';
import type { V1Ingress } from '@kubernetes/client-node';
import { CORE_ANNOTATION_KEYS } from '../../src/plugins/registry.js';
import { BUILTIN_PLUGINS } from '../../src/plugins/builtin.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { MAX_PATHS_PER_INGRESS } from '../../src/routes/translate.js';
import { CORE_ANNOTATIONS } from '../../src/routes/core-annotations.js';
import { loadBuiltinManifests } from '../../src/plugins/builtin.js';
import { RoutingPlugins } from '../../src/routes/plugins.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { testRoutingConfig } from './support.js';

const CLASS = { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } };
const SERVICE = { kind: 'Service', metadata: { name: 'echo', namespace: 'default' }, spec: { ports: [{ port: 80 }] } };
const SLICE = {
  kind: 'EndpointSlice',
  metadata: { name: 'echo-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'echo' } },
  addressType: 'IPv4',
  ports: [{ port: 80 }],
  endpoints: [{ addresses: ['198.18.0.2'] }],
};
const backend = { service: { name: 'echo', port: { number: 80 } } };

function ingress(name: string, host: string, paths: number, annotations: Record<string, string> = {}): V1Ingress {
  return {
    kind: 'Ingress',
    metadata: { name, namespace: 'default', annotations },
    spec: {
      ingressClassName: 'cloudflare-tunnel',
      rules: [{ host, http: { paths: Array.from({ length: paths }, (_, i) => ({ path: `/p${i}`, pathType: 'Prefix', backend })) } }],
    },
  };
}

test('an Ingress with more paths than allowed is skipped whole with TooManyPaths; a large one below the limit works', (t) => {
  const { snapshot } = snapshotFromObjects([
    CLASS,
    SERVICE,
    SLICE,
    ingress('flood', 'flood.test', MAX_PATHS_PER_INGRESS + 1),
    ingress('large', 'large.test', 3000),
    ingress('small', 'small.test', 1),
  ]);
  const table = new RouteTableBuilder(testRoutingConfig()).build(snapshot);
  t.deepEqual(
    table.diagnostics.map((d) => `${d.reason} ${d.object.name}`),
    ['TooManyPaths flood'],
  );
  t.regex(table.diagnostics[0]!.message, new RegExp(`${MAX_PATHS_PER_INGRESS + 1} paths, more than the ${MAX_PATHS_PER_INGRESS}`));
  t.is(table.match('flood.test', '/p1'), undefined);
  t.is(table.match('large.test', '/p2999/x')?.path, '/p2999');
  t.is(table.match('large.test', '/p1')?.path, '/p1');
  t.is(table.match('large.test', '/p30000'), undefined);
  t.is(table.match('small.test', '/p0')?.backend.service, 'echo');
  t.is(table.routes.length, 3001);
});

test('a megabyte annotation value is refused with a short message and does not affect other Ingresses', (t) => {
  const huge = '9'.repeat(1 << 20);
  const { snapshot } = snapshotFromObjects([
    CLASS,
    SERVICE,
    SLICE,
    ingress('huge', 'huge.test', 1, { 'warren.dev/idle-timeout': `${huge}s`, 'warren.dev/upstream-host': huge }),
    ingress('fine', 'fine.test', 1),
  ]);
  const table = new RouteTableBuilder(testRoutingConfig()).build(snapshot);
  t.is(table.diagnostics.length, 2);
  for (const d of table.diagnostics) {
    t.is(d.reason, 'InvalidAnnotation');
    t.true(d.message.length < 600, `message of ${d.message.length} characters`);
  }
  t.is(table.match('huge.test', '/p0'), undefined);
  t.truthy(table.match('fine.test', '/p0'));
});

test('thousands of Ingresses on one host resolve conflicts deterministically', (t) => {
  const objects: unknown[] = [CLASS, SERVICE, SLICE];
  for (let i = 0; i < 2000; i++) {
    const ing = ingress(`same-${String(i).padStart(4, '0')}`, 'crowded.test', 1);
    ing.metadata!.creationTimestamp = new Date(Date.UTC(2024, 0, 1, 0, 0, (i * 7919) % 2000));
    objects.push(ing);
  }
  const table = new RouteTableBuilder(testRoutingConfig()).build(snapshotFromObjects(objects).snapshot);
  t.is(table.match('crowded.test', '/p0')?.ingress.name, 'same-0000', 'the oldest (time 0) wins');
  t.is(table.diagnostics.filter((d) => d.reason === 'RouteConflict').length, 1999);
});

test('snapshotFromObjects reports nameless and duplicate objects and skips foreign kinds', (t) => {
  const { snapshot, problems } = snapshotFromObjects([
    { kind: 'Deployment', metadata: { name: 'web' } },
    { kind: 'Service', metadata: {} },
    { kind: 'Service', metadata: { name: 'a' } },
    { kind: 'Service', metadata: { name: 'a', namespace: 'default' } },
    null,
    'text',
    { kind: 'IngressClass', metadata: { name: 'c', namespace: 'ignored' } },
  ]);
  t.deepEqual([...snapshot.services.keys()], ['default/a']);
  t.deepEqual([...snapshot.ingressClasses.keys()], ['c']);
  t.deepEqual(
    problems.map((p) => p.message),
    ['Service #1 has no metadata.name; skipped', 'Service default/a appears twice; the later copy (#3) is skipped'],
  );
});

test('core annotation specs match the keys the plugin registry reserves for core', (t) => {
  t.deepEqual(CORE_ANNOTATIONS.map((a) => a.key).sort(), [...CORE_ANNOTATION_KEYS].sort());
  for (const a of CORE_ANNOTATIONS) {
    const parsed = RoutingPlugins.parse(a, a.example);
    t.true(parsed.ok, `example of ${a.key} parses`);
  }
});

test('annotation registry: enabled plugins parse, disabled ones are named, relative Secret refs get the Ingress namespace', (t) => {
  const plugins = new RoutingPlugins(
    [
      {
        id: 'acme.auth',
        name: 'auth',
        description: '',
        coreRange: '^0.1.0',
        kind: 'policy',
        order: 0,
        annotations: [defineAnnotation({ key: 'auth-secret', description: '', schema: z.string(), example: 'x', secretRef: true })],
      },
    ],
    [
      {
        id: 'upstream.tls',
        name: 'tls',
        description: '',
        coreRange: '^0.1.0',
        kind: 'transport',
        order: 0,
        protocols: ['https'],
        annotations: [defineAnnotation({ key: 'proxy-ssl-secret', description: '', schema: z.string(), example: 'x' })],
      },
    ],
  );
  t.is(plugins.annotation('auth-secret')?.owner, 'acme.auth');
  t.is(plugins.annotation('connect-timeout')?.owner, 'core');
  t.is(plugins.annotation('proxy-ssl-secret'), undefined);
  t.is(plugins.disabledAnnotationOwner('proxy-ssl-secret'), 'upstream.tls');
  t.false(plugins.serves('https'));
  t.is(plugins.disabledProtocolOwner('https'), 'upstream.tls (plugins.tls.enabled)');

  const objects = [
    CLASS,
    SERVICE,
    SLICE,
    ingress('relative', 'relative.test', 1, { 'warren.dev/auth-secret': 'creds' }),
    ingress('absolute', 'absolute.test', 1, { 'warren.dev/auth-secret': 'vault/creds' }),
  ];
  const table = new RouteTableBuilder({ ingressClass: { name: 'cloudflare-tunnel', controller: 'warren.dev/ingress-controller', watchWithoutClass: false }, plugins }).build(
    snapshotFromObjects(objects).snapshot,
  );
  t.deepEqual(table.match('relative.test', '/p0')?.secretRefs, ['default/creds']);
  t.deepEqual(table.match('absolute.test', '/p0')?.secretRefs, ['vault/creds']);
  t.is(table.match('absolute.test', '/p0')?.annotations['auth-secret'], 'vault/creds');
});

test('loadBuiltinManifests asks for every built-in package and skips those that fail', async (t) => {
  const asked: string[] = [];
  const manifests = await loadBuiltinManifests(async (name) => {
    asked.push(name);
    if (name.endsWith('tls')) return { default: { manifest: { id: 'upstream.tls', name: 'tls' } } };
    throw new Error('not installed');
  });
  t.deepEqual(asked.sort(), Object.values(BUILTIN_PLUGINS).sort());
  t.deepEqual(
    manifests.map((m) => m.id),
    ['upstream.tls'],
  );
});
