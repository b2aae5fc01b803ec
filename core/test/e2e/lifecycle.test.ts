/**
 * The life of routed objects, seen from outside Warren's real controller process: requests through the edge
 * simulator follow every create, update and delete of Ingresses, Services and EndpointSlices within 5 s; the
 * Ingress status is written, follows the publishHostname setting across a restart, survives a graceful stop
 * and is cleared when the Ingress moves to another class; a broken Ingress gets its Warning events once, not
 * once per rebuild; and SIGTERM lets an in-flight request finish before the process exits 0.
 *
 * One apiserver, one edge simulator; the controller process is replaced where a test needs a restart.
 */
import test from 'ava';
import type { V1Ingress } from '@kubernetes/client-node';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import { adminClients, useApiServer, type AdminClients } from '../support/apiserver.js';
import { endpointSlice, ensureIngressClass, ingress, ingressClass, service } from '../support/k8s-objects.js';
import { describeExit, waitUntil } from './support/children.js';
import { eventsFor, statusAddresses } from './support/cluster.js';
import { EchoPool, type EchoService } from './support/echo.js';
import { send, sendUntil, type HttpAnswer } from './support/http.js';
import { controllerKubeconfig, startEdge, startWarren, tunnelHostname, type WarrenProcess } from './support/warren.js';

/** How long a change may take to reach the data plane. */
const FOLLOW_MS = 5_000;

const server = useApiServer(test);
let admin: AdminClients;
let edge: EdgeSimulator;
let kubeconfigFile: string;
let warren: WarrenProcess | undefined;
const echoes = new EchoPool();
const echo = (name: string, count = 1): Promise<EchoService> => echoes.start(name, count);

async function startController(podName: string, sets: readonly string[] = []): Promise<WarrenProcess> {
  warren = await startWarren({ podName, kubeconfigFile, edge, sets });
  return warren;
}

test.serial.before(async () => {
  admin = adminClients(server());
  await ensureIngressClass(admin);
  await ensureIngressClass(admin, ingressClass('someone-else', { controller: 'example.com/other-controller' }));
  edge = await startEdge();
  kubeconfigFile = await controllerKubeconfig(server());
  await startController('warren-lifecycle-1');
});

test.afterEach.always((t) => {
  if (!t.passed && warren) t.log(warren.child.tail(80));
});

test.after.always(async () => {
  await warren?.stop();
  await edge?.close();
  await echoes.closeAll();
});

/** Waits until a request for `host` + `path` through the edge satisfies `accept`, for at most FOLLOW_MS. */
function follows(host: string, path: string, accept: (a: HttpAnswer) => boolean, what: string): Promise<HttpAnswer> {
  return sendUntil(edge.eyeballUrl, path, { host }, accept, FOLLOW_MS, `${host}${path}: ${what}`);
}
const servedBy = (echo: EchoService) => (a: HttpAnswer) => a.status === 200 && a.echo?.service === echo.name;
const status = (code: number) => (a: HttpAnswer) => a.status === code;

test.serial('requests follow create, update and delete of Ingress, Service and EndpointSlice within 5 s', async (t) => {
  const ns = await server().createNamespace('follow');
  const first = await echo('first');
  const second = await echo('second');
  const host = 'follow.example';
  const slice = (e: EchoService) => endpointSlice(ns, 'web', e.addresses, e.port, { sliceName: 'web-slice' });

  // Create: Service, EndpointSlice, Ingress.
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'web', [{ port: 80, targetPort: first.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: slice(first) });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'follow', { rules: [{ host, paths: [{ path: '/', service: 'web', port: 80 }] }] }) });
  const created = await follows(host, '/', servedBy(first), 'created route to the first backend');
  t.is(created.echo?.backend, `${first.addresses[0]}:${first.port}`);

  // Update the EndpointSlice: the Service's pods move to the second backend.
  await admin.discovery.replaceNamespacedEndpointSlice({ namespace: ns, name: 'web-slice', body: slice(second) });
  await follows(host, '/', servedBy(second), 'EndpointSlice update');

  // Update the Service: its port 80 becomes 81, so the Ingress's backend port no longer exists (503: the path
  // holds its place) …
  const svc = await admin.core.readNamespacedService({ namespace: ns, name: 'web' });
  svc.spec!.ports![0]!.port = 81;
  await admin.core.replaceNamespacedService({ namespace: ns, name: 'web', body: svc });
  await follows(host, '/', status(503), 'Service port renumbered away from the Ingress');
  // … and updating the Ingress to port 81 routes again.
  const ing = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'follow' });
  ing.spec!.rules![0]!.http!.paths[0]!.backend.service!.port = { number: 81 };
  await admin.networking.replaceNamespacedIngress({ namespace: ns, name: 'follow', body: ing });
  await follows(host, '/', servedBy(second), 'Ingress updated to the new port');

  // Update the Ingress: a second path to another Service.
  const third = await echo('third');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'api', [{ port: 80, targetPort: third.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'api', third.addresses, third.port) });
  const withApi = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'follow' });
  withApi.spec!.rules![0]!.http!.paths.push({ path: '/api', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } });
  await admin.networking.replaceNamespacedIngress({ namespace: ns, name: 'follow', body: withApi });
  await follows(host, '/api/items', servedBy(third), 'new path');
  t.is((await send(edge.eyeballUrl, '/', { host })).echo?.service, 'second', 'the other path still goes to web');

  // Delete the EndpointSlice: no ready endpoint left, 503; create it again: 200.
  await admin.discovery.deleteNamespacedEndpointSlice({ namespace: ns, name: 'web-slice' });
  await follows(host, '/', status(503), 'EndpointSlice deleted');
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: slice(first) });
  await follows(host, '/', servedBy(first), 'EndpointSlice created again');

  // Delete the Service: the path answers 503 (it is not handed to a broader route); create it again: 200.
  await admin.core.deleteNamespacedService({ namespace: ns, name: 'web' });
  await follows(host, '/', status(503), 'Service deleted');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'web', [{ port: 81, targetPort: first.port }]) });
  await follows(host, '/', servedBy(first), 'Service created again');

  // Delete the Ingress: every path of the host is gone.
  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'follow' });
  await follows(host, '/', status(404), 'Ingress deleted');
  await follows(host, '/api/items', status(404), 'Ingress deleted (second path)');
});

test.serial('a broken Ingress gets its Warning events once, not once per rebuild; its good path is served', async (t) => {
  const ns = await server().createNamespace('events');
  const a = await echo('events-a');
  const b = await echo('events-b');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'web', [{ port: 80, targetPort: a.port }]) });
  // The slice names the pod port, so each churn step lists one backend with its own port.
  const slice = (e: EchoService) => endpointSlice(ns, 'web', e.addresses, e.port, { sliceName: 'web-slice' });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: slice(a) });
  const host = 'broken.example';
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'broken', {
      rules: [
        {
          host,
          paths: [
            { path: '/ok', service: 'web', port: 80 },
            { path: '/missing-service', service: 'does-not-exist', port: 80 },
            { path: '/missing-port', service: 'web', port: 9999 },
          ],
        },
      ],
    }),
  });
  await follows(host, '/ok', servedBy(a), 'the good path of the broken Ingress');
  // Paths whose backend cannot be resolved hold their place with 503 (fail closed, never a broader route).
  t.is((await send(edge.eyeballUrl, '/missing-service', { host })).status, 503);
  t.is((await send(edge.eyeballUrl, '/missing-port', { host })).status, 503);

  const warnings = async () => (await eventsFor(admin, ns, 'broken')).filter((e) => e.type === 'Warning');
  await waitUntil(
    'ServiceNotFound and ServicePortNotFound',
    async () => {
      const reasons = new Set((await warnings()).map((e) => e.reason));
      return reasons.has('ServiceNotFound') && reasons.has('ServicePortNotFound');
    },
    20_000,
  );
  const notFound = (await warnings()).find((e) => e.reason === 'ServiceNotFound')!;
  t.regex(notFound.message ?? '', /does-not-exist/, 'the event names the missing Service');
  t.is(notFound.involvedObject.kind, 'Ingress');

  const snapshot = async () =>
    (await eventsFor(admin, ns, 'broken'))
      .map((e) => `${e.type}/${e.reason}:${e.count ?? 1}`)
      .sort()
      .join(' ');
  const before = await snapshot();

  // Eight rebuilds: label edits on the broken Ingress itself and endpoint churn of its Service, each one seen
  // on the data plane before the next.
  for (let i = 0; i < 8; i++) {
    const current = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'broken' });
    current.metadata!.labels = { ...(current.metadata!.labels ?? {}), churn: String(i) };
    await admin.networking.replaceNamespacedIngress({ namespace: ns, name: 'broken', body: current });
    const target = i % 2 === 0 ? b : a;
    await admin.discovery.replaceNamespacedEndpointSlice({ namespace: ns, name: 'web-slice', body: slice(target) });
    await follows(host, '/ok', servedBy(target), `churn step ${i}`);
  }
  // A second broken Ingress, created last: once its own Warning is written, the first one's would have been too.
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'marker', { rules: [{ host: 'marker.example', paths: [{ path: '/', service: 'also-missing', port: 80 }] }] }),
  });
  await waitUntil('the marker Ingress warning', async () => (await eventsFor(admin, ns, 'marker')).some((e) => e.reason === 'ServiceNotFound'), 20_000);
  t.is(await snapshot(), before, 'no new Events and no count increments after 8 rebuilds');
});

test.serial('status: written, follows publishHostname across a restart, kept on a graceful stop, cleared on a class change', async (t) => {
  const ns = await server().createNamespace('status');
  const backend = await echo('status-web');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'web', [{ port: 80, targetPort: backend.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'web', backend.addresses, backend.port) });
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'owned', { rules: [{ host: 'status.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  const statusIs = (want: string[]) => waitUntil(`status ${want.join() || '(empty)'}`, async () => (await statusAddresses(admin, ns, 'owned')).join() === want.join(), 20_000);
  await statusIs([tunnelHostname(edge)]);
  t.deepEqual(await statusAddresses(admin, ns, 'owned'), [tunnelHostname(edge)]);

  // A graceful stop leaves the status alone (the tunnel outlives the process).
  const exit = await warren!.stop();
  t.is(exit.code, 0, `graceful stop exits 0 (${describeExit(exit)})`);
  warren = undefined;
  t.deepEqual(await statusAddresses(admin, ns, 'owned'), [tunnelHostname(edge)], 'status kept after the stop');

  // Restarted with kubernetes.publishHostname: the status follows the setting.
  await startController('warren-lifecycle-2', ['kubernetes.publishHostname=lb.warren.test']);
  await statusIs(['lb.warren.test']);
  t.is((await send(edge.eyeballUrl, '/', { host: 'status.example' })).echo?.service, 'status-web', 'and it serves traffic');

  // The Ingress moves to another controller's class: Warren clears what it wrote and stops routing it.
  const moved: V1Ingress = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'owned' });
  moved.spec!.ingressClassName = 'someone-else';
  await admin.networking.replaceNamespacedIngress({ namespace: ns, name: 'owned', body: moved });
  await statusIs([]);
  await follows('status.example', '/', status(404), 'no route after the class change');
});

test.serial('SIGTERM: an in-flight request finishes, then the process exits 0', async (t) => {
  const ns = await server().createNamespace('drain');
  const slow = await echo('slow');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'slow', [{ port: 80, targetPort: slow.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'slow', slow.addresses, slow.port) });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'slow', { rules: [{ host: 'slow.example', paths: [{ service: 'slow', port: 80 }] }] }) });
  await follows('slow.example', '/', servedBy(slow), 'route to the slow backend');
  const proc = warren!;

  const pending = send(edge.eyeballUrl, '/download?delay=2000', { host: 'slow.example', timeoutMs: 20_000 });
  await waitUntil('the slow request to reach the backend', () => slow.inFlight === 1, 10_000);
  proc.child.signal('SIGTERM');
  const answer = await pending;
  t.is(answer.status, 200, 'the in-flight request completes');
  t.is(answer.echo?.service, 'slow');
  t.is(answer.echo?.path, '/download?delay=2000');

  const exit = await Promise.race([proc.child.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no exit within 20 s of SIGTERM')), 20_000))]);
  t.is(exit.code, 0, `exit after SIGTERM: ${describeExit(exit)}`);
  t.true(
    proc.logLines().some((l) => l.msg === 'stopped'),
    'the log records a graceful stop',
  );
  warren = undefined;
});

test.serial('SIGTERM: a request the edge sends before it has processed the unregistration is still served', async (t) => {
  const proc = warren ?? (await startController('warren-lifecycle-3'));
  const ns = await server().createNamespace('late');
  const backend = await echo('late');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'late', [{ port: 80, targetPort: backend.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'late', backend.addresses, backend.port) });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'late', { rules: [{ host: 'late.example', paths: [{ service: 'late', port: 80 }] }] }) });
  await follows('late.example', '/', servedBy(backend), 'route to the backend');
  await edge.waitForRegistrations(2);

  // A distant edge learns of an unregistration one round trip late, and meanwhile keeps sending requests on the
  // connection. Holding back the edge's reading of the control streams makes that round trip as long as needed.
  const connections = edge.registeredConnections();
  for (const c of connections) c.controlStream?.pause();
  try {
    proc.child.signal('SIGTERM');
    await proc.child.waitForOutput(/"msg":"stopping the tunnel connector"/, 10_000, 'the connector to start its drain');
    t.true(
      connections.every((c) => c.routable),
      'the edge still routes to the connections',
    );
    const late = await send(edge.eyeballUrl, '/late', { host: 'late.example' });
    t.is(late.status, 200, `a request arriving during the drain is served (got ${late.status} ${late.body.slice(0, 80)})`);
    t.is(late.echo?.service, 'late');
  } finally {
    for (const c of connections) c.controlStream?.resume();
  }
  const exit = await proc.child.exited;
  t.is(exit.code, 0, describeExit(exit));
  warren = undefined;
});
