/**
 * The Kubernetes ingress-conformance scenarios,
 * re-expressed for Warren and run through the whole system: objects in a real kube-apiserver, Warren's real
 * controller process authenticated with a ServiceAccount token bound only to deploy/rbac.yaml, requests entering
 * the edge simulator's eyeball entrance with the scenario's Host header, crossing the tunnel into Warren's
 * connector and proxy pipeline, and answered by echo backends on test hosts listed in EndpointSlices that the
 * test writes itself.
 *
 * The scenarios share one apiserver and one controller, so they run in order: the default-backend and
 * load-balancing scenarios each own the single cluster-wide default backend while they run, and the 404s of
 * the host and path scenarios need none to exist.
 */
import test from 'ava';
import type { V1Ingress } from '@kubernetes/client-node';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import { adminClients, useApiServer, type AdminClients } from '../support/apiserver.js';
import { ensureIngressClass, ingress, ingressClass } from '../support/k8s-objects.js';
import { waitUntil } from './support/children.js';
import { createEchoBackend, eventsFor, statusAddresses } from './support/cluster.js';
import { EchoPool, type EchoService } from './support/echo.js';
import { send, sendUntil, type HttpAnswer, type SendOptions } from './support/http.js';
import { controllerKubeconfig, startEdge, startWarren, tunnelHostname, type WarrenProcess } from './support/warren.js';

const server = useApiServer(test);
let admin: AdminClients;
let edge: EdgeSimulator;
let warren: WarrenProcess;
const echoes = new EchoPool();
const echo = (name: string, count = 1): Promise<EchoService> => echoes.start(name, count);

test.serial.before(async () => {
  admin = adminClients(server());
  await ensureIngressClass(admin);
  await ensureIngressClass(admin, ingressClass('someone-else', { controller: 'example.com/other-controller' }));
  edge = await startEdge();
  warren = await startWarren({ podName: 'warren-conformance', kubeconfigFile: await controllerKubeconfig(server()), edge });
});

test.afterEach.always((t) => {
  if (!t.passed && warren) t.log(warren.child.tail(80));
});

test.after.always(async () => {
  await warren?.stop();
  await edge?.close();
  await echoes.closeAll();
});

/** A request through the edge: the eyeball entrance, with `host` as the Host header. */
function viaEdge(host: string | undefined, path: string, options: Omit<SendOptions, 'host'> = {}): Promise<HttpAnswer> {
  return send(edge.eyeballUrl, path, { ...options, ...(host === undefined ? {} : { host }) });
}

/** Waits (bounded) until `host` + `path` is answered 200 by `service`: the route is live. */
function routed(host: string, path: string, service: string): Promise<HttpAnswer> {
  return sendUntil(edge.eyeballUrl, path, { host }, (a) => a.status === 200 && a.echo?.service === service, 20_000, `${host}${path} served by ${service}`);
}

/** Waits (bounded) until the Ingress carries exactly the tunnel hostname in its status. */
async function statusPublished(namespace: string, name: string): Promise<void> {
  const want = tunnelHostname(edge);
  await waitUntil(`status ${want} on ${namespace}/${name}`, async () => (await statusAddresses(admin, namespace, name)).join() === want, 20_000);
}

async function createIngress(namespace: string, body: V1Ingress): Promise<void> {
  await admin.networking.createNamespacedIngress({ namespace, body });
}

test.serial('host rules: exact host, wildcard covering one label, named and numbered ports, 404 otherwise; spec.tls only warns', async (t) => {
  const ns = await server().createNamespace('host-rules');
  await createEchoBackend(admin, ns, await echo('wildcard-foo-com'));
  await createEchoBackend(admin, ns, await echo('foo-bar-com'), { portName: 'http' });
  await createIngress(
    ns,
    ingress(ns, 'host-rules', {
      rules: [
        { host: '*.foo.com', paths: [{ path: '/', pathType: 'Prefix', service: 'wildcard-foo-com', port: 80 }] },
        { host: 'foo.bar.com', paths: [{ path: '/', pathType: 'Prefix', service: 'foo-bar-com', port: 'http' }] },
      ],
      tls: [{ hosts: ['foo.bar.com'], secretName: 'conformance-tls' }],
    }),
  );
  await statusPublished(ns, 'host-rules');
  await routed('foo.bar.com', '/', 'foo-bar-com');
  await routed('bar.foo.com', '/', 'wildcard-foo-com');

  const exact = await viaEdge('foo.bar.com', '/');
  t.is(exact.status, 200);
  t.is(exact.echo?.service, 'foo-bar-com');
  t.is(exact.echo?.host, 'foo.bar.com', 'the Host header reaches the backend unchanged');

  const wildcard = await viaEdge('bar.foo.com', '/');
  t.is(wildcard.status, 200);
  t.is(wildcard.echo?.service, 'wildcard-foo-com');
  t.is(wildcard.echo?.host, 'bar.foo.com');

  for (const host of ['subdomain.bar.com', 'baz.bar.foo.com', 'foo.com']) {
    t.is((await viaEdge(host, '/')).status, 404, `${host} matches no rule`);
  }

  await waitUntil('a TLSIgnored Warning', async () => (await eventsFor(admin, ns, 'host-rules')).some((e) => e.reason === 'TLSIgnored'), 20_000);
  const warnings = (await eventsFor(admin, ns, 'host-rules')).filter((e) => e.type === 'Warning');
  t.deepEqual(
    warnings.map((e) => e.reason),
    ['TLSIgnored'],
    'spec.tls gives a Warning and nothing else goes wrong',
  );
});

test.serial('path rules: Exact and Prefix, element-wise prefixes, longest prefix, Exact over Prefix, trailing slashes, case', async (t) => {
  const ns = await server().createNamespace('path-rules');
  for (const name of ['foo-exact', 'foo-prefix', 'aaa-slash-bbb-prefix', 'aaa-prefix', 'aaa-slash-bbb-slash-prefix', 'foo-slash-exact']) {
    await createEchoBackend(admin, ns, await echo(name));
  }
  await createIngress(
    ns,
    ingress(ns, 'path-rules', {
      rules: [
        { host: 'exact-path-rules', paths: [{ path: '/foo', pathType: 'Exact', service: 'foo-exact', port: 80 }] },
        {
          host: 'prefix-path-rules',
          paths: [
            { path: '/foo', pathType: 'Prefix', service: 'foo-prefix', port: 80 },
            { path: '/aaa/bbb', pathType: 'Prefix', service: 'aaa-slash-bbb-prefix', port: 80 },
            { path: '/aaa', pathType: 'Prefix', service: 'aaa-prefix', port: 80 },
          ],
        },
        {
          host: 'mixed-path-rules',
          paths: [
            { path: '/foo', pathType: 'Prefix', service: 'foo-prefix', port: 80 },
            { path: '/foo', pathType: 'Exact', service: 'foo-exact', port: 80 },
          ],
        },
        {
          host: 'trailing-slash-path-rules',
          paths: [
            { path: '/aaa/bbb/', pathType: 'Prefix', service: 'aaa-slash-bbb-slash-prefix', port: 80 },
            { path: '/foo/', pathType: 'Exact', service: 'foo-slash-exact', port: 80 },
          ],
        },
      ],
    }),
  );
  await statusPublished(ns, 'path-rules');
  await routed('trailing-slash-path-rules', '/foo/', 'foo-slash-exact');

  // [host, path, service answering or undefined for 404] — the conformance cases plus two that pin the other side.
  const cases: Array<[string, string, string | undefined]> = [
    ['exact-path-rules', '/foo', 'foo-exact'],
    ['exact-path-rules', '/foo/', undefined],
    ['exact-path-rules', '/FOO', undefined],
    ['exact-path-rules', '/bar', undefined],
    ['prefix-path-rules', '/foo', 'foo-prefix'],
    ['prefix-path-rules', '/foo/', 'foo-prefix'],
    ['prefix-path-rules', '/FOO', undefined],
    ['prefix-path-rules', '/aaa/bbb', 'aaa-slash-bbb-prefix'],
    ['prefix-path-rules', '/aaa/bbb/ccc', 'aaa-slash-bbb-prefix'],
    ['prefix-path-rules', '/aaa/ccc', 'aaa-prefix'],
    ['prefix-path-rules', '/aaaccc', undefined],
    ['mixed-path-rules', '/foo', 'foo-exact'],
    ['mixed-path-rules', '/foo/bar', 'foo-prefix'],
    ['trailing-slash-path-rules', '/aaa/bbb', 'aaa-slash-bbb-slash-prefix'],
    ['trailing-slash-path-rules', '/aaa/bbb/', 'aaa-slash-bbb-slash-prefix'],
    ['trailing-slash-path-rules', '/foo', undefined],
  ];
  for (const [host, path, service] of cases) {
    const answer = await viaEdge(host, path);
    if (service === undefined) {
      t.is(answer.status, 404, `${host}${path} → 404`);
    } else {
      t.is(answer.status, 200, `${host}${path} → 200`);
      t.is(answer.echo?.service, service, `${host}${path} → ${service}`);
      t.is(answer.echo?.path, path, `${host}${path} reaches the backend unchanged`);
    }
  }
});

test.serial('ingress class: Ingresses of a foreign or unknown class get no route, status, events or finalizers', async (t) => {
  const ns = await server().createNamespace('ingress-class');
  const backend = await echo('class-echo');
  await createEchoBackend(admin, ns, backend);
  await createIngress(
    ns,
    ingress(ns, 'invalid-class', { className: 'some-invalid-class-name', rules: [{ host: 'ingress-class', paths: [{ service: 'class-echo', port: 80 }] }] }),
  );
  await createIngress(
    ns,
    ingress(ns, 'other-controller', { className: 'someone-else', rules: [{ host: 'other-controller.example', paths: [{ service: 'class-echo', port: 80 }] }] }),
  );
  // Created after the foreign ones: once it is routed and has its status, Warren has seen them too.
  await createIngress(ns, ingress(ns, 'marker', { rules: [{ host: 'class-marker.example', paths: [{ service: 'class-echo', port: 80 }] }] }));
  await routed('class-marker.example', '/', 'class-echo');
  await statusPublished(ns, 'marker');

  t.is((await viaEdge('ingress-class', '/')).status, 404);
  t.is((await viaEdge('other-controller.example', '/')).status, 404);
  for (const name of ['invalid-class', 'other-controller']) {
    t.deepEqual(await statusAddresses(admin, ns, name), [], `${name}: no status`);
    t.deepEqual(await eventsFor(admin, ns, name), [], `${name}: no events`);
    const stored = await admin.networking.readNamespacedIngress({ namespace: ns, name });
    t.deepEqual(stored.metadata?.finalizers ?? [], [], `${name}: no finalizer`);
  }
  t.is(backend.hits.get(backend.addresses[0]!), 1, 'only the marker request reached the backend');
});

test.serial('default backend: every method and path of any host goes to spec.defaultBackend over HTTP/1.1', async (t) => {
  const ns = await server().createNamespace('default-backend');
  await createEchoBackend(admin, ns, await echo('echo-service'), { servicePort: 8080 });
  await createIngress(ns, ingress(ns, 'default-backend', { defaultBackend: { service: 'echo-service', port: 8080 } }));
  await statusPublished(ns, 'default-backend');
  await routed('my-host', '/', 'echo-service');

  const cases: Array<[string, string | undefined, string]> = [
    ['GET', 'my-host', '/'],
    ['GET', 'my-host', '/sub-path'],
    ['POST', 'some-host', '/'],
    ['PUT', undefined, '/resource'],
    ['DELETE', 'some-host', '/resource'],
    ['PATCH', 'my-host', '/resource'],
  ];
  for (const [method, host, path] of cases) {
    const label = `${method} ${host ?? '(no Host override)'} ${path}`;
    const answer = await viaEdge(host, path, { method, headers: { 'user-agent': 'warren-conformance/1' }, ...(method === 'GET' ? {} : { body: '' }) });
    t.is(answer.status, 200, label);
    t.is(answer.echo?.service, 'echo-service', label);
    t.is(answer.echo?.method, method, label);
    t.is(answer.echo?.path, path, label);
    t.is(answer.echo?.httpVersion, '1.1', `${label}: HTTP/1.1 upstream`);
    t.is(answer.echo?.headers?.['user-agent'], 'warren-conformance/1', `${label}: request headers pass`);
    // The suite also wants Server, which a web server in front usually adds; in production Cloudflare's edge adds it, neither Warren nor the simulator.
    for (const header of ['content-length', 'content-type', 'date']) t.truthy(answer.headers[header], `${label}: ${header}`);
  }

  // Removing the Ingress removes the default backend: unknown hosts get 404 again.
  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'default-backend' });
  await sendUntil(edge.eyeballUrl, '/', { host: 'my-host' }, (a) => a.status === 404, 20_000, 'my-host → 404 after the delete');
});

test.serial('load balancing: 100 requests to a default backend with 10 ready endpoints reach all 10', async (t) => {
  const ns = await server().createNamespace('load-balancing');
  const pods = await echo('echo-lb', 10);
  await createEchoBackend(admin, ns, pods);
  await createIngress(ns, ingress(ns, 'load-balancing', { defaultBackend: { service: 'echo-lb', port: 80 } }));
  await statusPublished(ns, 'load-balancing');
  await routed('load-balancing', '/', 'echo-lb');

  const answers: HttpAnswer[] = [];
  const worker = async () => {
    while (answers.length < 100) {
      const pending = viaEdge('load-balancing', '/');
      answers.push(await pending);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  t.true(answers.length >= 100 && answers.length <= 103);
  t.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
  const backends = new Set(answers.map((a) => a.echo?.backend));
  t.is(backends.size, 10, `answered by ${[...backends].join(', ')}`);
  for (const address of pods.addresses) t.true(backends.has(`${address}:${pods.port}`), `${address} answered`);

  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'load-balancing' });
  await sendUntil(edge.eyeballUrl, '/', { host: 'load-balancing' }, (a) => a.status === 404, 20_000, 'load-balancing → 404 after the delete');
});
