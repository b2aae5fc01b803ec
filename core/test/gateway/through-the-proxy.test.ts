import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { endpointSlice, service, testHost } from '../support/k8s-objects.js';
import { get as httpGet } from 'node:http';
import { startOrigin } from '../../src/proxy/testing.js';
import { installGatewayCrds } from './crds.js';

const server = useApiServer(test);
let controller: TestController;
const GROUP = '/apis/gateway.networking.k8s.io/v1';

test.before(async () => {
  await installGatewayCrds(server().adminClient());
  controller = await startController(server(), { proxy: true, tunnelId: 'tunnel-e2e' });
});
test.after.always(async () => {
  await controller?.stop();
});

/** An HTTPRoute on the real apiserver, served by the controller's proxy like an Ingress. */
test('an HTTPRoute serves through the proxy: match, redirect, 500 for a missing backend, Warning event', async (t) => {
  const api = server().adminClient();
  const admin = adminClients(server());
  const ns = await server().createNamespace('gwe2e');
  const origin = await startOrigin({ host: testHost(13) });
  t.teardown(() => origin.close());
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'web', [{ port: 80, targetPort: origin.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'web', [testHost(13)], origin.port) });
  const create = <T extends KubernetesObject>(resource: string, body: T, namespaced = true) =>
    api.post<T>(`${GROUP}${namespaced ? `/namespaces/${ns}` : ''}/${resource}`, body);
  await create(
    'gatewayclasses',
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: `c-${ns}` },
      spec: { controllerName: 'warren.dev/gateway-controller' },
    } as KubernetesObject,
    false,
  );
  await create('gateways', {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'gw', namespace: ns },
    spec: { gatewayClassName: `c-${ns}`, listeners: [{ name: 'http', port: 80, protocol: 'HTTP', hostname: '*.gw.example' }] },
  } as KubernetesObject);
  await create('httproutes', {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: ns },
    spec: {
      parentRefs: [{ name: 'gw' }],
      hostnames: ['app.gw.example'],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ name: 'x-env', value: 'canary' }] }], backendRefs: [{ name: 'web', port: 80 }] },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/old' } }],
          filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' }, statusCode: 301 } }],
        },
        { matches: [{ path: { type: 'PathPrefix', value: '/missing' } }], backendRefs: [{ name: 'nowhere', port: 80 }] },
      ],
    },
  } as KubernetesObject);
  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; location?: string }>((resolve, reject) => {
      httpGet(`${controller.entryUrl}${path}`, { agent: false, headers: { host: 'app.gw.example', ...headers } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location }));
      }).on('error', reject);
    });
  await eventually('served', async () => (await get('/x', { 'x-env': 'canary' })).status === 200);
  t.is((await get('/x')).status, 404, 'without the header no rule matches');
  t.deepEqual(await get('/old/a'), { status: 301, location: 'http://app.gw.example/new/a' });
  t.is((await get('/missing')).status, 500, 'a backendRef to a missing Service answers 500');
  const event = await eventually('a Warning event on the HTTPRoute', async () => {
    const list = await admin.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=r' });
    return list.items.find((e) => e.type === 'Warning');
  });
  t.is(event.reason, 'BackendNotFound');
  t.is(event.involvedObject.kind, 'HTTPRoute');
  t.is(event.involvedObject.apiVersion, 'gateway.networking.k8s.io/v1');
});
