import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { staticAccess, type ClientCertificate, type ClusterAccess, type Credentials } from '../../../src/k8s/api/access.js';
import { apiPath, KubeApiError, KubeClient, MAX_WATCH_LINE } from '../../../src/k8s/api/client.js';
import { createTestCa, issueCert } from '../../../src/edge-simulator/certs.js';

// Every server here listens on 127.0.0.1 and is closed when its test ends.

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** Common name of the client certificate the peer presented (https servers only). */
  readonly clientCn: string | undefined;
}

type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void | Promise<void>;

interface TestServer {
  readonly url: string;
  readonly seen: Seen[];
  readonly sockets: Set<Socket>;
}

async function serve(t: ExecutionContext, handler: Handler, tls?: { cert: string; key: string; ca?: string; requestCert?: boolean }): Promise<TestServer> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const peer = tls ? (req.socket as TLSSocket).getPeerCertificate() : undefined;
      const entry: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        clientCn: peer && Object.keys(peer).length > 0 ? String(peer.subject.CN) : undefined,
      };
      seen.push(entry);
      Promise.resolve(handler(req, res, entry)).catch((err: unknown) => res.destroy(err as Error));
    });
  };
  const server: Server = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}), requestCert: tls.requestCert ?? false, rejectUnauthorized: false }, listener)
    : createHttpServer(listener);
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close').catch(() => undefined);
  });
  const { port } = server.address() as AddressInfo;
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, seen, sockets };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function client(t: ExecutionContext, access: ClusterAccess, options?: { userAgent?: string }): KubeClient {
  const c = new KubeClient(access, options);
  t.teardown(() => c.close());
  return c;
}

/** Access whose credentials depend on the refresh flag; records each call's flag. */
function refreshingAccess(server: string, answer: (refresh: boolean) => Credentials, extra: Partial<ClusterAccess> = {}): { access: ClusterAccess; refreshes: boolean[] } {
  const refreshes: boolean[] = [];
  return {
    refreshes,
    access: {
      server,
      source: 'test',
      credentials: (refresh = false) => {
        refreshes.push(refresh);
        return Promise.resolve(answer(refresh));
      },
      ...extra,
    },
  };
}

// ---- certificates (made once for the file) ----

const ca = createTestCa('Kube Test CA');
const otherCa = createTestCa('Unrelated CA');
const serverCert = issueCert(ca, { dns: ['localhost'], ips: ['127.0.0.1'] });
const namedOnlyCert = issueCert(ca, { dns: ['kube-apiserver.test'] });
const clientCert = issueCert(ca, { client: true, commonName: 'warren-controller' });
const rotatedClientCert = issueCert(ca, { client: true, commonName: 'warren-rotated' });
test.after.always(() => {
  for (const dir of [ca.dir, otherCa.dir]) rmSync(dir, { recursive: true, force: true });
});
const asClientCert = (c: { certPem: string; keyPem: string }): ClientCertificate => ({ certPem: c.certPem, keyPem: c.keyPem });

// ---- plain requests ----

test('GET sends path, query without empty parameters, Accept, User-Agent and Authorization; parses the JSON answer', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, { kind: 'IngressList', items: [{ metadata: { name: 'é' } }] }));
  const kube = client(t, staticAccess({ server: srv.url, token: 'tok-get' }), { userAgent: 'warren-test/1.0' });
  const list = await kube.get<{ kind: string; items: Array<{ metadata: { name: string } }> }>('/apis/networking.k8s.io/v1/ingresses', {
    query: { labelSelector: 'app in (a,b)', limit: 500, continue: '', resourceVersion: undefined, allowWatchBookmarks: false },
  });
  t.deepEqual(list, { kind: 'IngressList', items: [{ metadata: { name: 'é' } }] });
  t.is(srv.seen.length, 1);
  const [req] = srv.seen;
  t.is(req!.method, 'GET');
  const url = new URL(req!.url, srv.url);
  t.is(url.pathname, '/apis/networking.k8s.io/v1/ingresses');
  t.deepEqual(
    [...url.searchParams.entries()],
    [
      ['labelSelector', 'app in (a,b)'],
      ['limit', '500'],
      ['allowWatchBookmarks', 'false'],
    ],
  );
  t.is(req!.headers.accept, 'application/json');
  t.is(req!.headers['user-agent'], 'warren-test/1.0');
  t.is(req!.headers.authorization, 'Bearer tok-get');
  t.is(req!.headers['content-type'], undefined, 'no body, no content type');
  t.is(kube.source, srv.url);
});

test('without query parameters there is no "?" and without a token no Authorization; the default User-Agent is warren', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, {}));
  const kube = client(t, staticAccess({ server: srv.url }));
  await kube.get('/api/v1/namespaces/default/configmaps/x', { query: { fieldSelector: '', limit: undefined } });
  t.is(srv.seen[0]!.url, '/api/v1/namespaces/default/configmaps/x');
  t.false('authorization' in srv.seen[0]!.headers);
  t.is(srv.seen[0]!.headers['user-agent'], 'warren');
});

test('POST and PUT send the JSON body with application/json; a 201 resolves', async (t) => {
  const srv = await serve(t, (req, res, seen) => json(res, req.method === 'POST' ? 201 : 200, { echoed: JSON.parse(seen.body) }));
  const kube = client(t, staticAccess({ server: srv.url, token: 't' }));
  const obj = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: 'ns' }, data: { k: 'ünïcode ✓' } };
  t.deepEqual(await kube.post('/api/v1/namespaces/ns/configmaps', obj, { query: { fieldManager: 'warren' } }), { echoed: obj });
  t.deepEqual(await kube.put('/api/v1/namespaces/ns/configmaps/cm', { ...obj, data: { k: 'v2' } }), { echoed: { ...obj, data: { k: 'v2' } } });
  t.deepEqual(
    srv.seen.map((s) => [s.method, s.url, s.headers['content-type']]),
    [
      ['POST', '/api/v1/namespaces/ns/configmaps?fieldManager=warren', 'application/json'],
      ['PUT', '/api/v1/namespaces/ns/configmaps/cm', 'application/json'],
    ],
  );
  t.is(Number(srv.seen[0]!.headers['content-length']), Buffer.byteLength(JSON.stringify(obj)));
});

test('PATCH picks the content type by kind: JSON patch, merge patch, strategic merge patch', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, { ok: true }));
  const kube = client(t, staticAccess({ server: srv.url }));
  const path = apiPath('networking.k8s.io/v1', 'ingresses', 'ns', 'web', 'status');
  const jsonPatch = [{ op: 'replace', path: '/status', value: { loadBalancer: {} } }];
  await kube.patch(path, jsonPatch, 'json');
  await kube.patch(path, { metadata: { finalizers: null } }, 'merge');
  await kube.patch(path, { metadata: { labels: { a: 'b' } } }, 'strategic', { query: { fieldManager: 'warren' } });
  t.deepEqual(
    srv.seen.map((s) => [s.method, s.url, s.headers['content-type'], JSON.parse(s.body)]),
    [
      ['PATCH', path, 'application/json-patch+json', jsonPatch],
      ['PATCH', path, 'application/merge-patch+json', { metadata: { finalizers: null } }],
      ['PATCH', `${path}?fieldManager=warren`, 'application/strategic-merge-patch+json', { metadata: { labels: { a: 'b' } } }],
    ],
  );
});

test('DELETE sends no body and resolves with the Status; an empty 2xx body resolves undefined', async (t) => {
  const srv = await serve(t, (req, res) => {
    if (req.url?.includes('empty')) {
      res.writeHead(200);
      res.end();
    } else json(res, 200, { kind: 'Status', status: 'Success' });
  });
  const kube = client(t, staticAccess({ server: srv.url }));
  t.deepEqual(await kube.delete('/api/v1/namespaces/ns/secrets/s', { query: { propagationPolicy: 'Background' } }), { kind: 'Status', status: 'Success' });
  t.is(await kube.delete('/api/v1/namespaces/ns/secrets/empty'), undefined);
  t.is(srv.seen[0]!.method, 'DELETE');
  t.is(srv.seen[0]!.url, '/api/v1/namespaces/ns/secrets/s?propagationPolicy=Background');
  t.is(srv.seen[0]!.body, '');
  t.is(srv.seen[0]!.headers['content-type'], undefined);
});

test('a server with a path prefix gets the prefix before every API path', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, {}));
  const kube = client(t, staticAccess({ server: `${srv.url}/k8s/clusters/c-1/` }));
  await kube.get('/api/v1/nodes');
  t.is(srv.seen[0]!.url, '/k8s/clusters/c-1/api/v1/nodes');
});

// ---- TLS ----

test('TLS: the configured CA verifies the server; an unrelated CA is refused before any request is sent', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, { ok: true }), { cert: serverCert.certPem, key: serverCert.keyPem });
  t.deepEqual(await client(t, staticAccess({ server: srv.url, caPem: ca.certPem })).get('/version'), { ok: true });
  const err = await t.throwsAsync(client(t, staticAccess({ server: srv.url, caPem: otherCa.certPem })).get('/version'));
  t.regex(`${(err as { code?: string }).code} ${err.message}`, /certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
  await t.throwsAsync(client(t, staticAccess({ server: srv.url })).get('/version'), undefined, 'Node default roots do not trust the test CA');
  t.is(srv.seen.length, 1, 'only the verified client got through');
});

test('TLS: insecureSkipTlsVerify accepts a server no configured CA trusts', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, { ok: true }), { cert: serverCert.certPem, key: serverCert.keyPem });
  const access: ClusterAccess = { ...staticAccess({ server: srv.url, caPem: otherCa.certPem }), insecureSkipTlsVerify: true };
  t.deepEqual(await client(t, access).get('/version'), { ok: true });
});

test('TLS: tlsServerName verifies the certificate against that name instead of the URL host', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, { ok: true }), { cert: namedOnlyCert.certPem, key: namedOnlyCert.keyPem });
  const base = staticAccess({ server: srv.url, caPem: ca.certPem });
  await t.throwsAsync(client(t, base).get('/version'), undefined, 'the certificate does not name 127.0.0.1');
  t.deepEqual(await client(t, { ...base, tlsServerName: 'kube-apiserver.test' }).get('/version'), { ok: true });
  t.is(srv.seen.length, 1);
});

test('TLS: the static client certificate is presented when the server asks; none without one', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, {}), { cert: serverCert.certPem, key: serverCert.keyPem, ca: ca.certPem, requestCert: true });
  await client(t, staticAccess({ server: srv.url, caPem: ca.certPem, clientCert: asClientCert(clientCert) })).get('/api');
  await client(t, staticAccess({ server: srv.url, caPem: ca.certPem })).get('/api');
  t.deepEqual(
    srv.seen.map((s) => s.clientCn),
    ['warren-controller', undefined],
  );
});

test('TLS: a client certificate from credentials() is presented, and a new one handed out after a 401 replaces it', async (t) => {
  const srv = await serve(
    t,
    (_req, res, seen) => (seen.clientCn === 'warren-rotated' ? json(res, 200, { who: seen.clientCn }) : json(res, 401, { kind: 'Status', reason: 'Unauthorized', code: 401 })),
    { cert: serverCert.certPem, key: serverCert.keyPem, ca: ca.certPem, requestCert: true },
  );
  const { access, refreshes } = refreshingAccess(srv.url, (refresh) => ({ clientCert: asClientCert(refresh ? rotatedClientCert : clientCert) }), { caPem: ca.certPem });
  const kube = client(t, access);
  t.deepEqual(await kube.get('/api'), { who: 'warren-rotated' });
  t.deepEqual(refreshes, [false, true]);
  t.deepEqual(
    srv.seen.map((s) => s.clientCn),
    ['warren-controller', 'warren-rotated'],
  );
});

// ---- errors and 401 ----

test('a non-2xx answer rejects with KubeApiError carrying status, reason and message of the Status body', async (t) => {
  const srv = await serve(t, (_req, res) =>
    json(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'ingresses.networking.k8s.io "web" not found', reason: 'NotFound', code: 404 }),
  );
  const kube = client(t, staticAccess({ server: srv.url, token: 'secret-token-404' }));
  const path = apiPath('networking.k8s.io/v1', 'ingresses', 'ns', 'web');
  const err = await t.throwsAsync(kube.get(path), { instanceOf: KubeApiError });
  t.is(err.statusCode, 404);
  t.deepEqual(err.body, { reason: 'NotFound', message: 'ingresses.networking.k8s.io "web" not found', code: 404 });
  t.is(err.message, `GET ${path}: HTTP 404 NotFound: ingresses.networking.k8s.io "web" not found`);
  t.is(err.name, 'KubeApiError');
  t.false(JSON.stringify({ ...err, message: err.message }).includes('secret-token-404'), 'no request headers in the error');
});

test('a non-JSON error body still gives the status code', async (t) => {
  const srv = await serve(t, (_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<html><body>Bad Gateway</body></html>');
  });
  const err = await t.throwsAsync(client(t, staticAccess({ server: srv.url })).post('/api/v1/namespaces/ns/events', { a: 1 }), { instanceOf: KubeApiError });
  t.is(err.statusCode, 502);
  t.is(err.body, undefined);
  t.is(err.message, 'POST /api/v1/namespaces/ns/events: HTTP 502');
});

test('a 401 is retried once with refreshed credentials, resending the body', async (t) => {
  const srv = await serve(t, (_req, res, seen) =>
    seen.headers.authorization === 'Bearer fresh' ? json(res, 201, { created: true }) : json(res, 401, { kind: 'Status', reason: 'Unauthorized' }),
  );
  const { access, refreshes } = refreshingAccess(srv.url, (refresh) => ({ authorization: refresh ? 'Bearer fresh' : 'Bearer stale' }));
  const kube = client(t, access);
  t.deepEqual(await kube.post('/api/v1/namespaces/ns/configmaps', { metadata: { name: 'x' } }), { created: true });
  t.deepEqual(refreshes, [false, true]);
  t.deepEqual(
    srv.seen.map((s) => [s.headers.authorization, s.body]),
    [
      ['Bearer stale', '{"metadata":{"name":"x"}}'],
      ['Bearer fresh', '{"metadata":{"name":"x"}}'],
    ],
  );
  // The next call starts again from unrefreshed credentials.
  t.deepEqual(await kube.get('/api'), { created: true });
  t.deepEqual(refreshes, [false, true, false, true]);
  t.is(srv.seen.length, 4);
});

test('a second 401 rejects with the 401 and is not retried again', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 401, { kind: 'Status', reason: 'Unauthorized', message: 'Unauthorized', code: 401 }));
  const { access, refreshes } = refreshingAccess(srv.url, () => ({ authorization: 'Bearer revoked' }));
  const err = await t.throwsAsync(client(t, access).get('/api/v1/namespaces'), { instanceOf: KubeApiError });
  t.is(err.statusCode, 401);
  t.is(err.body?.reason, 'Unauthorized');
  t.deepEqual(refreshes, [false, true]);
  t.is(srv.seen.length, 2);
});

test('a 403 is not retried', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 403, { kind: 'Status', reason: 'Forbidden', message: 'no' }));
  const { access, refreshes } = refreshingAccess(srv.url, () => ({ authorization: 'Bearer t' }));
  const err = await t.throwsAsync(client(t, access).get('/api'), { instanceOf: KubeApiError });
  t.is(err.statusCode, 403);
  t.deepEqual(refreshes, [false]);
  t.is(srv.seen.length, 1);
});

// ---- watch ----

type Event = { type: string; object: unknown };

function watchOpen(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
  res.socket?.setNoDelay(true);
}

test('watch: events split at arbitrary byte boundaries, inside multi-byte characters too, arrive intact and in order', async (t) => {
  const events: Event[] = [
    { type: 'ADDED', object: { metadata: { name: 'café', resourceVersion: '1' } } },
    { type: 'MODIFIED', object: { metadata: { name: '日本語-ingress', resourceVersion: '2' }, spec: { note: 'line\nbreak inside a string' } } },
    { type: 'BOOKMARK', object: { metadata: { resourceVersion: '3', annotations: { emoji: '🚀🌍' } } } },
    { type: 'DELETED', object: { metadata: { name: 'ü'.repeat(300), resourceVersion: '4' } } },
  ];
  const payload = Buffer.from(events.map((e) => `${JSON.stringify(e)}\n`).join(''), 'utf8');
  // Split right after the first byte of several multi-byte characters, and elsewhere in 1..13-byte pieces.
  const cuts = new Set<number>();
  for (const ch of ['é', '日', '語', '🚀', '🌍']) {
    const at = payload.indexOf(Buffer.from(ch, 'utf8'));
    t.true(at >= 0);
    for (let k = 1; k < Buffer.byteLength(ch); k++) cuts.add(at + k);
  }
  const sizes = [1, 2, 3, 5, 8, 13];
  for (let at = 0, i = 0; at < payload.length; at += sizes[i++ % sizes.length]!) cuts.add(at);
  const bounds = [...cuts, payload.length].filter((c) => c > 0).sort((a, b) => a - b);

  const srv = await serve(t, async (_req, res) => {
    watchOpen(res);
    let from = 0;
    for (const to of bounds) {
      if (to <= from) continue;
      res.write(payload.subarray(from, to));
      from = to;
      await sleep(to % 4 === 0 ? 2 : 0); // let pieces leave as separate packets
    }
    res.end();
  });
  const got: Event[] = [];
  const kube = client(t, staticAccess({ server: srv.url }));
  const result = await kube.watch('/apis/networking.k8s.io/v1/ingresses', {}, (type, object) => got.push({ type, object }), { signal: new AbortController().signal });
  t.is(result, 'ended');
  t.deepEqual(got, events);
});

test('watch: blank lines are ignored, watch=true and the other parameters are in the query, the server ending gives "ended"', async (t) => {
  const srv = await serve(t, (_req, res) => {
    watchOpen(res);
    res.write('\n');
    res.write(`${JSON.stringify({ type: 'ADDED', object: { n: 1 } })}\n\n  \n`);
    res.end(`\r\n${JSON.stringify({ type: 'ADDED', object: { n: 2 } })}\r\n`);
  });
  const got: Event[] = [];
  const kube = client(t, staticAccess({ server: srv.url, token: 'w' }));
  const result = await kube.watch(
    '/api/v1/services',
    { resourceVersion: '42', allowWatchBookmarks: true, timeoutSeconds: 300, labelSelector: '' },
    (type, object) => got.push({ type, object }),
    { signal: new AbortController().signal },
  );
  t.is(result, 'ended');
  t.deepEqual(got, [
    { type: 'ADDED', object: { n: 1 } },
    { type: 'ADDED', object: { n: 2 } },
  ]);
  const url = new URL(srv.seen[0]!.url, srv.url);
  t.is(url.pathname, '/api/v1/services');
  t.is(url.searchParams.get('watch'), 'true');
  t.is(url.searchParams.get('resourceVersion'), '42');
  t.is(url.searchParams.get('allowWatchBookmarks'), 'true');
  t.is(url.searchParams.get('timeoutSeconds'), '300');
  t.false(url.searchParams.has('labelSelector'));
  t.is(srv.seen[0]!.headers.authorization, 'Bearer w');
});

test('watch: no data for idleTimeoutMs gives "idle", both after events and before the response head', async (t) => {
  const silentAfterOne = await serve(t, (_req, res) => {
    watchOpen(res);
    res.write(`${JSON.stringify({ type: 'ADDED', object: { n: 1 } })}\n`);
  });
  const got: string[] = [];
  const kube = client(t, staticAccess({ server: silentAfterOne.url }));
  t.is(await kube.watch('/api/v1/pods', {}, (type) => got.push(type), { signal: new AbortController().signal, idleTimeoutMs: 300 }), 'idle');
  t.deepEqual(got, ['ADDED']);

  const neverAnswers = await serve(t, () => undefined);
  const kube2 = client(t, staticAccess({ server: neverAnswers.url }));
  t.is(await kube2.watch('/api/v1/pods', {}, () => t.fail('no events expected'), { signal: new AbortController().signal, idleTimeoutMs: 300 }), 'idle');
});

test('watch: aborting the signal gives "aborted"', async (t) => {
  const srv = await serve(t, (_req, res) => {
    watchOpen(res);
    res.write(`${JSON.stringify({ type: 'ADDED', object: { n: 1 } })}\n`);
  });
  const controller = new AbortController();
  const got: unknown[] = [];
  const kube = client(t, staticAccess({ server: srv.url }));
  const result = await kube.watch(
    '/api/v1/pods',
    {},
    (_type, object) => {
      got.push(object);
      controller.abort();
    },
    { signal: controller.signal, idleTimeoutMs: 60_000 },
  );
  t.is(result, 'aborted');
  t.deepEqual(got, [{ n: 1 }]);
});

test('watch: a refused watch rejects with KubeApiError; a 401 is retried with refreshed credentials first', async (t) => {
  const srv = await serve(t, (_req, res, seen) =>
    seen.headers.authorization === 'Bearer fresh'
      ? json(res, 410, { kind: 'Status', reason: 'Expired', message: 'too old resource version: 1 (99)', code: 410 })
      : json(res, 401, { kind: 'Status', reason: 'Unauthorized' }),
  );
  const { access, refreshes } = refreshingAccess(srv.url, (refresh) => ({ authorization: refresh ? 'Bearer fresh' : 'Bearer stale' }));
  const err = await t.throwsAsync(
    client(t, access).watch('/api/v1/secrets', { resourceVersion: '1' }, () => t.fail('no events expected'), { signal: new AbortController().signal }),
    { instanceOf: KubeApiError },
  );
  t.is(err.statusCode, 410);
  t.is(err.body?.reason, 'Expired');
  t.is(err.message, 'WATCH /api/v1/secrets: HTTP 410 Expired: too old resource version: 1 (99)');
  t.deepEqual(refreshes, [false, true]);
  t.is(srv.seen.length, 2);
});

test('watch: a line that is not JSON rejects after the events before it were delivered', async (t) => {
  const srv = await serve(t, (_req, res) => {
    watchOpen(res);
    res.write(`${JSON.stringify({ type: 'ADDED', object: { n: 1 } })}\n<html>proxy error data:c2VjcmV0</html>\n`);
  });
  const got: unknown[] = [];
  const kube = client(t, staticAccess({ server: srv.url }));
  const err = await t.throwsAsync(kube.watch('/api/v1/pods', {}, (_type, object) => got.push(object), { signal: new AbortController().signal, idleTimeoutMs: 10_000 }));
  t.regex(err!.message, /watch \/api\/v1\/pods: .*not valid JSON/);
  t.false(err!.message.includes('c2VjcmV0'), 'the error never quotes the body (it may hold Secret data)');
  t.deepEqual(got, [{ n: 1 }]);
});

/** Resolves when the response can take more data or is gone, leaving no listener behind. */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

test('watch: a line longer than MAX_WATCH_LINE without a newline rejects', async (t) => {
  const piece = Buffer.alloc(1024 * 1024, 'a');
  const pieces = Math.ceil(MAX_WATCH_LINE / piece.length) + 1; // 17 MiB
  let written = 0;
  const srv = await serve(t, async (_req, res) => {
    watchOpen(res);
    res.write('{"type":"ADDED","object":{"data":"');
    for (let i = 0; i < pieces && !res.destroyed; i++) {
      written += piece.length;
      if (!res.write(piece)) await drainOrClose(res);
    }
    if (!res.destroyed) res.end('"}}\n');
  });
  const kube = client(t, staticAccess({ server: srv.url }));
  await t.throwsAsync(
    kube.watch('/api/v1/configmaps', {}, () => t.fail('no event expected'), { signal: new AbortController().signal, idleTimeoutMs: 10_000 }),
    {
      message: `watch /api/v1/configmaps: an event exceeds ${MAX_WATCH_LINE} characters`,
    },
  );
  t.true(written > MAX_WATCH_LINE, 'the server had to send more than the limit before the client gave up');
});

// ---- close ----

test('close() ends the pool: the server sees the kept-alive connection closed and an in-flight watch fails', async (t) => {
  const srv = await serve(t, (req, res) => {
    if (req.url?.includes('watch=true')) watchOpen(res);
    else json(res, 200, {});
  });
  const kube = new KubeClient(staticAccess({ server: srv.url }));
  await kube.get('/api');
  t.is(srv.sockets.size, 1, 'the connection is kept alive after the request');
  const watching = kube.watch('/api/v1/pods', {}, () => undefined, { signal: new AbortController().signal, idleTimeoutMs: 60_000 });
  const outcome = watching.then(
    (result) => `resolved ${result}`,
    (err: unknown) => err,
  );
  while (srv.seen.length < 2) await sleep(10);
  // A reset may surface as an 'error' before 'close'; only the close matters here.
  const closed = [...srv.sockets].map((s) => new Promise((resolve) => s.once('close', resolve)));
  await kube.close();
  await Promise.all(closed);
  t.is(srv.sockets.size, 0);
  t.true((await outcome) instanceof Error, 'the in-flight watch fails');
});

test('watch: a last event without its newline is still delivered when the server ends the stream', async (t) => {
  const srv = await serve(t, (_req, res) => {
    watchOpen(res);
    res.write(`${JSON.stringify({ type: 'ADDED', object: { n: 1 } })}\n${JSON.stringify({ type: 'DELETED', object: { n: 2 } }).slice(0, 10)}`);
    res.end(JSON.stringify({ type: 'DELETED', object: { n: 2 } }).slice(10));
  });
  const got: Event[] = [];
  const kube = client(t, staticAccess({ server: srv.url }));
  t.is(await kube.watch('/api/v1/pods', {}, (type, object) => got.push({ type, object }), { signal: new AbortController().signal }), 'ended');
  t.deepEqual(got, [
    { type: 'ADDED', object: { n: 1 } },
    { type: 'DELETED', object: { n: 2 } },
  ]);
});

test('timeoutMs bounds a call to a server that never answers, also with an already spent deadline (0)', async (t) => {
  const srv = await serve(t, () => undefined); // accepts the request, never answers
  const kube = client(t, staticAccess({ server: srv.url }));
  for (const timeoutMs of [200, 0]) {
    const started = Date.now();
    const err = await t.throwsAsync(kube.get('/api', { timeoutMs }));
    t.regex(String((err as { code?: string }).code ?? err!.name), /TIMEOUT/i);
    t.true(Date.now() - started < 5_000, `timeoutMs ${timeoutMs} took ${Date.now() - started} ms`);
  }
});

test('after close() a request rejects without opening a connection', async (t) => {
  const srv = await serve(t, (_req, res) => json(res, 200, {}));
  const kube = new KubeClient(staticAccess({ server: srv.url }));
  await kube.close();
  const err = await t.throwsAsync(kube.get('/api'));
  t.regex(err!.message, /closed/);
  t.is(srv.seen.length, 0);
});

// ---- apiPath ----

test('apiPath builds core, named-group, namespaced, cluster-scoped and subresource paths, URL-encoding namespace and name', (t) => {
  t.is(apiPath('v1', 'namespaces'), '/api/v1/namespaces');
  t.is(apiPath('v1', 'secrets', 'kube-system'), '/api/v1/namespaces/kube-system/secrets');
  t.is(apiPath('v1', 'secrets', 'kube-system', 'tunnel-token'), '/api/v1/namespaces/kube-system/secrets/tunnel-token');
  t.is(apiPath('networking.k8s.io/v1', 'ingressclasses', undefined, 'cloudflare-tunnel'), '/apis/networking.k8s.io/v1/ingressclasses/cloudflare-tunnel');
  t.is(apiPath('networking.k8s.io/v1', 'ingresses', 'ns', 'web', 'status'), '/apis/networking.k8s.io/v1/namespaces/ns/ingresses/web/status');
  t.is(apiPath('coordination.k8s.io/v1', 'leases', 'warren'), '/apis/coordination.k8s.io/v1/namespaces/warren/leases');
  t.is(apiPath('v1', 'configmaps', 'a b', 'x/y?z#w'), '/api/v1/namespaces/a%20b/configmaps/x%2Fy%3Fz%23w');
  t.is(apiPath('v1', 'pods', '', ''), '/api/v1/pods', 'empty namespace and name mean a cluster-wide collection');
});
