/**
 * Warren installed by its own chart with the real helm on the rig: two replicas as a real Deployment, each pod
 * run by the node stand-in with the chart's ConfigMap, credentials Secret and ServiceAccount token mounted where the
 * chart puts them, talking to the apiserver in-cluster style. Under GET and POST load through the edge simulator,
 * the leader pod is deleted (the real termination sequence: SIGTERM, Warren's drain, gone): the other replica takes
 * the Lease, the ReplicaSet replaces the pod, and no request fails.
 */
import test from 'ava';
import { AppsV1Api, CoordinationV1Api } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import { CHART_DIR, helm } from '../chart/helm.js';
import { ingress } from '../support/k8s-objects.js';
import { isReady, rigClients, waitForReadyEndpoints, type RigClients } from '../support/rig/cluster.js';
import { useRig } from '../support/rig/index.js';
import { demoDeployment, demoService } from '../support/rig/workloads.js';
import { tempDir, waitUntil } from './support/children.js';
import { sendUntil } from './support/http.js';
import { TrafficLoop } from './support/traffic.js';
import { startEdge } from './support/warren.js';

const rig = useRig(test);
const RELEASE = 'warren';
const NAMESPACE = 'warren-rig';
const HOST = 'helm.example';
let clients: RigClients;
let edge: EdgeSimulator;

function values(): Record<string, unknown> {
  return {
    replicaCount: 2,
    image: { repository: 'warren', tag: 'rig', pullPolicy: 'Never' },
    logLevel: 'info',
    shutdownGracePeriod: '5s',
    terminationGracePeriodSeconds: 15,
    leaderElection: { enabled: true, leaseDuration: '4s', renewDeadline: '3s', retryPeriod: '500ms' },
    kubernetes: { resyncBurstWindow: '20ms' },
    tunnel: { edgeAddresses: [...edge.edgeAddresses], edgeCaFile: '/etc/warren/edge-ca/ca.crt', haConnections: 2, rpcTimeout: '5s' },
    cloudflare: { tunnelToken: edge.token },
    // Every pod shares the test namespace's network here, so the health port listens on the pod's own address.
    extraEnv: [
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'WARREN_SERVER__LISTEN', value: '$(POD_IP):10254' },
    ],
    extraVolumes: [{ name: 'edge-ca', configMap: { name: 'edge-ca' } }],
    extraVolumeMounts: [{ name: 'edge-ca', mountPath: '/etc/warren/edge-ca', readOnly: true }],
  };
}

const apps = () => rig().server.adminConfig().makeApiClient(AppsV1Api);
const controllerPods = async () =>
  (await clients.core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `app.kubernetes.io/instance=${RELEASE}` })).items.filter((p) => !p.metadata?.deletionTimestamp);

async function leader(): Promise<string | undefined> {
  try {
    const lease = await rig().server.adminConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: NAMESPACE, name: 'warren-leader' });
    return lease.spec?.holderIdentity?.split('_')[0] || undefined;
  } catch {
    return undefined;
  }
}

async function waitForControllers(timeoutMs: number): Promise<void> {
  await waitUntil(
    'two controller pods Ready',
    async () => {
      const d = await apps().readNamespacedDeployment({ namespace: NAMESPACE, name: RELEASE });
      const pods = await controllerPods();
      return d.status?.availableReplicas === 2 && pods.length === 2 && pods.every(isReady);
    },
    timeoutMs,
  );
}

test.serial.before(async () => {
  clients = rigClients(rig());
  edge = await startEdge();
  await clients.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  const { readFileSync } = await import('node:fs');
  await clients.core.createNamespacedConfigMap({ namespace: NAMESPACE, body: { metadata: { name: 'edge-ca' }, data: { 'ca.crt': readFileSync(edge.caFile, 'utf8') } } });
  const dir = tempDir('helm-install');
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, rig().server.adminConfig().exportConfig(), { mode: 0o600 });
  const valuesFile = join(dir, 'values.json');
  writeFileSync(valuesFile, JSON.stringify(values()));
  const install = await helm(['install', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--kubeconfig', kubeconfig, '--values', valuesFile]);
  if (install.code !== 0) throw new Error(`helm install failed:\n${install.stderr}`);
});

test.after.always(async () => {
  await edge?.close();
});

test.afterEach.always((t) => {
  if (t.passed) return;
  t.log(rig().tail(120));
  // The controllers' own account, without the access log lines of answered requests.
  t.log(rig().podLogs(NAMESPACE, { lines: 60, keep: (line) => !/"component":"access".*"status":[23]\d\d,/.test(line) }));
});

test.serial('two replicas installed by helm run on the rig; deleting the leader pod under load fails no request', async (t) => {
  await waitForControllers(90_000);
  const ns = await rig().server.createNamespace('rig-helm');
  await clients.core.createNamespacedService({ namespace: ns, body: demoService(ns, 'web') });
  await clients.apps.createNamespacedDeployment({ namespace: ns, body: demoDeployment(ns, 'web', { replicas: 2 }) });
  await rig()
    .server.adminConfig()
    .makeApiClient((await import('@kubernetes/client-node')).NetworkingV1Api)
    .createNamespacedIngress({
      namespace: ns,
      body: ingress(ns, 'web', { rules: [{ host: HOST, paths: [{ path: '/', service: 'web', port: 80 }] }] }),
    });
  await waitForReadyEndpoints(clients, ns, 'web', 2);
  await sendUntil(edge.eyeballUrl, '/', { host: HOST }, (a) => a.status === 200 && a.echo?.service === 'v1', 30_000, 'served through the chart-installed controllers');

  let old: string | undefined;
  await waitUntil('a leader', async () => (old = await leader()) !== undefined, 30_000);
  const pods = (await controllerPods()).map((p) => p.metadata!.name!);
  t.true(pods.includes(old!), `leader ${old} is one of ${pods.join(', ')}`);

  const loop = (method: string) =>
    new TrafficLoop({ baseUrl: edge.eyeballUrl, host: HOST, method, maxRequests: 20_000, maxMs: 90_000, concurrency: 2, intervalMs: 5 }).start();
  const get = loop('GET');
  const post = loop('POST');
  await Promise.all([get.next(20), post.next(20)]);
  const deleted = Date.now();
  await clients.core.deleteNamespacedPod({ namespace: NAMESPACE, name: old! });
  let next: string | undefined;
  await waitUntil('another replica to lead', async () => (next = await leader()) !== undefined && next !== old, 20_000);
  const takeover = Date.now() - deleted;
  await waitUntil('the old pod to be gone', async () => !(await clients.core.listNamespacedPod({ namespace: NAMESPACE })).items.some((p) => p.metadata?.name === old), 30_000);
  await waitForControllers(60_000);
  await Promise.all([get.next(20), post.next(20)]);
  await Promise.all([get.stop(), post.stop()]);

  t.log(`leader ${old} deleted; ${next} led after ${takeover} ms; GET ${get.results.length}, POST ${post.results.length} requests`);
  t.deepEqual(get.failures(), [], 'no failed GET');
  t.deepEqual(post.failures(), [], 'no failed POST');
  t.not(next, old);
  t.false((await controllerPods()).some((p) => p.metadata?.name === old));
});
