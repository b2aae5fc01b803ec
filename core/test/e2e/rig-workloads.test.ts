/**
 * Warren in front of real workloads on the rig (core/test/support/rig): Deployments rolled by the real
 * Deployment controller, pods run by the node stand-in, EndpointSlices written by the real EndpointSlice
 * controller, and traffic through the edge simulator into Warren's real controller process.
 *
 *  - a rolling update (maxUnavailable 0, preStop sleep) under continuous load loses no request;
 *  - the same rollout without preStop is measured (what it loses is logged; see core/test/e2e/README.md);
 *  - scaled to 0 the host answers 503, and it is served again within 1 s of the first pod turning Ready;
 *  - a pod whose readiness probe fails leaves rotation without a failed request.
 */
import test from 'ava';
import type { V1Deployment } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import { adminClients, type AdminClients } from '../support/apiserver.js';
import { ensureIngressClass, ingress } from '../support/k8s-objects.js';
import { endpointsOf, isReady, podsOf, rigClients, waitForReadyEndpoints, waitForRollout, type RigClients } from '../support/rig/cluster.js';
import { useRig } from '../support/rig/index.js';
import { demoDeployment, demoService, type DemoDeploymentOptions } from '../support/rig/workloads.js';
import { waitUntil } from './support/children.js';
import { send, sendUntil } from './support/http.js';
import { TrafficLoop } from './support/traffic.js';
import { controllerKubeconfig, startEdge, startWarren, type WarrenProcess } from './support/warren.js';

const rig = useRig(test);
let admin: AdminClients;
let clients: RigClients;
let edge: EdgeSimulator;
let warren: WarrenProcess;

test.serial.before(async () => {
  admin = adminClients(rig().server);
  clients = rigClients(rig());
  await ensureIngressClass(admin);
  edge = await startEdge();
  warren = await startWarren({ podName: 'warren-rig', kubeconfigFile: await controllerKubeconfig(rig().server), edge });
});

test.afterEach.always((t) => {
  if (!t.passed) {
    t.log(rig().tail(80));
    t.log(warren?.child.tail(40));
  }
});

test.after.always(async () => {
  await warren?.stop();
  await edge?.close();
});

/** A namespace with the demo Deployment `web`, its Service and an Ingress for `host`, served through the edge. */
async function deployWeb(host: string, options: DemoDeploymentOptions): Promise<string> {
  const ns = await rig().server.createNamespace('rig-e2e');
  await clients.core.createNamespacedService({ namespace: ns, body: demoService(ns, 'web') });
  await clients.apps.createNamespacedDeployment({ namespace: ns, body: demoDeployment(ns, 'web', options) });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'web', { rules: [{ host, paths: [{ path: '/', service: 'web', port: 80 }] }] }) });
  await waitForReadyEndpoints(clients, ns, 'web', options.replicas ?? 2);
  await sendUntil(edge.eyeballUrl, '/', { host }, (a) => a.status === 200, 10_000, `${host} served`);
  return ns;
}

/** Read-modify-replace of a Deployment, retried when the controllers changed it meanwhile. */
async function updateDeployment(ns: string, name: string, change: (d: V1Deployment) => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const d = await clients.apps.readNamespacedDeployment({ namespace: ns, name });
    change(d);
    try {
      await clients.apps.replaceNamespacedDeployment({ namespace: ns, name, body: d });
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt >= 5) throw err;
    }
  }
}

const setVersion = (version: string) => (d: V1Deployment) => {
  d.spec!.template.spec!.containers[0]!.env = [{ name: 'DEMO_SERVICE', value: version }];
};

/**
 * Requests that last a while (a server-sent event stream of 4 events 100 ms apart), one after the other on
 * `concurrency` workers, bounded by count and time. Complete when the last event arrived.
 */
class StreamLoop {
  readonly results: Array<{ readonly complete: boolean; readonly detail: string; readonly at: number }> = [];
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(host: string, concurrency: number, maxRequests: number, maxMs: number) {
    const deadline = Date.now() + maxMs;
    const work = async () => {
      while (!this.#stopped && this.results.length < maxRequests && Date.now() < deadline) {
        try {
          const answer = await send(edge.eyeballUrl, '/events?count=4&interval=100', { host, timeoutMs: 10_000 });
          const complete = answer.status === 200 && answer.body.includes('"n":4');
          this.results.push({ complete, detail: `${answer.status} ${answer.body.length} bytes`, at: Date.now() });
        } catch (err) {
          this.results.push({ complete: false, detail: (err as Error).message, at: Date.now() });
        }
      }
    };
    this.#done = Promise.all(Array.from({ length: concurrency }, work)).then(() => undefined);
  }

  failures(): string[] {
    return this.results.filter((r) => !r.complete).map((r) => `${new Date(r.at).toISOString()} ${r.detail}`);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }
}

/**
 * What a rollout under load saw: GET and POST traffic (Warren repeats only idempotent requests on another
 * endpoint) and streams that are in flight when a pod is told to stop.
 */
interface RolloutTraffic {
  readonly get: TrafficLoop;
  readonly post: TrafficLoop;
  readonly streams: StreamLoop;
  readonly rolloutMs: number;
}

/** Rolls `web` from v1 to v2 under load; returns the traffic once the rollout is over and every old pod is gone. */
async function rollUnderLoad(ns: string, host: string): Promise<RolloutTraffic> {
  const loop = (method: string) => new TrafficLoop({ baseUrl: edge.eyeballUrl, host, method, maxRequests: 20_000, maxMs: 90_000, concurrency: 2, intervalMs: 5 }).start();
  const get = loop('GET');
  const post = loop('POST');
  const streams = new StreamLoop(host, 3, 2_000, 90_000);
  await Promise.all([get.next(20), post.next(20)]);
  const started = Date.now();
  await updateDeployment(ns, 'web', setVersion('v2'));
  await waitForRollout(clients, ns, 'web', 60_000);
  const rolloutMs = Date.now() - started;
  await Promise.all([get.next(20), post.next(20)]);
  await Promise.all([get.stop(), post.stop(), streams.stop()]);
  return { get, post, streams, rolloutMs };
}

function describe(traffic: RolloutTraffic): string {
  return `rollout ${traffic.rolloutMs} ms; GET ${traffic.get.failures().length} of ${traffic.get.results.length} failed, POST ${traffic.post.failures().length} of ${traffic.post.results.length} failed, streams ${traffic.streams.failures().length} of ${traffic.streams.results.length} cut`;
}

test.serial('a rolling update with maxUnavailable 0 and a preStop sleep loses no request under load', async (t) => {
  const host = 'rollout.example';
  const ns = await deployWeb(host, { replicas: 2, version: 'v1', maxSurge: 1, maxUnavailable: 0, preStopSeconds: 3, terminationGracePeriodSeconds: 15 });
  const traffic = await rollUnderLoad(ns, host);
  t.log(describe(traffic));
  t.deepEqual(traffic.get.failures(), [], 'no failed GET during the rollout');
  t.deepEqual(traffic.post.failures(), [], 'no failed POST during the rollout');
  t.deepEqual(traffic.streams.failures(), [], 'no stream cut during the rollout');
  const versions = [...traffic.get.results, ...traffic.post.results].map((r) => r.service);
  t.true(versions.includes('v1') && versions.includes('v2'), 'both versions answered');
  t.true(
    traffic.get.results.slice(-10).every((r) => r.service === 'v2'),
    'only v2 at the end',
  );
  t.true(traffic.get.results.length + traffic.post.results.length >= 200, 'enough requests to mean something');
});

test.serial('a rolling update without preStop: measured', async (t) => {
  const host = 'rollout-no-prestop.example';
  const ns = await deployWeb(host, { replicas: 2, version: 'v1', maxSurge: 1, maxUnavailable: 0, terminationGracePeriodSeconds: 15 });
  const traffic = await rollUnderLoad(ns, host);
  t.log(`without preStop: ${describe(traffic)}`);
  for (const f of [...traffic.get.failures(), ...traffic.post.failures(), ...traffic.streams.failures()].slice(0, 10)) t.log(`  ${f}`);
  t.true(
    traffic.get.results.slice(-10).every((r) => r.service === 'v2'),
    'only v2 at the end',
  );
});

test.serial('scaled to 0 the host answers 503; scaled back it is served within 1 s of the first pod Ready', async (t) => {
  const host = 'scale.example';
  const ns = await deployWeb(host, { replicas: 1 });
  await updateDeployment(ns, 'web', (d) => void (d.spec!.replicas = 0));
  await sendUntil(edge.eyeballUrl, '/', { host }, (a) => a.status === 503, 20_000, 'a 503 once no pod is left');
  for (let i = 0; i < 5; i++) t.is((await send(edge.eyeballUrl, '/', { host })).status, 503);

  await updateDeployment(ns, 'web', (d) => void (d.spec!.replicas = 1));
  const served = await sendUntil(edge.eyeballUrl, '/', { host, timeoutMs: 2_000 }, (a) => a.status === 200, 30_000, 'served again');
  const servedAt = Date.now();
  t.is(served.echo?.service, 'v1');
  const [pod] = (await podsOf(clients, ns, 'web')).filter((p) => !p.metadata?.deletionTimestamp);
  const readyAt = rig().node.pod(ns, pod!.metadata!.name!)?.readyAt;
  t.truthy(readyAt, 'the node recorded when the pod turned Ready');
  t.log(`served ${servedAt - readyAt!} ms after the pod turned Ready`);
  t.true(servedAt - readyAt! <= 1_000, `served ${servedAt - readyAt!} ms after Ready`);
});

test.serial('a pod whose readiness probe fails leaves rotation without a failed request', async (t) => {
  const host = 'unready.example';
  const ns = await deployWeb(host, { replicas: 2, reportPodName: true });
  const pods = (await podsOf(clients, ns, 'web')).filter(isReady).map((p) => p.metadata!.name!);
  t.is(pods.length, 2);
  for (const name of pods) await sendUntil(edge.eyeballUrl, '/', { host }, (a) => a.echo?.service === name, 10_000, `${name} in rotation`);

  const traffic = new TrafficLoop({ baseUrl: edge.eyeballUrl, host, maxRequests: 20_000, maxMs: 60_000, concurrency: 2, intervalMs: 5 }).start();
  await traffic.next(40);
  const [leaving, staying] = pods as [string, string];
  const leavingIp = rig().node.pod(ns, leaving)!.ip!;
  writeFileSync(join(rig().node.pod(ns, leaving)!.containerDir('origin')!, 'unready'), '');
  await waitUntil('the endpoint to turn unready', async () => (await endpointsOf(clients, ns, 'web')).some((e) => e.address === leavingIp && !e.ready), 10_000);
  const unreadyAt = Date.now();
  await waitUntil('1.5 s more traffic', () => Date.now() - unreadyAt > 1_500, 5_000);
  await traffic.stop();

  t.deepEqual(traffic.failures(), [], 'no failed request');
  const before = traffic.results.filter((r) => r.at < unreadyAt);
  const settled = traffic.results.filter((r) => r.at > unreadyAt + 1_000);
  t.true(
    before.some((r) => r.service === leaving),
    'the leaving pod served before',
  );
  t.true(settled.length > 20, `only ${settled.length} requests after the change settled`);
  t.deepEqual([...new Set(settled.map((r) => r.service))], [staying], 'only the ready pod serves once the change settled');
  t.false(isReady(await clients.core.readNamespacedPod({ namespace: ns, name: leaving })));
});
