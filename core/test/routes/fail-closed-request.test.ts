/**
 * The case through the real pipeline: `/admin` names a Service that does not exist, next to `/` → web.
 * `GET /admin/secret` must get 503 and never reach web; other paths keep reaching web.
 */
import test from 'ava';
import { getText, startOrigin } from '../../src/proxy/testing.js';
import { startProxyHarness } from '../../src/testing/proxy-harness.js';
import { RouteTableBuilder, routingConfig, snapshotFromObjects } from '../../src/routes/index.js';

test('a path whose Service is missing answers 503 and is never served by the broader route', async (t) => {
  const web = await startOrigin();
  t.teardown(() => web.close());
  const harness = await startProxyHarness();
  t.teardown(() => harness.close());

  const ingress = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'shop', namespace: 'default', uid: 'u1', generation: 1 },
    spec: {
      rules: [
        {
          host: 'shop.example',
          http: {
            paths: [
              { path: '/admin', pathType: 'Prefix', backend: { service: { name: 'admin-svc-typo', port: { number: 80 } } } },
              { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } },
            ],
          },
        },
      ],
    },
  };
  const { snapshot } = snapshotFromObjects([
    { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
    { ...ingress, spec: { ...ingress.spec, ingressClassName: 'cloudflare-tunnel' } },
    { kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { ports: [{ port: 80 }] } },
    {
      kind: 'EndpointSlice',
      metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ port: web.port }],
      endpoints: [{ addresses: ['127.0.0.1'] }],
    },
  ]);
  const table = new RouteTableBuilder(routingConfig(harness.config, [])).build(snapshot);
  t.true(
    table.diagnostics.some((d) => d.reason === 'ServiceNotFound' && d.message.includes('admin-svc-typo')),
    'the Warning is kept',
  );
  await harness.setTable(table);

  const root = await getText(`${harness.url}/`, 'shop.example');
  t.is(root.status, 200);
  t.is(web.requests, 1);
  for (const path of ['/admin', '/admin/secret', '/admin/']) {
    const res = await getText(`${harness.url}${path}`, 'shop.example');
    t.is(res.status, 503, `${path}: ${res.body}`);
  }
  t.is(web.requests, 1, 'web never saw an /admin request');
  t.is((await getText(`${harness.url}/administrator`, 'shop.example')).status, 200, 'element-wise prefix: /administrator is not under /admin');
});
