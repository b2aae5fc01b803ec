/**
 * The rig itself (core/test/support/rig): real Deployments become pods that run as processes on pod addresses,
 * turn Ready through their readiness probes, are published by the real EndpointSlice controller, fail visibly
 * with an unknown image, and walk preStop → SIGTERM → gone on deletion. A rig stops without leaving a process.
 */
import test from 'ava';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processGroupMembers, waitUntil } from '../e2e/support/children.js';
import { send, sendUntil } from '../e2e/support/http.js';
import { endpointsOf, isReady, podsOf, rigClients, waitForReadyEndpoints, type RigClients } from '../support/rig/cluster.js';
import { startRig, useRig } from '../support/rig/index.js';
import { DEMO_HTTP_PORT, demoDeployment, demoService } from '../support/rig/workloads.js';

const rig = useRig(test);
let clients: RigClients;

test.serial.before(() => {
  clients = rigClients(rig());
});

test.afterEach.always((t) => {
  if (!t.passed) t.log(rig().tail(60));
});

test.serial('the node is Ready and renews its Lease', async (t) => {
  t.log(`rig start-up: ${rig().startupMs} ms`);
  const node = await clients.core.readNode({ name: rig().node.name });
  t.is(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  const coordination = rig().server.adminConfig().makeApiClient(CoordinationV1Api);
  const renewed = async () => new Date(String((await coordination.readNamespacedLease({ namespace: 'kube-node-lease', name: rig().node.name })).spec?.renewTime)).getTime();
  const first = await renewed();
  await waitUntil('a Lease renewal', async () => (await renewed()) > first, 12_000);
  t.pass();
});

test.serial('a Deployment runs as processes on pod addresses, Ready and published in EndpointSlices', async (t) => {
  const ns = await rig().server.createNamespace('rig-run');
  await clients.core.createNamespacedService({ namespace: ns, body: demoService(ns, 'web') });
  await clients.apps.createNamespacedDeployment({ namespace: ns, body: demoDeployment(ns, 'web', { replicas: 2, version: 'blue' }) });
  const addresses = await waitForReadyEndpoints(clients, ns, 'web', 2);
  t.true(
    addresses.every((a) => /^198\.18\.1\.\d+$/.test(a)),
    addresses.join(', '),
  );
  t.is(new Set(addresses).size, 2, 'one address per pod');

  const pods = await podsOf(clients, ns, 'web');
  t.is(pods.length, 2);
  for (const pod of pods) {
    t.true(isReady(pod));
    t.is(pod.spec?.nodeName, rig().node.name);
    t.is(pod.status?.phase, 'Running');
    t.true(addresses.includes(pod.status!.podIP!));
    t.true(pod.status?.containerStatuses?.[0]?.ready);
    t.truthy(pod.status?.containerStatuses?.[0]?.state?.running);
  }
  for (const address of addresses) {
    const answer = await send(`http://${address}:${DEMO_HTTP_PORT}`, '/hello');
    t.is(answer.status, 200);
    t.is(answer.echo?.service, 'blue');
    t.is(answer.echo?.path, '/hello');
  }
});

test.serial('the Gateway API echo backend runs as in the conformance manifests: two pods on port 3000, each in its own network', async (t) => {
  const ns = await rig().server.createNamespace('rig-echo');
  const labels = { app: 'infra-backend-v1' };
  await clients.core.createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name: 'infra-backend-v1' },
      spec: {
        selector: labels,
        ports: [
          { name: 'first-port', port: 8080, targetPort: 3000 },
          { name: 'second-port', port: 8081, targetPort: 3001, appProtocol: 'kubernetes.io/h2c' },
        ],
      },
    },
  });
  const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  await clients.apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'infra-backend-v1', labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'infra-backend-v1',
                image: 'registry.k8s.io/gateway-api/echo-basic:v1.5.1',
                env: [fieldEnv('POD_NAME', 'metadata.name'), fieldEnv('NAMESPACE', 'metadata.namespace')],
              },
            ],
          },
        },
      },
    },
  });
  const addresses = await waitForReadyEndpoints(clients, ns, 'infra-backend-v1', 2);
  const pods = new Set((await podsOf(clients, ns, 'infra-backend-v1')).map((p) => p.metadata!.name!));
  const answeredBy = new Set<string>();
  for (const address of addresses) {
    const answer = await sendUntil(`http://${address}:3000`, '/some/path?x=1', {}, (a) => a.status === 200, 10_000, `echo-basic on ${address}`);
    const report = JSON.parse(answer.body) as { path?: string; namespace?: string; pod?: string };
    t.is(report.path, '/some/path?x=1');
    t.is(report.namespace, ns);
    t.true(pods.has(report.pod ?? ''), `answered by ${report.pod}`);
    answeredBy.add(report.pod ?? '');
  }
  t.is(answeredBy.size, 2, 'each address is its own pod');
});

test.serial('a failing readiness probe takes the pod out of the EndpointSlice; passing again puts it back', async (t) => {
  const ns = await rig().server.createNamespace('rig-probe');
  await clients.core.createNamespacedService({ namespace: ns, body: demoService(ns, 'web') });
  await clients.apps.createNamespacedDeployment({ namespace: ns, body: demoDeployment(ns, 'web', { replicas: 1 }) });
  const [address] = await waitForReadyEndpoints(clients, ns, 'web', 1);
  const [pod] = await podsOf(clients, ns, 'web');
  const dir = rig().node.pod(ns, pod!.metadata!.name!)!.containerDir('origin')!;
  writeFileSync(join(dir, 'unready'), '');
  await waitUntil('the endpoint to turn unready', async () => (await endpointsOf(clients, ns, 'web')).some((e) => e.address === address && !e.ready), 10_000);
  t.false(isReady((await podsOf(clients, ns, 'web'))[0]!));
  await import('node:fs').then((fs) => fs.rmSync(join(dir, 'unready')));
  await waitForReadyEndpoints(clients, ns, 'web', 1, 10_000);
  t.pass();
});

test.serial('an unknown image fails the pod visibly: ErrImagePull and a Warning event', async (t) => {
  const ns = await rig().server.createNamespace('rig-unknown');
  await clients.apps.createNamespacedDeployment({ namespace: ns, body: demoDeployment(ns, 'mystery', { replicas: 1, image: 'registry.example/not-known:1' }) });
  let reason: string | undefined;
  let message = '';
  await waitUntil(
    'the pod to report ErrImagePull',
    async () => {
      const waiting = (await podsOf(clients, ns, 'mystery'))[0]?.status?.containerStatuses?.[0]?.state?.waiting;
      reason = waiting?.reason;
      message = waiting?.message ?? '';
      return reason === 'ErrImagePull';
    },
    20_000,
  );
  t.regex(message, /registry\.example\/not-known:1.*not known/);
  const [pod] = await podsOf(clients, ns, 'mystery');
  t.false(isReady(pod!));
  await waitUntil(
    'a Warning event on the pod',
    async () =>
      (await clients.core.listNamespacedEvent({ namespace: ns })).items.some(
        (e) => e.type === 'Warning' && e.involvedObject.name === pod!.metadata!.name && /not-known/.test(e.message ?? ''),
      ),
    10_000,
  );
  t.pass();
});

test.serial('a pod with init containers fails visibly: the node does not run them', async (t) => {
  const ns = await rig().server.createNamespace('rig-init');
  const body = demoDeployment(ns, 'with-init', { replicas: 1 });
  const main = body.spec!.template.spec!.containers[0]!;
  body.spec!.template.spec!.initContainers = [{ name: 'setup', image: main.image }];
  await clients.apps.createNamespacedDeployment({ namespace: ns, body });
  let message = '';
  await waitUntil(
    'the pod to report CreateContainerConfigError',
    async () => {
      const waiting = (await podsOf(clients, ns, 'with-init'))[0]?.status?.containerStatuses?.[0]?.state?.waiting;
      message = waiting?.message ?? '';
      return waiting?.reason === 'CreateContainerConfigError';
    },
    20_000,
  );
  t.regex(message, /init containers \(setup\) are not run/);
  const [pod] = await podsOf(clients, ns, 'with-init');
  t.false(isReady(pod!));
  await waitUntil(
    'a Warning event on the pod',
    async () =>
      (await clients.core.listNamespacedEvent({ namespace: ns })).items.some(
        (e) => e.type === 'Warning' && e.involvedObject.name === pod!.metadata!.name && /init containers/.test(e.message ?? ''),
      ),
    10_000,
  );
  t.pass();
});

test.serial('deleting a pod walks the termination sequence: terminating endpoint, preStop, SIGTERM, gone', async (t) => {
  const ns = await rig().server.createNamespace('rig-term');
  await clients.core.createNamespacedService({ namespace: ns, body: demoService(ns, 'web') });
  await clients.apps.createNamespacedDeployment({ namespace: ns, body: demoDeployment(ns, 'web', { replicas: 1, preStopSeconds: 2, terminationGracePeriodSeconds: 10 }) });
  const [address] = await waitForReadyEndpoints(clients, ns, 'web', 1);
  const [pod] = await podsOf(clients, ns, 'web');
  const name = pod!.metadata!.name!;
  const running = rig().node.pod(ns, name)!;
  const deleted = Date.now();
  await clients.core.deleteNamespacedPod({ namespace: ns, name });

  // During preStop: the pod still exists with a deletionTimestamp, its endpoint is terminating, and it still serves.
  await waitUntil('a terminating endpoint', async () => (await endpointsOf(clients, ns, 'web')).some((e) => e.address === address && e.terminating && !e.ready), 5_000);
  t.truthy((await clients.core.readNamespacedPod({ namespace: ns, name })).metadata?.deletionTimestamp);
  t.is((await send(`http://${address}:${DEMO_HTTP_PORT}`, '/')).status, 200, 'served during preStop');

  await waitUntil('the pod object to be gone', async () => !(await podsOf(clients, ns, 'web')).some((p) => p.metadata?.name === name), 15_000);
  const elapsed = Date.now() - deleted;
  t.true(elapsed >= 2_000, `gone after ${elapsed} ms, before the 2 s preStop sleep ended`);
  t.true(elapsed < 8_000, `gone after ${elapsed} ms`);
  t.is(running.ip, address);
  const log = rig().tail(200);
  t.regex(log, new RegExp(`${ns}/${name}: container origin preStop done after (19|2\\d)\\d\\d ms`));
  t.regex(log, new RegExp(`${ns}/${name}: container origin SIGTERM`));
  // The ReplicaSet replaced it.
  await waitForReadyEndpoints(clients, ns, 'web', 1);
});

test.serial('a rig stops without leaving a process behind', async (t) => {
  const own = await startRig();
  const c = rigClients(own);
  const ns = await own.server.createNamespace('rig-stop');
  await c.core.createNamespacedService({ namespace: ns, body: demoService(ns, 'web') });
  await c.apps.createNamespacedDeployment({ namespace: ns, body: demoDeployment(ns, 'web', { replicas: 1 }) });
  const [address] = await waitForReadyEndpoints(c, ns, 'web', 1);
  const [pod] = await podsOf(c, ns, 'web');
  const podPid = Number(pod!.status!.containerStatuses![0]!.containerID!.replace('rig://', ''));
  const cmPid = own.controllerManager.pid;
  await own.stop();
  t.deepEqual(processGroupMembers(podPid), [], 'pod process group gone');
  t.deepEqual(processGroupMembers(cmPid), [], 'controller manager gone');
  await t.throwsAsync(send(`http://${address}:${DEMO_HTTP_PORT}`, '/', { timeoutMs: 2_000 }));
});
