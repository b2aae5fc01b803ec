/**
 * A managed tunnel per Gateway, end to end: the controller (real apiserver with the Gateway API CRDs, real
 * informers, the production wiring of the Gateway tunnels part) creates one tunnel per Gateway in the fake
 * Cloudflare API through the official SDK, stores its credentials in a Secret labelled with the Gateway, runs a
 * real connector per Gateway against the edge simulator (which accepts exactly the fake API's tunnels), publishes
 * each Gateway's own tunnel hostname in its status, and serves an exchange only from the routes of the Gateway
 * whose tunnel it arrived on. Deleting a Gateway deletes its tunnel and Secret; a restarted leader deletes those of
 * Gateways deleted meanwhile; `gateway.maxTunnels` bounds how many Gateways get one.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http2';
import type { KubernetesObject, V1Secret, V1SecretList } from '@kubernetes/client-node';
import { gatewaySecretName, gatewayTunnelName } from '../../src/cloudflare/gateway-tunnels.js';
import { CREDENTIALS_SECRET_KEY, credentialsFileJson } from '../../src/cloudflare/index.js';
import { startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/index.js';
import { decodeTunnelResponse } from '../../src/edge-simulator/tunnel-response.js';
import type { Gateway } from '../../src/gateway/types.js';
import { apiPath } from '../../src/k8s/api/client.js';
import { startOrigin } from '../../src/proxy/testing.js';
import { startFakeCloudflare, type FakeCloudflare } from '../../src/testing/index.js';
import { uuidToBytes } from '../../src/tunnel/credentials.js';
import { adminClients, CONTROLLER_NAMESPACE, useApiServer } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { endpointSlice, service, testHost } from '../support/k8s-objects.js';
import { installGatewayCrds } from './crds.js';

const server = useApiServer(test);
const GROUP = '/apis/gateway.networking.k8s.io/v1';
const ACCOUNT = 'a'.repeat(32);
const TOKEN = 'gateway-tunnels-api-token-SECRET-0123456789';
const TUNNEL_NAME = 'warren-gwt';

test.before(async () => {
  await installGatewayCrds(server().adminClient());
  await server().controllerToken(); // the controller namespace, where the credentials Secrets live
});

interface World {
  readonly fake: FakeCloudflare;
  readonly sim: EdgeSimulator;
  readonly tokenFile: string;
}

async function world(t: ExecutionContext): Promise<World> {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  const sim = await startEdgeSimulator({
    authorize: (c) => fake.tunnels(ACCOUNT).some((tunnel) => tunnel.id === c.tunnelId && !tunnel.deletedAt && tunnel.secret.equals(c.tunnelSecret)),
  });
  t.teardown(() => sim.close());
  const dir = mkdtempSync(join(tmpdir(), 'warren-gwt-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, TOKEN);
  return { fake, sim, tokenFile };
}

/** A controller in managed-tunnel mode with the Gateway tunnels part and the proxy. */
/**
 * A controller in managed-tunnel mode with the Gateway tunnels part and the proxy, watching only `ns` and keeping
 * its Secrets under its own `secretBase`, so that the tests' controllers never see each other's objects.
 */
async function controller(t: ExecutionContext, w: World, ns: string, secretBase: string, gateway: { maxTunnels?: number } = {}): Promise<TestController> {
  const c = await startController(server(), {
    kubeClient: server().adminClient(),
    proxy: true,
    gatewayTunnels: true,
    env: { POD_NAMESPACE: CONTROLLER_NAMESPACE },
    config: {
      tunnel: { enabled: true, edgeAddresses: [...w.sim.edgeAddresses], edgeCaFile: w.sim.caFile, haConnections: 1, rpcTimeout: 2_000 },
      cloudflare: { accountId: ACCOUNT, tunnelName: TUNNEL_NAME, apiBaseUrl: w.fake.baseUrl, apiTokenFile: w.tokenFile, credentialsSecretName: secretBase },
      kubernetes: { namespaces: [ns] },
      gateway,
    },
  });
  t.teardown(async () => {
    await c.stop();
    if (process.env.WARREN_TEST_DEBUG) console.error(c.logs.lines.filter((l) => l.includes('gateway') || l.includes('tunnel')).join('\n'));
  });
  return c;
}

/** An echo origin behind Service `name` in `ns`; its answers name `host`. */
async function backend(t: ExecutionContext, ns: string, name: string, host: string): Promise<void> {
  const admin = adminClients(server());
  const origin = await startOrigin({ host });
  t.teardown(() => origin.close());
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, name, [{ port: 80, targetPort: origin.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, name, [host], origin.port) });
}

function objects(ns: string) {
  const api = server().adminClient();
  const create = <T extends KubernetesObject>(resource: string, body: T, namespaced = true) =>
    api.post<T>(`${GROUP}${namespaced ? `/namespaces/${ns}` : ''}/${resource}`, body);
  return {
    gatewayClass: (name: string) =>
      create(
        'gatewayclasses',
        { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name }, spec: { controllerName: 'warren.dev/gateway-controller' } },
        false,
      ),
    gateway: (name: string, className: string) =>
      create('gateways', {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name, namespace: ns },
        spec: { gatewayClassName: className, listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
      } as KubernetesObject),
    /** A host-less route on `/` to `backendName`: two of them on two Gateways are the same (host, path). */
    route: (name: string, gateway: string, backendName: string) =>
      create('httproutes', {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name, namespace: ns },
        spec: { parentRefs: [{ name: gateway }], rules: [{ backendRefs: [{ name: backendName, port: 80 }] }] },
      } as KubernetesObject),
    getGateway: (name: string) => api.get<Gateway>(`${GROUP}/namespaces/${ns}/gateways/${name}`),
    deleteGateway: (name: string) => api.delete(`${GROUP}/namespaces/${ns}/gateways/${name}`),
  };
}

async function gatewaySecrets(): Promise<V1Secret[]> {
  const list = await server()
    .adminClient()
    .get<V1SecretList>(apiPath('v1', 'secrets', CONTROLLER_NAMESPACE), { query: { labelSelector: 'warren.dev/gateway-tunnel=true' } });
  return list.items;
}

/** Sends one request straight into a registered connection of tunnel `tunnelId` (as the edge does for that tunnel's hostname). */
async function requestOnTunnel(sim: EdgeSimulator, tunnelId: string, authority: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const id = uuidToBytes(tunnelId)!;
  const connection = sim.registeredConnections().find((c) => c.registration?.tunnelId.equals(id));
  if (!connection) throw new Error(`no registered connection of tunnel ${tunnelId}`);
  const stream = connection.request({ ':method': 'GET', ':scheme': 'https', ':authority': authority, ':path': '/', ...headers }, true);
  return new Promise((resolve, reject) => {
    let head: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error('tunnel request timed out'));
    }, 10_000);
    stream.on('response', (h) => (head = h));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', () => {});
    stream.once('close', () => {
      clearTimeout(timer);
      if (!head) return reject(new Error('tunnel stream closed without a response'));
      resolve({ status: decodeTunnelResponse(head).status, body: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

const addressOf = (gw: Gateway | undefined) => (gw?.status?.addresses ?? []).map((a) => `${a.type}:${a.value}`);
const programmed = (gw: Gateway | undefined) => gw?.status?.conditions?.find((c) => c.type === 'Programmed');

test.serial('each Gateway gets its own tunnel, Secret and address; an exchange matches only its own Gateway’s routes; deletion removes tunnel and Secret', async (t) => {
  const w = await world(t);
  const ns = await server().createNamespace('gwt');
  const c = await controller(t, w, ns, 'creds-one');
  const o = objects(ns);
  await backend(t, ns, 'one', testHost(31));
  await backend(t, ns, 'two', testHost(32));
  await o.gatewayClass(`c-${ns}`);
  await o.gateway('g1', `c-${ns}`);
  await o.gateway('g2', `c-${ns}`);
  await o.route('r1', 'g1', 'one');
  await o.route('r2', 'g2', 'two');

  const ids = await eventually(
    'both Gateway tunnels connected',
    () => {
      const g1 = c.gatewayTunnels.current.get(`${ns}/g1`);
      const g2 = c.gatewayTunnels.current.get(`${ns}/g2`);
      return g1?.tunnelId && g2?.tunnelId && g1.registeredConnections > 0 && g2.registeredConnections > 0 ? { g1: g1.tunnelId, g2: g2.tunnelId } : undefined;
    },
    30_000,
  );
  t.not(ids.g1, ids.g2, 'two tunnels');
  const live = w.fake.tunnels(ACCOUNT).filter((x) => !x.deletedAt);
  t.is(live.find((x) => x.id === ids.g1)?.name, gatewayTunnelName(TUNNEL_NAME, ns, 'g1'));
  t.is(live.find((x) => x.id === ids.g2)?.name, gatewayTunnelName(TUNNEL_NAME, ns, 'g2'));

  const secrets = await gatewaySecrets();
  const secretOf = (gw: string) => secrets.find((s) => s.metadata?.annotations?.['warren.dev/gateway'] === `${ns}/${gw}`);
  t.is(secretOf('g1')?.metadata?.name, gatewaySecretName('creds-one', `${ns}/g1`));
  t.is(secretOf('g1')?.metadata?.labels?.['warren.dev/gateway-name'], 'g1');
  t.is(secretOf('g1')?.metadata?.annotations?.['warren.dev/tunnel-id'], ids.g1);
  t.is(secretOf('g2')?.metadata?.annotations?.['warren.dev/tunnel-id'], ids.g2);

  // Status: each Gateway's own tunnel hostname, Programmed once that tunnel exists.
  for (const [name, id] of [
    ['g1', ids.g1],
    ['g2', ids.g2],
  ] as const) {
    await eventually(`${name} publishes its own tunnel`, async () => addressOf(await o.getGateway(name)).join() === `Hostname:${id}.cfargotunnel.com`);
    t.is(programmed(await o.getGateway(name))?.status, 'True');
  }

  // Isolation: identical host-less routes on two Gateways; each tunnel reaches only its own Gateway's backend.
  const viaG1 = await eventually('g1 serves', async () => {
    const reply = await requestOnTunnel(w.sim, ids.g1, 'anything.example');
    return reply.status === 200 ? reply : undefined;
  });
  const viaG2 = await eventually('g2 serves', async () => {
    const reply = await requestOnTunnel(w.sim, ids.g2, 'anything.example');
    return reply.status === 200 ? reply : undefined;
  });
  t.true(viaG1.body.includes(testHost(31)) && !viaG1.body.includes(testHost(32)), viaG1.body);
  t.true(viaG2.body.includes(testHost(32)) && !viaG2.body.includes(testHost(31)), viaG2.body);
  for (let i = 0; i < 5; i++) t.true((await requestOnTunnel(w.sim, ids.g1, `h${i}.example`)).body.includes(testHost(31)));
  // Neither Gateway's routes are served where no Gateway's tunnel delivered the request.
  const direct = await fetch(`${c.entryUrl}/`, { headers: { host: 'anything.example' } });
  await direct.arrayBuffer();
  t.is(direct.status, 404);

  // Deleting a Gateway deletes its tunnel (in Cloudflare) and its Secret; the other Gateway keeps serving.
  await o.deleteGateway('g2');
  await eventually('g2 tunnel deleted', () => w.fake.tunnels(ACCOUNT).find((x) => x.id === ids.g2)?.deletedAt, 20_000);
  await eventually('g2 Secret deleted', async () => !(await gatewaySecrets()).some((s) => s.metadata?.annotations?.['warren.dev/gateway'] === `${ns}/g2`));
  t.false(c.gatewayTunnels.current.has(`${ns}/g2`));
  t.falsy(w.fake.tunnels(ACCOUNT).find((x) => x.id === ids.g1)?.deletedAt);
  t.true((await requestOnTunnel(w.sim, ids.g1, 'anything.example')).body.includes(testHost(31)));
});

test.serial('a restarted leader deletes the tunnels of Gateways deleted meanwhile; gateway.maxTunnels leaves newer Gateways unprogrammed with a Warning', async (t) => {
  const w = await world(t);
  const ns = await server().createNamespace('gwo');
  const o = objects(ns);
  await backend(t, ns, 'one', testHost(33));
  await o.gatewayClass(`c-${ns}`);
  await o.gateway('kept', `c-${ns}`);

  // A Gateway tunnel whose Gateway is gone (deleted while no leader ran).
  const ghost = w.fake.addTunnel(ACCOUNT, gatewayTunnelName(TUNNEL_NAME, ns, 'ghost'));
  const ghostSecret = gatewaySecretName('creds-two', `${ns}/ghost`);
  await server()
    .adminClient()
    .post(apiPath('v1', 'secrets', CONTROLLER_NAMESPACE), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: ghostSecret,
        namespace: CONTROLLER_NAMESPACE,
        labels: { 'warren.dev/gateway-tunnel': 'true' },
        annotations: { 'warren.dev/gateway': `${ns}/ghost` },
      },
      data: {
        [CREDENTIALS_SECRET_KEY]: Buffer.from(credentialsFileJson({ accountTag: ACCOUNT, tunnelId: ghost.id, tunnelSecret: ghost.secret })).toString('base64'),
      },
    });

  const c = await controller(t, w, ns, 'creds-two', { maxTunnels: 1 });
  await eventually('the orphaned tunnel deleted', () => w.fake.tunnels(ACCOUNT).find((x) => x.id === ghost.id)?.deletedAt, 20_000);
  await eventually('the orphaned Secret deleted', async () => !(await gatewaySecrets()).some((s) => s.metadata?.name === ghostSecret));
  const kept = await eventually('the existing Gateway keeps a tunnel', () => c.gatewayTunnels.current.get(`${ns}/kept`)?.tunnelId, 20_000);
  t.falsy(w.fake.tunnels(ACCOUNT).find((x) => x.id === kept)?.deletedAt);

  // Bound: one Gateway tunnel; a newer Gateway gets none, says so in its status and in a Warning Event.
  await new Promise((resolve) => setTimeout(resolve, 1_100)); // a later creation timestamp (second resolution)
  await o.gateway('extra', `c-${ns}`);
  const condition = await eventually('extra not programmed', async () => {
    const p = programmed(await o.getGateway('extra'));
    return p?.reason === 'NoResources' ? p : undefined;
  });
  t.is(condition.status, 'False');
  t.true(condition.message.includes('gateway.maxTunnels'), condition.message);
  t.deepEqual(addressOf(await o.getGateway('extra')), []);
  const event = await eventually('a Warning event on the Gateway', async () => {
    const list = await adminClients(server()).core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=extra' });
    return list.items.find((e) => e.type === 'Warning' && e.reason === 'TooManyGatewayTunnels');
  });
  t.true(event.message?.includes('gateway.maxTunnels (1)'));
  t.is(w.fake.tunnels(ACCOUNT).filter((x) => !x.deletedAt && x.name.includes(`-gw-${ns}-`)).length, 1, 'no tunnel for the refused Gateway');
});

test.serial('every replica runs a connector for each Gateway tunnel: the follower uses the Secret the leader stored', async (t) => {
  const w = await world(t);
  const ns = await server().createNamespace('gwr');
  const o = objects(ns);
  await backend(t, ns, 'one', testHost(34));
  await o.gatewayClass(`c-${ns}`);
  const first = await controller(t, w, ns, 'creds-three');
  const second = await controller(t, w, ns, 'creds-three');
  await o.gateway('shared', `c-${ns}`);
  await o.route('r', 'shared', 'one');
  const key = `${ns}/shared`;
  const ids = await eventually(
    'both replicas connected to the Gateway tunnel',
    () => {
      const a = first.gatewayTunnels.current.get(key);
      const b = second.gatewayTunnels.current.get(key);
      return a?.tunnelId && b?.tunnelId && a.registeredConnections > 0 && b.registeredConnections > 0 ? [a.tunnelId, b.tunnelId] : undefined;
    },
    30_000,
  );
  t.is(ids[0], ids[1], 'one tunnel for the Gateway, whichever replica leads');
  t.is(w.fake.tunnels(ACCOUNT).filter((x) => !x.deletedAt && x.name === gatewayTunnelName(TUNNEL_NAME, ns, 'shared')).length, 1);
  const id = uuidToBytes(ids[0]!)!;
  t.is(w.sim.registeredConnections().filter((c) => c.registration?.tunnelId.equals(id)).length, 2, 'one connection per replica (haConnections 1)');
  t.true((await requestOnTunnel(w.sim, ids[0]!, 'x.example')).body.includes(testHost(34)));

  await o.deleteGateway('shared');
  await eventually('the tunnel deleted', () => w.fake.tunnels(ACCOUNT).find((x) => x.id === ids[0])?.deletedAt, 20_000);
  await eventually('both replicas stopped it', () => !first.gatewayTunnels.current.has(key) && !second.gatewayTunnels.current.has(key), 20_000);
});

test.serial('through a Gateway’s tunnel a request reaches one listener, by hostname precedence and the port of its Host', async (t) => {
  const w = await world(t);
  const ns = await server().createNamespace('gwl');
  const c = await controller(t, w, ns, 'creds-four');
  const o = objects(ns);
  await backend(t, ns, 'any', testHost(35));
  await backend(t, ns, 'wild', testHost(36));
  await backend(t, ns, 'alt', testHost(37));
  await o.gatewayClass(`c-${ns}`);
  const listener = (name: string, port: number, hostname?: string) => ({ name, port, protocol: 'HTTP', ...(hostname ? { hostname } : {}) });
  await server()
    .adminClient()
    .post(`${GROUP}/namespaces/${ns}/gateways`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: ns },
      spec: { gatewayClassName: `c-${ns}`, listeners: [listener('any', 80), listener('wild', 80, '*.example.com'), listener('alt', 8080)] },
    });
  for (const name of ['any', 'wild', 'alt']) {
    await server()
      .adminClient()
      .post(`${GROUP}/namespaces/${ns}/httproutes`, {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name, namespace: ns },
        spec: { parentRefs: [{ name: 'gw', sectionName: name }], rules: [{ backendRefs: [{ name, port: 80 }] }] },
      });
  }
  const id = await eventually('the Gateway tunnel connected', () => {
    const tunnel = c.gatewayTunnels.current.get(`${ns}/gw`);
    return tunnel?.tunnelId && tunnel.registeredConnections > 0 ? tunnel.tunnelId : undefined;
  });
  const http = { 'x-forwarded-proto': 'http' };
  /** The backend (by test host) that answers `authority`, once every route is in the table. */
  const served = async (authority: string, headers: Record<string, string> = http) => {
    const reply = await requestOnTunnel(w.sim, id, authority, headers);
    return [testHost(35), testHost(36), testHost(37)].find((h) => reply.body.includes(h)) ?? reply.status;
  };
  await eventually('every route served', async () => (await served('a.example.com:8080')) === testHost(37));
  t.is(await served('plain.test'), testHost(35));
  t.is(await served('shop.example.com'), testHost(36), 'the wildcard listener takes its hosts from the listener without hostname');
  t.is(await served('a.b.example.com'), testHost(36));
  t.is(await served('plain.test:8080'), testHost(37), 'port 8080 reaches the listener on 8080');
  t.is(await served('shop.example.com:8080'), testHost(37));
  t.is(await served('plain.test:8880'), 404, 'a port the edge serves, but no listener of the Gateway');
  t.is(await served('plain.test:1234'), testHost(35), 'a port the edge does not serve: the request came to 80');
  t.is(await served('shop.example.com', { 'x-forwarded-proto': 'https' }), testHost(36), 'HTTPS on 443 without a listener there: the port-80 listeners');
});
