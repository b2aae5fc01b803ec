import test from 'ava';
import http from 'node:http';
import type https from 'node:https';
import type { TLSSocket } from 'node:tls';
import {
  MemorySecrets,
  capturedLogger,
  createTestCa,
  issueCert,
  loggedError,
  startOrigin,
  startProxyHarness,
  testRoute,
  testRouteTable,
  type TestRouteInit,
} from '@warren/core/testing';
import tls from '../src/index.js';

function get(url: string, path = '/', host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}${path}`, { agent: false, ...(host ? { headers: { host } } : {}) }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

const ca = createTestCa('Upstream CA');
const otherCa = createTestCa('Some Other CA');
const serverCert = issueCert(ca, { dns: ['origin.test', 'svc.default.svc'] });
const clientCert = issueCert(ca, { client: true, commonName: 'warren-client' });

/** An HTTPS origin that reports the client certificate's CN it saw. */
async function httpsOrigin(options: { mtls?: boolean; cert?: { certPem: string; keyPem: string } } = {}) {
  const cert = options.cert ?? serverCert;
  return startOrigin({
    tls: { cert: cert.certPem, key: cert.keyPem, ca: ca.certPem, requestCert: options.mtls ?? false },
    handler: (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate?.();
      res.end(JSON.stringify({ client: peer?.subject?.CN ?? null, path: req.url }));
    },
  });
}

async function harness(t: { teardown(f: () => unknown): void }, route: TestRouteInit, secrets: MemorySecrets, config: Record<string, unknown> = {}) {
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({
    plugins: [{ module: tls, config }],
    secrets,
    table: testRouteTable([testRoute({ protocol: 'https', ...route })]),
    logger,
  });
  t.teardown(() => proxy.close());
  return Object.assign(proxy, { lines });
}

test('verifies the upstream against the CA from proxy-ssl-secret and the name from proxy-ssl-name', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'upstream-ca', { 'ca.crt': ca.certPem });
  const proxy = await harness(
    t,
    { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'upstream-ca', 'proxy-ssl-name': 'origin.test' }, secretRefs: ['default/upstream-ca'] },
    secrets,
  );
  const reply = await get(proxy.url);
  t.is(reply.status, 200);
  t.is(JSON.parse(reply.body).client, null);
});

test("the client's Host never becomes the TLS name: SNI and verification use the configured name", async (t) => {
  const origin = await startOrigin({
    tls: { cert: serverCert.certPem, key: serverCert.keyPem },
    handler: (req, res) => res.end(String((req.socket as TLSSocket).servername)),
  });
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'upstream-ca', { 'ca.crt': ca.certPem });
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'upstream-ca', 'proxy-ssl-name': 'origin.test' } }, secrets);
  for (const host of ['attacker.test', 'svc.default.svc', 'origin.test']) {
    t.deepEqual(await get(proxy.url, '/', host), { status: 200, body: 'origin.test' });
  }
});

test('the default verify name is <service>.<namespace>.svc', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'upstream-ca', { 'ca.crt': ca.certPem });
  const proxy = await harness(t, { service: 'svc', endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'upstream-ca' } }, secrets);
  t.is((await get(proxy.url)).status, 200);
});

test('a certificate from another CA is refused with 502', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'wrong-ca', { 'ca.crt': otherCa.certPem });
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'wrong-ca', 'proxy-ssl-name': 'origin.test' } }, secrets);
  const reply = await get(proxy.url);
  t.is(reply.status, 502);
  t.regex(loggedError(proxy.lines), /TLS handshake with upstream failed/);
  t.notRegex(reply.body, /TLS|ERR_/, 'the client is not told the upstream error');
  t.is(origin.requests, 0);
});

test('without a CA Secret the system roots apply, so a private CA is refused', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'proxy-ssl-name': 'origin.test' } }, new MemorySecrets());
  t.is((await get(proxy.url)).status, 502);
  t.is(origin.requests, 0);
});

test('a certificate for another name is refused with 502', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'upstream-ca', { 'ca.crt': ca.certPem });
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'upstream-ca', 'proxy-ssl-name': 'other.test' } }, secrets);
  const reply = await get(proxy.url);
  t.is(reply.status, 502);
  t.regex(loggedError(proxy.lines), /ERR_TLS_CERT_ALTNAME_INVALID/);
  t.notRegex(reply.body, /ERR_TLS/);
});

test('proxy-ssl-verify: off is the only way to skip verification', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'wrong-ca', { 'ca.crt': otherCa.certPem });
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'wrong-ca', 'proxy-ssl-verify': 'off' } }, secrets);
  t.is((await get(proxy.url)).status, 200);
});

test('an upstream that requires a client certificate gets the one from the Secret (mTLS)', async (t) => {
  const origin = await httpsOrigin({ mtls: true });
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'upstream-ca', { 'ca.crt': ca.certPem });
  secrets.set('default', 'mtls', { 'ca.crt': ca.certPem, 'tls.crt': clientCert.certPem, 'tls.key': clientCert.keyPem });
  secrets.set('default', 'client-only', { 'tls.crt': clientCert.certPem, 'tls.key': clientCert.keyPem });

  const without = await harness(t, { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'upstream-ca', 'proxy-ssl-name': 'origin.test' } }, secrets);
  t.is((await get(without.url)).status, 502, 'no client certificate: the upstream refuses the handshake');

  const same = await harness(t, { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'mtls', 'proxy-ssl-name': 'origin.test' } }, secrets);
  const viaSame = await get(same.url);
  t.is(viaSame.status, 200);
  t.is(JSON.parse(viaSame.body).client, 'warren-client');

  const separate = await harness(
    t,
    { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'upstream-ca', 'proxy-ssl-client-secret': 'client-only', 'proxy-ssl-name': 'origin.test' } },
    secrets,
  );
  const viaSeparate = await get(separate.url);
  t.is(viaSeparate.status, 200);
  t.is(JSON.parse(viaSeparate.body).client, 'warren-client');
});

test('a missing Secret makes the route unavailable with a Warning on the Ingress, never an unverified fallback', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const proxy = await harness(t, { ingress: 'web', endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'nope', 'proxy-ssl-verify': 'off' } }, new MemorySecrets());
  const reply = await get(proxy.url);
  t.is(reply.status, 502);
  t.regex(loggedError(proxy.lines), /Secret default\/nope named by warren\.dev\/proxy-ssl-secret does not exist/);
  t.notRegex(reply.body, /default|nope|Secret/, 'the client is not told the namespace or the Secret');
  t.is(origin.requests, 0);
  const warning = proxy.events.records.find((e) => e.reason === 'UpstreamTLSInvalid');
  t.deepEqual(warning?.object, { kind: 'Ingress', namespace: 'default', name: 'web', uid: 'uid-web' });
});

test('a Secret in another namespace is refused unless crossNamespaceSecrets is on', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('shared', 'upstream-ca', { 'ca.crt': ca.certPem });
  const route = { endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'shared/upstream-ca', 'proxy-ssl-name': 'origin.test' } };
  const strict = await harness(t, route, secrets);
  const refused = await get(strict.url);
  t.is(refused.status, 502);
  t.regex(loggedError(strict.lines), /another namespace than the Ingress; set plugins\.tls\.crossNamespaceSecrets/);
  t.notRegex(refused.body, /shared|upstream-ca/, 'the client is not told the Secret');
  const open = await harness(t, route, secrets, { crossNamespaceSecrets: true });
  t.is((await get(open.url)).status, 200);
});

test('a rotated CA Secret applies to new connections while requests run, without dropping in-flight ones', async (t) => {
  const newCa = createTestCa('Rotated CA');
  const newCert = issueCert(newCa, { dns: ['origin.test'] });
  let release: (() => void) | undefined;
  const origin = await startOrigin({
    tls: { cert: serverCert.certPem, key: serverCert.keyPem },
    handler: (req, res) => {
      if (req.url === '/hold') release = () => res.end('held');
      else res.end('ok');
    },
  });
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'upstream-ca', { 'ca.crt': ca.certPem });
  const proxy = await harness(
    t,
    { id: 'r', endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'upstream-ca', 'proxy-ssl-name': 'origin.test' }, secretRefs: ['default/upstream-ca'] },
    secrets,
  );
  const server = origin.server as https.Server;

  // Background load for the whole rotation: bounded in count and time.
  const statuses: number[] = [];
  let stop = false;
  const load = (async () => {
    const deadline = Date.now() + 20_000;
    while (!stop && statuses.length < 400 && Date.now() < deadline) statuses.push((await get(proxy.url)).status);
  })();
  /** Waits until `n` more requests of the background load completed (bounded). */
  const progress = async (n: number): Promise<void> => {
    const target = statuses.length + n;
    const deadline = Date.now() + 5_000;
    while (statuses.length < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  };
  await progress(3);

  const held = get(proxy.url, '/hold');
  while (!release) await new Promise((r) => setTimeout(r, 5));
  const generation = proxy.pipeline.generationsAlive;

  secrets.set('default', 'upstream-ca', { 'ca.crt': ca.certPem + newCa.certPem });
  const rebuilt = Date.now() + 5_000;
  while (proxy.pipeline.generationsAlive === generation && Date.now() < rebuilt) await new Promise((r) => setTimeout(r, 5));
  t.true(proxy.pipeline.generationsAlive > generation, 'the Secret change rebuilt the generation; the old one waits for the held request');
  await progress(3);
  server.setSecureContext({ cert: newCert.certPem, key: newCert.keyPem });
  await progress(3);
  secrets.set('default', 'upstream-ca', { 'ca.crt': newCa.certPem });
  await progress(3);
  stop = true;
  await load;
  t.true(statuses.length >= 12, `only ${statuses.length} requests ran during the rotation`);
  t.deepEqual([...new Set(statuses)], [200], 'no request failed during the rotation');

  release();
  t.deepEqual(await held, { status: 200, body: 'held' });

  // The old CA is really gone: an upstream that goes back to the old certificate is refused.
  server.setSecureContext({ cert: serverCert.certPem, key: serverCert.keyPem });
  t.is((await get(proxy.url)).status, 502);
});

test('settings and annotation values are validated', (t) => {
  t.throws(() => tls.manifest.configSchema.parse({ crossNamespaceSecrets: 'yes' }));
  const byKey = Object.fromEntries(tls.manifest.annotations!.map((a) => [a.key, a]));
  t.is(byKey['proxy-ssl-secret']!.schema.parse(' ns/name '), 'ns/name');
  t.false(byKey['proxy-ssl-secret']!.schema.safeParse('a/b/c').success);
  t.false(byKey['proxy-ssl-secret']!.schema.safeParse('Bad_Name').success);
  t.true(byKey['proxy-ssl-secret']!.secretRef === true && byKey['proxy-ssl-client-secret']!.secretRef === true);
  t.is(byKey['proxy-ssl-verify']!.schema.parse('OFF'), 'off');
  t.false(byKey['proxy-ssl-verify']!.schema.safeParse('no').success);
  t.false(byKey['proxy-ssl-name']!.schema.safeParse('not a name').success);
});

test('a problem on an HTTPRoute (its own annotations or a BackendTLSPolicy) is reported on the HTTPRoute, never on the Ingress of its name', async (t) => {
  const origin = await httpsOrigin();
  t.teardown(() => origin.close());
  const { logger, lines } = capturedLogger();
  const secrets = new MemorySecrets();
  const base = testRoute({ protocol: 'https', ingress: 'web', endpoints: [origin.key], annotations: { 'proxy-ssl-secret': 'nope', 'proxy-ssl-name': 'origin.test' } });
  const route = { ...base, id: 'HTTPRoute:default/web#r0/m0', ingress: { ...base.ingress, kind: 'HTTPRoute' as const, uid: 'uid-httproute-web' } };
  const proxy = await startProxyHarness({ plugins: [{ module: tls, config: {} }], secrets, table: testRouteTable([route]), logger });
  t.teardown(() => proxy.close());
  t.is((await get(proxy.url)).status, 502);
  t.regex(loggedError(lines), /Secret default\/nope named by warren\.dev\/proxy-ssl-secret does not exist \(or is not readable\) \(HTTPRoute default\/web\)/);
  const warning = proxy.events.records.find((e) => e.reason === 'UpstreamTLSInvalid');
  t.deepEqual(warning?.object, { kind: 'HTTPRoute', namespace: 'default', name: 'web', uid: 'uid-httproute-web' });
  t.false(proxy.events.records.some((e) => e.object.kind === 'Ingress'));
});
