/**
 * The settings a BackendTLSPolicy becomes, against real HTTPS origins on loopback: an inline CA bundle
 * (`proxy-ssl-ca`, what a ConfigMap CA is handed over as) and subject alternative names the certificate must carry
 * one of (`proxy-ssl-subject-alt-names`), which replace the name check while `proxy-ssl-name` stays the SNI.
 */
import test from 'ava';
import http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MemorySecrets, capturedLogger, createTestCa, issueCert, loggedError, startOrigin, startProxyHarness, testRoute, testRouteTable } from '@warren/core/testing';
import tls from '../src/index.js';

const ca = createTestCa('Bundle CA');
const otherCa = createTestCa('Unrelated CA');
const cert = issueCert(ca, { dns: ['abc.example.com'], uris: ['spiffe://abc.example.com/test-identity'] });

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

/** An HTTPS origin with `cert` that answers with the SNI it was sent. */
async function origin(t: { teardown(f: () => unknown): void }) {
  const o = await startOrigin({ tls: { cert: cert.certPem, key: cert.keyPem }, handler: (req, res) => res.end(String((req.socket as TLSSocket).servername)) });
  t.teardown(() => o.close());
  return o;
}

async function through(t: { teardown(f: () => unknown): void }, endpoint: string, annotations: Record<string, unknown>) {
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({
    plugins: [{ module: tls, config: {} }],
    secrets: new MemorySecrets(),
    table: testRouteTable([testRoute({ protocol: 'https', endpoints: [endpoint], annotations })]),
    logger,
  });
  t.teardown(() => proxy.close());
  return { reply: await get(proxy.url), lines };
}

test('an inline CA bundle verifies the upstream; one of another CA is refused with 502; one that does not parse too', async (t) => {
  const o = await origin(t);
  t.deepEqual((await through(t, o.key, { 'proxy-ssl-ca': ca.certPem, 'proxy-ssl-name': 'abc.example.com' })).reply, { status: 200, body: 'abc.example.com' });
  const wrong = await through(t, o.key, { 'proxy-ssl-ca': otherCa.certPem, 'proxy-ssl-name': 'abc.example.com' });
  t.is(wrong.reply.status, 502);
  // Two bundles: the right CA among them is enough.
  t.is((await through(t, o.key, { 'proxy-ssl-ca': `${otherCa.certPem}${ca.certPem}`, 'proxy-ssl-name': 'abc.example.com' })).reply.status, 200);
  const junk = await through(t, o.key, { 'proxy-ssl-ca': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'proxy-ssl-name': 'abc.example.com' });
  t.is(junk.reply.status, 502);
  t.regex(loggedError(junk.lines), /the CA bundle named by warren\.dev\/proxy-ssl-ca is unusable: key ca\.crt/);
  t.is(o.requests, 2);
});

test('subject alternative names: one DNS or URI name the certificate carries is enough, and the SNI name is no longer checked', async (t) => {
  const o = await origin(t);
  const cases: Array<[string, string[], number]> = [
    ['DNS match', ['DNS:abc.example.com'], 200],
    ['DNS mismatch although proxy-ssl-name matches', ['DNS:dce.example.com'], 502],
    ['URI match', ['URI:spiffe://abc.example.com/test-identity'], 200],
    ['URI mismatch', ['URI:spiffe://def.example.com/test-identity'], 502],
    ['one of several', ['URI:spiffe://def.example.com/test-identity', 'DNS:abc.example.com'], 200],
    ['none of several', ['URI:spiffe://def.example.com/test-identity', 'DNS:def.example.com'], 502],
    ['a wildcard pattern is no certificate name', ['DNS:*.example.com'], 502],
  ];
  for (const [what, names, status] of cases) {
    const { reply, lines } = await through(t, o.key, { 'proxy-ssl-ca': ca.certPem, 'proxy-ssl-name': 'abc.example.com', 'proxy-ssl-subject-alt-names': names });
    t.is(reply.status, status, what);
    if (status === 200) t.is(reply.body, 'abc.example.com', `${what}: proxy-ssl-name is still the SNI`);
    else t.regex(loggedError(lines), /ERR_TLS_CERT_ALTNAME_INVALID/, what);
  }
  // The SNI name need not match when the names do.
  const { reply } = await through(t, o.key, { 'proxy-ssl-ca': ca.certPem, 'proxy-ssl-name': 'elsewhere.example.com', 'proxy-ssl-subject-alt-names': ['DNS:abc.example.com'] });
  t.deepEqual(reply, { status: 200, body: 'elsewhere.example.com' });
});
