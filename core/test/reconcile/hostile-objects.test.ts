import type { V1Ingress } from '@kubernetes/client-node';
import test from 'ava';
import { adminClients, useApiServer, type AdminClients } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { endpointSlice, ensureIngressClass, ingress, service, testHost } from '../support/k8s-objects.js';

const server = useApiServer(test);
let controller: TestController;

test.serial.before(async () => {
  await ensureIngressClass(adminClients(server()));
  controller = await startController(server(), { health: true });
  await eventually('leadership', () => controller.cp.elector!.leadership.current.leading);
});
test.after.always(async () => {
  await controller?.stop();
});

interface HostileCase {
  /** Ingress name (events are looked up on it). */
  readonly name: string;
  readonly reason: string;
  /** Message fragment the Event must contain (names the field or value at fault). */
  readonly mentions: RegExp;
  /** Creates the objects (the Ingress last). */
  create(admin: AdminClients, ns: string): Promise<unknown>;
  /** Host that must still route to the good backend despite the problem (partial skips). */
  readonly stillRoutes?: string;
}

const rule = (host: string, svc = 'web', port: number | string = 80, path = '/') => [{ host, paths: [{ path, service: svc, port }] }];
const createIngress = (admin: AdminClients, ns: string, body: V1Ingress) => admin.networking.createNamespacedIngress({ namespace: ns, body });
const annotated = (ns: string, name: string, annotations: Record<string, string>) => ingress(ns, name, { annotations, rules: rule(`${name}.example`) });

const CASES: HostileCase[] = [
  {
    name: 'unknown-annotation',
    reason: 'InvalidAnnotation',
    mentions: /no-such-key/,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'unknown-annotation', { 'warren.dev/no-such-key': 'x' })),
  },
  {
    name: 'uppercase-annotation',
    reason: 'InvalidAnnotation',
    mentions: /Backend-Protocol/,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'uppercase-annotation', { 'warren.dev/Backend-Protocol': 'HTTP' })),
  },
  {
    name: 'bad-protocol',
    reason: 'InvalidAnnotation',
    mentions: /backend-protocol.*FTP/s,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'bad-protocol', { 'warren.dev/backend-protocol': 'FTP' })),
  },
  {
    name: 'bad-timeout',
    reason: 'InvalidAnnotation',
    mentions: /connect-timeout/,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'bad-timeout', { 'warren.dev/connect-timeout': 'forever' })),
  },
  {
    name: 'negative-timeout',
    reason: 'InvalidAnnotation',
    mentions: /idle-timeout/,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'negative-timeout', { 'warren.dev/idle-timeout': '-5s' })),
  },
  {
    name: 'bad-balancing',
    reason: 'InvalidAnnotation',
    mentions: /load-balancing/,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'bad-balancing', { 'warren.dev/load-balancing': 'random-walk' })),
  },
  {
    name: 'huge-annotation',
    reason: 'InvalidAnnotation',
    mentions: /upstream-host/,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'huge-annotation', { 'warren.dev/upstream-host': `${'a'.repeat(60)}.`.repeat(1_500) })),
  },
  {
    name: 'injection-annotation',
    reason: 'InvalidAnnotation',
    mentions: /upstream-host/,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'injection-annotation', { 'warren.dev/upstream-host': 'evil.example\r\nX-Injected: 1' })),
  },
  {
    name: 'grpc-without-plugin',
    reason: 'ProtocolUnavailable',
    mentions: /grpc/i,
    create: (a, ns) => createIngress(a, ns, annotated(ns, 'grpc-without-plugin', { 'warren.dev/backend-protocol': 'GRPC' })),
  },
  {
    name: 'missing-service',
    reason: 'ServiceNotFound',
    mentions: /ghost/,
    create: (a, ns) => createIngress(a, ns, ingress(ns, 'missing-service', { rules: rule('missing-service.example', 'ghost') })),
  },
  {
    name: 'missing-port-number',
    reason: 'ServicePortNotFound',
    mentions: /9999/,
    create: (a, ns) => createIngress(a, ns, ingress(ns, 'missing-port-number', { rules: rule('missing-port-number.example', 'web', 9999) })),
  },
  {
    name: 'missing-port-name',
    reason: 'ServicePortNotFound',
    mentions: /grpc-port/,
    create: (a, ns) => createIngress(a, ns, ingress(ns, 'missing-port-name', { rules: rule('missing-port-name.example', 'web', 'grpc-port') })),
  },
  {
    name: 'resource-backend',
    reason: 'UnsupportedBackend',
    mentions: /resource/i,
    create: (a, ns) => {
      const body = ingress(ns, 'resource-backend', { rules: rule('resource-backend.example') });
      body.spec!.rules![0]!.http!.paths[0]!.backend = { resource: { apiGroup: 'storage.example.com', kind: 'Bucket', name: 'static' } };
      return createIngress(a, ns, body);
    },
  },
  {
    name: 'external-name',
    reason: 'UnsupportedBackend',
    mentions: /ExternalName/,
    create: async (a, ns) => {
      await a.core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'outside' }, spec: { type: 'ExternalName', externalName: 'db.example.com' } } });
      return createIngress(a, ns, ingress(ns, 'external-name', { rules: rule('external-name.example', 'outside') }));
    },
  },
  {
    name: 'tls-section',
    reason: 'TLSIgnored',
    mentions: /tls/i,
    stillRoutes: 'tls-section.example',
    create: (a, ns) => createIngress(a, ns, ingress(ns, 'tls-section', { tls: [{ hosts: ['tls-section.example'], secretName: 'cert' }], rules: rule('tls-section.example') })),
  },
  {
    name: 'conflict-newer',
    reason: 'RouteConflict',
    mentions: /conflict-older/,
    stillRoutes: 'contested.example',
    create: async (a, ns) => {
      await createIngress(a, ns, ingress(ns, 'conflict-older', { rules: rule('contested.example') }));
      await new Promise((r) => setTimeout(r, 1_100)); // creationTimestamp has one-second resolution
      return createIngress(a, ns, ingress(ns, 'conflict-newer', { rules: rule('contested.example', 'api') }));
    },
  },
  {
    name: 'not-ready',
    reason: 'NoReadyEndpoints',
    mentions: /sleepy/,
    create: async (a, ns) => {
      await a.core.createNamespacedService({ namespace: ns, body: service(ns, 'sleepy', [{ port: 80, targetPort: 8080 }]) });
      await a.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'sleepy', [], 8080, { notReady: [testHost(20), testHost(21)] }) });
      return createIngress(a, ns, ingress(ns, 'not-ready', { rules: rule('not-ready.example', 'sleepy') }));
    },
  },
  {
    name: 'h2c-app-protocol',
    reason: 'ProtocolUnavailable',
    mentions: /h2c/i,
    create: async (a, ns) => {
      await a.core.createNamespacedService({ namespace: ns, body: service(ns, 'h2c-svc', [{ port: 80, targetPort: 8080, appProtocol: 'kubernetes.io/h2c' }]) });
      await a.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'h2c-svc', [testHost(22)], 8080) });
      return createIngress(a, ns, ingress(ns, 'h2c-app-protocol', { rules: rule('h2c-app-protocol.example', 'h2c-svc') }));
    },
  },
  {
    name: 'too-many-paths',
    reason: 'TooManyPaths',
    mentions: /5,?00[01]/,
    create: (a, ns) =>
      createIngress(
        a,
        ns,
        ingress(ns, 'too-many-paths', {
          rules: [{ host: 'too-many-paths.example', paths: Array.from({ length: 5_001 }, (_, i) => ({ path: `/p${i}`, pathType: 'Exact', service: 'web', port: 80 })) }],
        }),
      ),
  },
  {
    name: 'rule-without-http',
    reason: 'RuleSkipped',
    mentions: /http\.paths/,
    stillRoutes: 'rule-without-http-ok.example',
    create: (a, ns) => {
      const body = ingress(ns, 'rule-without-http', { rules: rule('rule-without-http-ok.example') });
      body.spec!.rules!.unshift({ host: 'rule-without-http.example' });
      return createIngress(a, ns, body);
    },
  },
  {
    name: 'default-backend-missing',
    reason: 'ServiceNotFound',
    mentions: /phantom/,
    stillRoutes: 'default-backend-missing.example',
    create: (a, ns) =>
      createIngress(a, ns, ingress(ns, 'default-backend-missing', { defaultBackend: { service: 'phantom', port: 80 }, rules: rule('default-backend-missing.example') })),
  },
  {
    name: 'class-conflict',
    reason: 'IngressClassConflict',
    mentions: /ingress\.class/,
    stillRoutes: 'class-conflict.example',
    create: async (a, ns) => {
      await createIngress(a, ns, ingress(ns, 'class-conflict', { className: 'someone-else', rules: rule('class-conflict.example') }));
      // Creating with both is refused by the API server; adding the annotation later is not. The annotation wins.
      const current = await a.networking.readNamespacedIngress({ namespace: ns, name: 'class-conflict' });
      current.metadata!.annotations = { ...current.metadata!.annotations, 'kubernetes.io/ingress.class': 'cloudflare-tunnel' };
      return a.networking.replaceNamespacedIngress({ namespace: ns, name: 'class-conflict', body: current });
    },
  },
  {
    name: 'partly-broken',
    reason: 'ServiceNotFound',
    mentions: /nowhere/,
    stillRoutes: 'partly-broken.example',
    create: (a, ns) =>
      createIngress(
        a,
        ns,
        ingress(ns, 'partly-broken', {
          rules: [
            {
              host: 'partly-broken.example',
              paths: [
                { path: '/', service: 'web', port: 80 },
                { path: '/broken', service: 'nowhere', port: 80 },
              ],
            },
          ],
        }),
      ),
  },
];

test.serial(`${CASES.length} malformed or hostile objects each get the right Warning, and nothing else breaks`, async (t) => {
  t.true(CASES.length >= 20);
  const admin = adminClients(server());
  const ns = await server().createNamespace('hostile');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'web', [{ port: 80, name: 'http', targetPort: 8080 }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'web', [testHost(2)], 8080, { portName: 'http' }) });
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'api', [{ port: 80, targetPort: 8080 }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'api', [testHost(3)], 8080) });
  await createIngress(admin, ns, ingress(ns, 'bystander', { rules: rule('bystander.example') }));
  await controller.store.waitFor((tb) => tb.match('bystander.example', '/') !== undefined, { timeout: 15_000 });

  for (const c of CASES) await c.create(admin, ns);

  for (const c of CASES) {
    const event = await eventually(`${c.reason} on ${c.name}`, async () => {
      const list = await admin.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${c.name}` });
      return list.items.find((e) => e.reason === c.reason);
    });
    t.is(event.type, 'Warning', c.name);
    t.is(event.involvedObject.kind, 'Ingress', c.name);
    t.regex(event.message ?? '', c.mentions, `${c.name}: ${event.message}`);
    t.true((event.message ?? '').length <= 1024, `${c.name}: message bounded`);
    t.regex(event.message ?? '', new RegExp(c.name === 'conflict-newer' ? 'conflict' : c.name), `${c.name}: the message names the Ingress`);
  }

  const table = controller.store.current;
  for (const c of CASES) if (c.stillRoutes) t.truthy(table.match(c.stillRoutes, '/'), `${c.stillRoutes} still routes`);
  t.is(table.match('contested.example', '/')?.backend.service, 'web', 'the older Ingress wins the conflict');
  // (The request itself now gets the 503 of default-backend-missing's unresolved spec.defaultBackend.)
  t.false(
    table.routes.some((r) => r.ingress.name === 'unknown-annotation'),
    'an Ingress with a bad annotation is skipped whole (fail closed)',
  );
  t.is(table.match('unknown-annotation.example', '/')?.unresolved?.reason, 'ServiceNotFound', 'a broken default backend answers 503, not 404');
  t.is(table.match('bystander.example', '/')?.backend.endpoints[0]?.address, testHost(2));

  // The controller is still healthy and keeps reconciling new objects.
  t.is(controller.manager.phase, 'running');
  t.deepEqual(controller.health!.readiness(), true);
  await createIngress(admin, ns, ingress(ns, 'afterwards', { rules: rule('afterwards.example', 'api') }));
  await controller.store.waitFor((tb) => tb.match('afterwards.example', '/')?.backend.service === 'api', { timeout: 15_000 });
  t.false(controller.logs.text.includes('"level":"error"') || controller.logs.text.includes('"level":"fatal"'), 'no errors logged');
});
