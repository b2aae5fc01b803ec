/**
 * Upstream TLS diagnostics of the real controller process (tls plugin) on a real apiserver:
 *  - a `proxy-ssl-secret` whose ca.crt, tls.crt or tls.key is unusable gives one Warning `UpstreamTLSInvalid`
 *    naming the Secret, the key and the problem, checked when the route is bound and on every Secret change;
 *    the route answers 502 with that explanation; when the Secret is fixed a Normal `UpstreamTLSValid` follows;
 *  - a Secret created just before the Ingress naming it (`kubectl apply -f dir/`, Helm) gives no false
 *    "does not exist" Warning while it is being fetched, whereas a Secret that really is missing does.
 */
import test from 'ava';
import type { CoreV1Event } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import { createTestCa, issueCert } from '../../src/edge-simulator/certs.js';
import { adminClients, useApiServer, type AdminClients } from '../support/apiserver.js';
import { ensureIngressClass, ingress, testHost } from '../support/k8s-objects.js';
import { waitUntil } from './support/children.js';
import { createEchoBackend, eventsFor } from './support/cluster.js';
import { startEchoService, type EchoService } from './support/echo.js';
import { sendUntil } from './support/http.js';
import { controllerKubeconfig, startEdge, startWarren, type WarrenProcess } from './support/warren.js';

const server = useApiServer(test);
let admin: AdminClients;
let edge: EdgeSimulator;
let warren: WarrenProcess;
let echo: EchoService;
let ns: string;
const ca = createTestCa('Upstream Test CA');
const cert = issueCert(ca, { dns: ['web.example.internal'] });
const otherCert = issueCert(ca, { dns: ['other.example.internal'] });

test.serial.before(async () => {
  admin = adminClients(server());
  await ensureIngressClass(admin);
  edge = await startEdge();
  const kubeconfigFile = await controllerKubeconfig(server());
  warren = await startWarren({ podName: 'warren-tls', kubeconfigFile, edge });
  echo = await startEchoService('tls-web', [testHost(6)]);
  ns = await server().createNamespace('upstream-tls');
  await createEchoBackend(admin, ns, echo);
});

test.afterEach.always((t) => {
  if (!t.passed) t.log(warren.child.tail(60));
});

test.after.always(async () => {
  await warren?.stop();
  await edge?.close();
  await echo?.close();
});

async function putSecret(name: string, data: Record<string, string>): Promise<void> {
  const body = { metadata: { name, namespace: ns }, type: 'Opaque', stringData: data };
  try {
    await admin.core.createNamespacedSecret({ namespace: ns, body });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    await admin.core.replaceNamespacedSecret({ namespace: ns, name, body });
  }
}

function tlsIngress(name: string, secret: string) {
  return ingress(ns, name, {
    annotations: { 'warren.dev/backend-protocol': 'HTTPS', 'warren.dev/proxy-ssl-secret': secret },
    rules: [{ host: `${name}.tls.example`, paths: [{ service: echo.name, port: 80 }] }],
  });
}

const events = (name: string): Promise<CoreV1Event[]> => eventsFor(admin, ns, name);

async function waitForEvent(name: string, accept: (e: CoreV1Event) => boolean, what: string): Promise<CoreV1Event> {
  let found: CoreV1Event | undefined;
  await waitUntil(what, async () => !!(found = (await events(name)).find(accept)), 15_000);
  return found!;
}

test.serial('unusable ca.crt, tls.crt or tls.key: a Warning naming Secret, key and problem, 502 with that reason in the log, and a Normal event once fixed', async (t) => {
  // 900 KB of junk where a CA bundle belongs.
  await putSecret('upstream', { 'ca.crt': randomBytes(675 * 1024).toString('base64') });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: tlsIngress('tls-bad', 'upstream') });
  const junk = await waitForEvent('tls-bad', (e) => e.reason === 'UpstreamTLSInvalid', 'the Warning for a junk ca.crt');
  t.is(junk.type, 'Warning');
  t.regex(junk.message!, new RegExp(`Secret ${ns}/upstream named by warren\\.dev/proxy-ssl-secret is unusable: key ca\\.crt is not PEM`));
  const answer = await sendUntil(edge.eyeballUrl, '/', { host: 'tls-bad.tls.example' }, (a) => a.status === 502, 10_000, 'a 502');
  // The visitor's page names nothing internal (the reason is in the Warning and the log, found by the reference).
  t.regex(answer.body, /^the origin could not be reached\nreference: \S+\n$/);
  await warren.child.waitForOutput(/key ca\.crt is not PEM[^\n]*"msg":"route unavailable"/, 10_000, 'the cause of the 502 in the log');

  // Every Secret change is checked again: a garbage tls.key, then a key of another certificate.
  await putSecret('upstream', { 'ca.crt': ca.certPem, 'tls.crt': cert.certPem, 'tls.key': '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n' });
  const badKey = await waitForEvent('tls-bad', (e) => /key tls\.key is not a usable PEM private key/.test(e.message ?? ''), 'the Warning for a garbage tls.key');
  t.is(badKey.type, 'Warning');
  await putSecret('upstream', { 'ca.crt': ca.certPem, 'tls.crt': cert.certPem, 'tls.key': otherCert.keyPem });
  await waitForEvent('tls-bad', (e) => /key tls\.key does not belong to the certificate in tls\.crt/.test(e.message ?? ''), 'the Warning for a mismatched tls.key');
  await putSecret('upstream', { 'ca.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' });
  await waitForEvent('tls-bad', (e) => /key ca\.crt the certificate does not parse/.test(e.message ?? ''), 'the Warning for a CA that does not parse');

  // Fixed: a Normal event says so, so a stale Warning is not the last word in `kubectl describe`.
  await putSecret('upstream', { 'ca.crt': ca.certPem });
  const cleared = await waitForEvent('tls-bad', (e) => e.reason === 'UpstreamTLSValid', 'the Normal event once the Secret is fixed');
  t.is(cleared.type, 'Normal');
  let mark = warren.child.stdout().length;
  const blamesNoSecret = (): boolean => {
    const fresh = warren.child.stdout().slice(mark);
    mark += fresh.length;
    return fresh.includes('"level"') && !fresh.includes('proxy-ssl-secret');
  };
  const fixed = await sendUntil(
    edge.eyeballUrl,
    '/',
    { host: 'tls-bad.tls.example' },
    (a) => a.status !== 200 && blamesNoSecret(),
    10_000,
    'a failure the log no longer blames on the Secret',
  );
  t.not(fixed.status, 200, 'the echo backend speaks plain HTTP, so the TLS handshake itself still fails');
});

test.serial('a Secret created just before the Ingress naming it gives no false "does not exist" Warning; a missing one does', async (t) => {
  const names: string[] = [];
  for (let i = 0; i < 6; i++) {
    const name = `fresh-${i}`;
    names.push(name);
    await putSecret(`${name}-ca`, { 'ca.crt': ca.certPem });
    await admin.networking.createNamespacedIngress({ namespace: ns, body: tlsIngress(name, `${name}-ca`) });
  }
  await admin.networking.createNamespacedIngress({ namespace: ns, body: tlsIngress('missing', 'no-such-secret') });
  const missing = await waitForEvent('missing', (e) => e.reason === 'UpstreamTLSInvalid', 'the Warning for a missing Secret');
  t.regex(missing.message!, new RegExp(`Secret ${ns}/no-such-secret named by warren\\.dev/proxy-ssl-secret does not exist`));
  for (const name of names) await waitForEvent(name, (e) => e.reason === 'Synced', `${name} routed`);
  await sleep(1_000);
  for (const name of names) {
    const warnings = (await events(name)).filter((e) => e.type === 'Warning');
    t.deepEqual(
      warnings.map((e) => e.message),
      [],
      `no Warning for ${name}`,
    );
  }
});
