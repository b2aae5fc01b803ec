/**
 * The workloads of the Gateway API conformance suite's base manifests run on the rig: every pod in the three
 * namespaces the suite waits for becomes Ready, and each kind of backend answers the way the suite's tests talk to
 * it (echo-basic over HTTP/1.1, h2c, gRPC, HTTPS with its Secret volume, the TCP echo with and without TLS; the
 * CoreDNS placeholder answers REFUSED). The Secrets are created after the Deployments, in the suite's order, so
 * the pods mounting them first wait for them as they would on a kubelet.
 *
 * Then the path the conformance run's requests take, short of Gateway routes: the edge simulator's entrance on the
 * Gateway address (HTTP/1.1 and h2c gRPC on port 80, HTTPS on 443 with a certificate the harness gives per server
 * name), the tunnel, Warren, and these pods, routed by Ingresses.
 */
import * as grpc from '@grpc/grpc-js';
import { AppsV1Api, CoreV1Api, type KubernetesObject, KubernetesObjectApi, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import test from 'ava';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createTestCa, issueCert } from '../../src/edge-simulator/certs.js';
import { startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/index.js';
import { waitUntil } from '../e2e/support/children.js';
import { controllerKubeconfig, startWarren, type WarrenProcess } from '../e2e/support/warren.js';
import { adminClients } from '../support/apiserver.js';
import { ensureIngressClass, ingress, testHost } from '../support/k8s-objects.js';
import { useRig } from '../support/rig/index.js';
import { baseManifests, suiteModule } from './support/suite-module.js';

const rig = useRig(test);
let pods: V1Pod[] = [];
let edge: EdgeSimulator | undefined;
let warren: WarrenProcess | undefined;
test.after.always(async () => {
  await warren?.stop();
  await edge?.close();
});
const NAMESPACES = ['gateway-conformance-infra', 'gateway-conformance-app-backend', 'gateway-conformance-web-backend'];
/** Pods of the base manifests becoming Ready on a busy 2-core machine (about 23 pods, four processes each). */
const READY_TIMEOUT_MS = 240_000;

/**
 * The result of `attempt` once it succeeds, retrying for up to 15 s: a pod without a readiness probe (as in the
 * base manifests) is Ready once its process started, which may be a moment before the process listens.
 */
async function answered<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** A TCP (or TLS, with `tls` options) connection that has connected. */
async function connected(host: string, port: number, tls?: { ca: string; servername: string }): Promise<import('node:net').Socket> {
  const socket = tls ? tlsConnect({ host, port, ...tls }) : tcpConnect({ host, port });
  try {
    await once(socket, tls ? 'secureConnect' : 'connect');
  } catch (err) {
    socket.destroy();
    throw err;
  }
  // A reset after connecting must not crash the test worker: lineExchange reports it as the missing answer.
  socket.on('error', () => undefined);
  return socket;
}

const isReady = (pod: V1Pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

function get(url: string, options: { ca?: string; servername?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  const send = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { agent: false, timeout: 5_000, ...options }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function h2cGet(origin: string, path: string): Promise<string> {
  const session = h2connect(origin);
  try {
    session.on('error', () => undefined);
    const stream = session.request({ ':path': path });
    let body = '';
    stream.on('data', (c) => (body += c));
    await once(stream, 'end');
    return body;
  } finally {
    session.close();
  }
}

/** A unary call with an empty request message; the raw response bytes (protobuf strings appear in them as is). */
function grpcEcho(address: string, authority?: string): Promise<Buffer> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), authority ? { 'grpc.default_authority': authority } : {});
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(
      '/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo',
      () => Buffer.alloc(0),
      (b: Buffer) => b,
      {},
      { deadline: Date.now() + 5_000 },
      (err, reply) => (err ? reject(err) : resolve(reply!)),
    );
  }).finally(() => client.close());
}

/** Sends `line` on a (TLS) TCP connection and collects what comes back until `until` matches or 5 s pass. */
async function lineExchange(socket: import('node:net').Socket, line: string, until: RegExp): Promise<string> {
  let text = '';
  let failure: Error | undefined;
  socket.on('data', (c) => (text += c));
  socket.on('error', (err) => (failure = err));
  socket.write(`${line}\n`);
  try {
    await waitUntil(
      `an answer to ${line}`,
      async () => {
        if (failure) throw new Error(`the connection failed before an answer to ${line}: ${failure.message}`);
        return until.test(text);
      },
      5_000,
    );
  } finally {
    socket.destroy();
  }
  return text;
}

function dnsQuery(address: string): Promise<Buffer> {
  const socket = createSocket('udp4');
  // id 0x1234, RD, one question: example.com A IN
  const query = Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from('\x07example\x03com\x00', 'latin1'), Buffer.from([0, 1, 0, 1])]);
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no DNS answer within 5 s')), 5_000);
    socket.once('message', (answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.send(query, 53, address);
  }).finally(() => socket.close());
}

test.serial("the base manifests' workloads run Ready on the rig and answer as the suite talks to them", async (t) => {
  t.timeout(READY_TIMEOUT_MS + 60_000);
  const kc = rig().server.adminConfig();
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  // Everything but the Gateways (their CRDs and Warren are the conformance run's business, not the rig's).
  const manifests = baseManifests(suiteModule(), 'unused').filter((o) => o.kind !== 'Gateway');
  for (const object of manifests) await objects.create(object);
  // The Secrets the suite creates after the manifests, with the names it uses for its backends' certificates.
  const ca = createTestCa('base workloads');
  const cert = issueCert(ca, { dns: ['abc.example.com'] });
  const tlsSecret = (namespace: string, name: string): KubernetesObject =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace, name },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(cert.certPem).toString('base64'), 'tls.key': Buffer.from(cert.keyPem).toString('base64') },
    }) as KubernetesObject;
  await objects.create(tlsSecret('gateway-conformance-infra', 'tls-checks-certificate'));
  await objects.create(tlsSecret('gateway-conformance-infra', 'tls-passthrough-checks-certificate'));
  await objects.create(tlsSecret('gateway-conformance-app-backend', 'tls-passthrough-checks-certificate'));

  const deployments = manifests.filter((o): o is V1Deployment & KubernetesObject => o.kind === 'Deployment');
  const expected = deployments.reduce((n, d) => n + (d.spec?.replicas ?? 1), 0);
  try {
    await waitUntil(
      `${expected} pods Ready in ${NAMESPACES.join(', ')}`,
      async () => {
        pods = (await Promise.all(NAMESPACES.map((namespace) => core.listNamespacedPod({ namespace })))).flatMap((l) => l.items);
        return pods.length === expected && pods.every(isReady);
      },
      READY_TIMEOUT_MS,
    );
  } catch (err) {
    const waiting = pods.filter((p) => !isReady(p)).map((p) => `${p.metadata?.namespace}/${p.metadata?.name}: ${JSON.stringify(p.status?.containerStatuses?.[0]?.state)}`);
    t.fail(`${(err as Error).message}\nnot ready:\n${waiting.join('\n')}\n${rig().tail(60)}`);
    return;
  }
  // The Deployment controller counts Ready pods after the fact: wait for its status rather than read it once.
  const notReadyDeployments = async () =>
    (await Promise.all(deployments.map((d) => apps.readNamespacedDeployment({ namespace: d.metadata!.namespace!, name: d.metadata!.name! }))))
      .filter((d) => d.status?.readyReplicas !== (d.spec?.replicas ?? 1))
      .map((d) => d.metadata?.name);
  await waitUntil('every Deployment reports all its replicas ready', async () => (await notReadyDeployments()).length === 0, 30_000).catch(() => {});
  t.deepEqual(await notReadyDeployments(), [], 'every Deployment reports all its replicas ready');

  const podOf = (namespace: string, app: string) => pods.find((p) => p.metadata?.namespace === namespace && p.metadata.labels?.app === app)!;
  const infra = podOf('gateway-conformance-infra', 'infra-backend-v1');
  const echo = JSON.parse((await answered('HTTP', () => get(`http://${infra.status!.podIP}:3000/some/path`))).body) as { pod: string; namespace: string; path: string };
  t.like(echo, { pod: infra.metadata!.name, namespace: 'gateway-conformance-infra', path: '/some/path' }, 'echo-basic over HTTP/1.1 names its pod');
  t.like(
    JSON.parse(await answered('h2c', () => h2cGet(`http://${infra.status!.podIP}:3001`, '/h2c'))) as object,
    { pod: infra.metadata!.name, path: '/h2c' },
    'echo-basic over h2c',
  );

  const grpcPod = podOf('gateway-conformance-infra', 'grpc-infra-backend-v1');
  const reply = await answered('gRPC', () => grpcEcho(`${grpcPod.status!.podIP}:3000`));
  t.true(reply.includes(Buffer.from(grpcPod.metadata!.name!)), 'echo-basic in gRPC mode answers Echo naming its pod');

  const tlsPod = podOf('gateway-conformance-infra', 'tls-backend');
  const secure = await answered('HTTPS', () => get(`https://${tlsPod.status!.podIP}:8443/tls`, { ca: ca.certPem, servername: 'abc.example.com' }));
  t.like(JSON.parse(secure.body) as object, { pod: tlsPod.metadata!.name, path: '/tls' }, 'echo-basic over HTTPS with the certificate from its Secret volume');

  const tcpPod = podOf('gateway-conformance-infra', 'tcp-backend');
  // The connection and its exchange are retried together: a Ready pod's TCP echo has reset a first connection
  // before answering (CI saw ECONNRESET once), as a client of a service just started may see.
  const plain = await answered('TCP', async () => lineExchange(await connected(tcpPod.status!.podIP!, 3000), 'TEST', /\}\s*$/));
  t.regex(plain, new RegExp(tcpPod.metadata!.name!), 'the TCP echo names its pod');
  const tcpTls = await answered('TCP over TLS', async () =>
    lineExchange(await connected(tcpPod.status!.podIP!, 8443, { ca: ca.certPem, servername: 'abc.example.com' }), 'IS_TLS', /true|false/),
  );
  t.regex(tcpTls, /true/, 'the TCP echo over TLS with the certificate from its Secret volume');

  const dns = await answered('DNS', () => dnsQuery(podOf('gateway-conformance-infra', 'udp').status!.podIP!));
  t.is(dns.readUInt16BE(0), 0x1234, 'the DNS placeholder answers the query id');
  t.is(dns[3]! & 0x0f, 5, 'with REFUSED');
});

test.serial(
  "the conformance run's traffic path reaches them: the edge entrance on the Gateway address (HTTP/1.1 and h2c gRPC on 80, HTTPS on 443), the tunnel, Warren",
  async (t) => {
    if (pods.length === 0) return void t.fail('the workloads did not start (see the first test)');
    // The same kind of entrance the conformance run gives each tunnel, here for the one tunnel of a token and routed
    // by Ingresses (Gateway routes are the run's), on a shared test host: the run's entrances are on 198.18.2.x.
    const address = testHost(39);
    const ca = createTestCa('entrance');
    const cert = issueCert(ca, { dns: ['secure.conformance.test'] });
    edge = await startEdgeSimulator({
      edgeListeners: 2,
      eyeball: false,
      tunnelEntrances: { hosts: [address], port: 80, tls: { port: 443, certificate: (name) => (name === 'secure.conformance.test' ? cert : undefined) } },
    });
    const server = rig().server;
    const admin = adminClients(server);
    await ensureIngressClass(admin);
    const route = (name: string, host: string, service: string, port: number) =>
      admin.networking.createNamespacedIngress({
        namespace: 'gateway-conformance-infra',
        body: ingress('gateway-conformance-infra', name, { rules: [{ host, paths: [{ service, port }] }] }),
      });
    await route('plain', 'plain.conformance.test', 'infra-backend-v1', 8080);
    await route('secure', 'secure.conformance.test', 'infra-backend-v2', 8080);
    await route('grpc', 'grpc.conformance.test', 'grpc-infra-backend-v1', 8080);
    warren = await startWarren({ podName: 'warren-entrance', kubeconfigFile: await controllerKubeconfig(server), edge });
    t.is((await edge.waitForEntrance(edge.credentials.tunnelId)).host, address);
    const names = (app: string) => pods.filter((p) => p.metadata?.labels?.app === app).map((p) => p.metadata!.name!);

    let plain = { status: 0, body: '' };
    await waitUntil(
      'HTTP/1.1 through the entrance',
      async () => (plain = await get(`http://${address}/one`, { headers: { host: 'plain.conformance.test' } })).status === 200,
      20_000,
    );
    const echo = JSON.parse(plain.body) as { pod: string; host: string; path: string };
    t.true(names('infra-backend-v1').includes(echo.pod), `answered by an infra-backend-v1 pod, not ${echo.pod}`);
    t.like(echo, { host: 'plain.conformance.test', path: '/one' });

    const secure = await get(`https://${address}/two`, { ca: ca.certPem, servername: 'secure.conformance.test', headers: { host: 'secure.conformance.test' } });
    t.true(names('infra-backend-v2').includes((JSON.parse(secure.body) as { pod: string }).pod), 'HTTPS on 443 with the certificate the harness gave for the name');
    await t.throwsAsync(get(`https://${address}/`, { ca: ca.certPem, servername: 'unknown.conformance.test' }), undefined, 'no certificate for another name');

    const reply = await grpcEcho(`${address}:80`, 'grpc.conformance.test');
    t.true(
      names('grpc-infra-backend-v1').some((pod) => reply.includes(Buffer.from(pod))),
      'gRPC over h2c prior knowledge on 80 reaches a grpc-infra-backend-v1 pod (appProtocol kubernetes.io/h2c)',
    );
  },
);
