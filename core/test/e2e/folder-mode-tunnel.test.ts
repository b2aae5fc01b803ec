/**
 * Folder mode on a configured tunnel: Warren reads manifests from a folder and connects to an edge that is not
 * its built-in simulator — here a second edge simulator this test starts on its own ports with its own CA, as a
 * stand-in for Cloudflare. The tunnel settings (token or credentials file, edge addresses, edge CA, HA
 * connections) must be honoured exactly as in Kubernetes mode, requests must flow through that edge, and the
 * built-in simulator must not start. The DNS plugin runs too, against the fake Cloudflare API.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assembleWarren, type Warren } from '../../src/bootstrap.js';
import { parseConfig } from '../../src/config/load.js';
import { encodeTunnelToken } from '../../src/tunnel/credentials.js';
import { startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/index.js';
import { capturingLogger, startFakeCloudflare } from '../../src/testing/index.js';
import { cleanUpAfter, describeExit, spawnLogged, tempDir, waitUntil } from './support/children.js';
import { send, sendUntil } from './support/http.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from './support/paths.js';
import { freePort } from '../support/ports.js';

const EXAMPLE = join(REPO_ROOT, 'examples', 'local');
const ORIGIN = new URL('../../../../examples/local/origin/server.js', import.meta.url).href;

interface DemoOrigin {
  servers: Array<{ name: string; port: number }>;
  close(): Promise<void>;
}

/** The demo origin on free ports and a copy of examples/local whose EndpointSlices point at it. */
async function exampleFolder(t: ExecutionContext): Promise<string> {
  const { startDemoOrigin } = (await import(ORIGIN)) as { startDemoOrigin: (o: unknown) => Promise<DemoOrigin> };
  const origin = await startDemoOrigin({
    services: [
      { name: 'web', port: 0 },
      { name: 'api', port: 0 },
    ],
  });
  t.teardown(() => origin.close());
  const [web, api] = origin.servers.map((s) => s.port) as [number, number];
  const folder = tempDir('folder-mode');
  writeFileSync(join(folder, 'ingress.yaml'), readFileSync(join(EXAMPLE, 'ingress.yaml')));
  writeFileSync(
    join(folder, 'services.yaml'),
    readFileSync(join(EXAMPLE, 'services.yaml'), 'utf8').replace('port: 3001', `port: ${web}`).replace('port: 3002', `port: ${api}`),
  );
  return folder;
}

async function testEdge(t: ExecutionContext, listeners: number): Promise<EdgeSimulator> {
  const edge = await startEdgeSimulator({ edgeListeners: listeners, eyeball: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => edge.close());
  return edge;
}

/** Runs an assembled Warren until the test ends. */
function runUntilTeardown(t: ExecutionContext, warren: Warren): void {
  const stop = new AbortController();
  const running = warren.run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running.catch(() => undefined);
    await warren.close();
  });
}

test('the CLI in folder mode with a tunnel token connects to the configured edge with its CA and HA count; requests flow; no simulator starts', async (t) => {
  const folder = await exampleFolder(t);
  const edge = await testEdge(t, 2);
  const unusedEyeball = await freePort();
  const settings = join(tempDir('folder-mode-settings'), 'warren.yaml');
  writeFileSync(
    settings,
    [
      'tunnel:',
      `  edgeAddresses: [${edge.edgeAddresses.map((a) => JSON.stringify(a)).join(', ')}]`,
      `  edgeCaFile: ${JSON.stringify(edge.caFile)}`,
      '  haConnections: 2',
      'server:',
      '  listen: 127.0.0.1:0',
      'local:',
      // Where the built-in simulator would listen: nothing may answer here.
      `  eyeballListen: 127.0.0.1:${unusedEyeball}`,
      'shutdownGracePeriod: 5s',
      '',
    ].join('\n'),
  );
  const warren = spawnLogged('warren-folder-tunnel', NODE_BIN, [MAIN_JS, '--config', settings, '--local', folder], {
    cwd: REPO_ROOT,
    env: baseEnv({ TUNNEL_TOKEN: edge.token }),
  });
  cleanUpAfter(t, warren);

  const [startup] = await warren.waitForOutput(/\{[^\n]*"msg":"folder mode on the configured tunnel[^\n]*/, 30_000, 'the startup line naming the edge');
  const line = JSON.parse(startup) as Record<string, unknown>;
  t.is(line.edge, 'cloudflare');
  t.is(line.tunnelId, edge.credentials.tunnelId, 'the tunnel of the token');
  t.deepEqual(line.edgeAddresses, [...edge.edgeAddresses]);
  t.is(line.haConnections, 2);
  t.false(warren.stdout().includes('"edge":"simulator"'));

  const registered = await edge.waitForRegistrations(2, 30_000);
  t.deepEqual(new Set(registered.map((c) => c.listener)), new Set([0, 1]), 'one connection to each configured edge address');
  const [, health] = await warren.waitForOutput(/"address":"([^"]+)","msg":"health and metrics server listening"/, 30_000, 'the health address');
  await waitUntil('/readyz 200', async () => (await send(`http://${health}`, '/readyz', { timeoutMs: 2_000 }).catch(() => undefined))?.status === 200, 30_000);
  // haConnections is honoured: two, not the default four.
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.is(edge.registeredConnections().length, 2);
  t.deepEqual(edge.violations, []);

  const app = await send(edge.eyeballUrl, '/hello', { host: 'app.localhost' });
  t.is(app.status, 200);
  t.is(app.echo?.service, 'web');
  t.truthy(app.echo?.headers?.['cf-ray'], 'the request crossed the test edge and the tunnel');
  t.is((await send(edge.eyeballUrl, '/v1/items', { host: 'api.localhost' })).echo?.service, 'api');
  t.is((await send(edge.eyeballUrl, '/other', { host: 'api.localhost' })).status, 404);
  await t.throwsAsync(send(`http://127.0.0.1:${unusedEyeball}`, '/', { host: 'app.localhost', timeoutMs: 2_000 }), { code: 'ECONNREFUSED' }, 'no built-in simulator');
  t.false(warren.stderr().includes('built-in edge simulator'), 'no demo banner');

  // Routing follows an edit of the folder, over the real tunnel path.
  const ingress = join(folder, 'ingress.yaml');
  writeFileSync(ingress, readFileSync(ingress, 'utf8').replace('path: /v1', 'path: /v2'));
  await sendUntil(edge.eyeballUrl, '/v2/items', { host: 'api.localhost' }, (a) => a.status === 200 && a.echo?.service === 'api', 5_000, '/v2 routed after the edit');

  warren.signal('SIGTERM');
  const exit = await warren.exited;
  t.is(exit.code, 0, `Warren exits 0 on SIGTERM (${describeExit(exit)})`);
  t.true(
    edge.connections.every((c) => c.unregistered),
    'every connection unregistered from the test edge',
  );
});

test('folder mode with a credentials file trusts only tunnel.edgeCaFile: an edge with another CA is refused', async (t) => {
  const folder = await exampleFolder(t);
  const edge = await testEdge(t, 1);
  const otherCa = await testEdge(t, 1);
  const { logger, lines } = capturingLogger();
  const config = parseConfig({
    source: { kind: 'folder', folder },
    tunnel: { credentialsFile: edge.credentialsFile, edgeAddresses: [edge.edgeAddress], edgeCaFile: otherCa.caFile, haConnections: 1 },
    server: { listen: '127.0.0.1:0' },
    shutdownGracePeriod: '2s',
  });
  const warren = await assembleWarren(config, { logger, env: {} });
  t.is(warren.simulator, undefined, 'no built-in simulator with a tunnel configured');
  t.deepEqual(warren.config.tunnel.edgeAddresses, [edge.edgeAddress], 'the settings are not rewritten');
  runUntilTeardown(t, warren);

  await waitUntil(
    'a failed edge connection attempt in the log',
    () => lines().some((l) => l.component === 'tunnel' && /certificate|self.signed|unable to verify/i.test(JSON.stringify(l))),
    15_000,
  );
  t.is(edge.registeredConnections().length, 0, 'the connector did not register with an edge its CA file does not vouch for');
  const readiness = warren.health.readiness();
  t.true(readiness !== true && readiness.some((r) => r.startsWith('tunnel:')), `readiness: ${JSON.stringify(readiness)}`);
});

test("folder mode runs the DNS plugin against the Cloudflare API: CNAMEs with ownership for the folder's hosts, released when a host goes", async (t) => {
  const API_TOKEN = 'folder-mode-dns-token-0123456789';
  const fake = await startFakeCloudflare({ tokens: [{ value: API_TOKEN }] });
  t.teardown(() => fake.close());
  fake.addZone('example.com');
  // A record Warren does not own: it must be left alone, with the cluster's Warning as a log line.
  fake.addRecord('example.com', { name: 'taken.example.com', type: 'A', content: '198.18.0.9', proxied: false, ttl: 300 });
  const origin = await exampleFolder(t);
  const folder = tempDir('folder-mode-dns');
  writeFileSync(join(folder, 'services.yaml'), readFileSync(join(origin, 'services.yaml')));
  const ingress = (hosts: string[]) =>
    [
      'apiVersion: networking.k8s.io/v1',
      'kind: Ingress',
      'metadata: { name: shop, namespace: demo }',
      'spec:',
      '  ingressClassName: cloudflare-tunnel',
      '  rules:',
      ...hosts.map((h) => `    - host: ${h}\n      http: { paths: [ { path: /, pathType: Prefix, backend: { service: { name: web, port: { name: http } } } } ] }`),
      '---',
      'apiVersion: networking.k8s.io/v1',
      'kind: IngressClass',
      'metadata: { name: cloudflare-tunnel }',
      'spec: { controller: warren.dev/ingress-controller }',
      '',
    ].join('\n');
  writeFileSync(join(folder, 'ingress.yaml'), ingress(['shop.example.com', 'api.example.com', 'taken.example.com']));
  const edge = await testEdge(t, 1);
  const { logger, lines } = capturingLogger();
  const config = parseConfig({
    source: { kind: 'folder', folder },
    tunnel: { edgeAddresses: [edge.edgeAddress], edgeCaFile: edge.caFile, haConnections: 1 },
    cloudflare: { apiBaseUrl: fake.baseUrl, accountId: 'acc-folder-mode' },
    server: { listen: '127.0.0.1:0' },
    plugins: { dns: { enabled: true } },
    shutdownGracePeriod: '2s',
  });
  const warren = await assembleWarren(config, { logger, env: { TUNNEL_TOKEN: edge.token, CLOUDFLARE_API_TOKEN: API_TOKEN } });
  runUntilTeardown(t, warren);

  const target = `${edge.credentials.tunnelId}.cfargotunnel.com`;
  const cnames = () =>
    Object.fromEntries(
      fake
        .records('example.com')
        .filter((r) => r.type === 'CNAME')
        .map((r) => [r.name, r.content]),
    );
  await waitUntil("CNAMEs for the folder's hosts", () => Object.keys(cnames()).length === 2, 20_000);
  t.deepEqual(cnames(), { 'shop.example.com': target, 'api.example.com': target }, 'the tunnel of the token is the target');
  const owners = fake
    .records('example.com')
    .filter((r) => r.type === 'TXT')
    .map((r) => r.name)
    .sort();
  t.deepEqual(owners, ['_warren.api.example.com', '_warren.shop.example.com'], 'ownership records, as in Kubernetes mode');
  t.deepEqual(fake.records('example.com').find((r) => r.name === 'taken.example.com')?.type, 'A', 'a record Warren does not own is left alone');
  await waitUntil('the DnsConflict warning in the log', () => lines().some((l) => l.reason === 'DnsConflict'), 10_000);
  const conflict = lines().find((l) => l.reason === 'DnsConflict')!;
  t.is(conflict.level, 40, 'logged as a warning');
  t.deepEqual(conflict.object, { kind: 'Ingress', namespace: 'demo', name: 'shop' });
  t.regex(String(conflict.file), /ingress\.yaml$/, 'the log names the manifest file');

  // Removing a host from the folder releases its records (no finalizers: the next sync sees the whole state).
  writeFileSync(join(folder, 'ingress.yaml'), ingress(['shop.example.com', 'taken.example.com']));
  await waitUntil('the records of the removed host to go', () => !('api.example.com' in cnames()), 20_000);
  t.deepEqual(cnames(), { 'shop.example.com': target });
  t.false(fake.records('example.com').some((r) => r.name === '_warren.api.example.com'));
});

test('folder mode follows a rotated tunnel.tokenFile without a restart, as token mode in a cluster does', async (t) => {
  const folder = await exampleFolder(t);
  const accountTag = randomBytes(16).toString('hex');
  const tunnelId = randomUUID();
  const secrets = [randomBytes(32), randomBytes(32)];
  let valid = secrets[0]!;
  const registeredWith: number[] = [];
  const edge = await startEdgeSimulator({
    edgeListeners: 1,
    eyeball: { host: '127.0.0.1', port: 0 },
    credentials: { accountTag, tunnelId, tunnelSecret: secrets[0]! },
    authorize: (c) => {
      const ok = c.accountTag === accountTag && c.tunnelId === tunnelId && c.tunnelSecret.equals(valid);
      if (ok) registeredWith.push(secrets.findIndex((s) => s.equals(c.tunnelSecret)));
      return ok;
    },
  });
  t.teardown(() => edge.close());
  const tokenFile = join(tempDir('folder-mode-token'), 'token');
  writeFileSync(tokenFile, encodeTunnelToken({ accountTag, tunnelId, tunnelSecret: secrets[0]! }));
  const { logger } = capturingLogger();
  const config = parseConfig({
    source: { kind: 'folder', folder },
    tunnel: { tokenFile, edgeAddresses: [edge.edgeAddress], edgeCaFile: edge.caFile, haConnections: 1 },
    cloudflare: { tunnelCheckInterval: '1s' },
    server: { listen: '127.0.0.1:0' },
    shutdownGracePeriod: '2s',
  });
  const warren = await assembleWarren(config, { logger, env: {} });
  runUntilTeardown(t, warren);
  await waitUntil('a registration with the first secret', () => registeredWith.includes(0), 20_000);
  t.is((await send(edge.eyeballUrl, '/hello', { host: 'app.localhost' })).echo?.service, 'web');

  // "Rotate token": the edge accepts only the new secret from now on, and the file gets the new token.
  valid = secrets[1]!;
  writeFileSync(tokenFile, `${encodeTunnelToken({ accountTag, tunnelId, tunnelSecret: secrets[1]! })}\n`);
  await waitUntil('a registration with the rotated secret', () => registeredWith.includes(1), 20_000);
  await sendUntil(edge.eyeballUrl, '/hello', { host: 'app.localhost' }, (a) => a.status === 200 && a.echo?.service === 'web', 10_000, 'requests flow on the new credentials');
});
