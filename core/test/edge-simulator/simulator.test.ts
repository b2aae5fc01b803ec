import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createNetServer } from 'node:net';
import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { createTestCa, issueCert } from '../../src/edge-simulator/certs.js';
import { startEdgeSimulator, type EdgeSimulator, type EdgeSimulatorOptions } from '../../src/edge-simulator/index.js';
import { fakeConnector } from './support/fake-connector.js';

async function simulator(t: ExecutionContext, options: EdgeSimulatorOptions = {}): Promise<EdgeSimulator> {
  const sim = await startEdgeSimulator(options);
  t.teardown(() => sim.close());
  return sim;
}

test('the simulator registers any correct connector and refuses wrong credentials as Unauthorized', async (t) => {
  const sim = await simulator(t, { locationName: 'LIS' });
  const ok = await fakeConnector(t, sim);
  t.true(ok.ok);
  if (ok.ok) {
    t.is(ok.details.locationName, 'LIS');
    t.is(ok.details.uuid.length, 16);
    t.false(ok.details.tunnelIsRemotelyManaged);
  }
  for (const wrong of [{ secret: randomBytes(32) }, { tunnelId: '99999999-8888-7777-6666-555555555555' }, { accountTag: 'other' }]) {
    const refused = await fakeConnector(t, sim, wrong);
    t.false(refused.ok, JSON.stringify(Object.keys(wrong)));
    if (!refused.ok) {
      t.regex(refused.error.cause, /^Unauthorized/);
      t.false(refused.error.shouldRetry);
    }
  }
  t.is(sim.registeredConnections().length, 1);
});

test('a second registration of the same connector slot on one edge server is EDUPCONN; another server accepts it', async (t) => {
  const sim = await simulator(t, { edgeListeners: 2 });
  const clientId = randomBytes(16);
  t.true((await fakeConnector(t, sim, { clientId, connIndex: 3 })).ok);
  const dup = await fakeConnector(t, sim, { clientId, connIndex: 3 });
  t.deepEqual(dup.ok ? undefined : dup.error.cause, 'EDUPCONN');
  t.true((await fakeConnector(t, sim, { clientId, connIndex: 4 })).ok, 'another slot is not a duplicate');
  t.true((await fakeConnector(t, sim, { clientId, connIndex: 3, listener: 1 })).ok, 'another edge server is not a duplicate');
});

test('refusal and RPC faults are applied to the next registrations', async (t) => {
  const sim = await simulator(t);
  sim.faults.refuseRegistration = { cause: 'try later', shouldRetry: true, retryAfterMs: 1500, times: 1 };
  const refused = await fakeConnector(t, sim);
  t.deepEqual(refused, { ok: false, error: { cause: 'try later', shouldRetry: true, retryAfterMs: 1500 } });
  t.true((await fakeConnector(t, sim)).ok, 'times: 1 refuses once');
  sim.faults.rpc = { exception: 'edge internal error' };
  await t.throwsAsync(fakeConnector(t, sim), { message: /edge internal error/ });
});

test('the eyeball entrance answers 530 while no connection is registered', async (t) => {
  const sim = await simulator(t, { eyeballWaitMs: 50 });
  const res = await fetch(`${sim.eyeballUrl}/`);
  t.is(res.status, 530);
  t.regex(await res.text(), /1033/);
});

test('origin headers reach HTTP/1.1 eyeballs decoded, with hop-by-hop headers removed', async (t) => {
  const sim = await simulator(t);
  const serialized = [
    ['X-Real', 'one'],
    ['Keep-Alive', 'timeout=99'],
    ['Proxy-Connection', 'close'],
    ['Transfer-Encoding', 'chunked'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
  ]
    .map(([n, v]) => `${Buffer.from(n!).toString('base64').replace(/=+$/, '')}:${Buffer.from(v!).toString('base64').replace(/=+$/, '')}`)
    .join(';');
  await fakeConnector(t, sim, {
    onStream: (stream, headers) => {
      stream.respond({ ':status': 207, 'cf-cloudflared-response-headers': serialized, 'cf-cloudflared-response-meta': '{"src":"origin"}' });
      stream.end(`seen ${headers['cf-connecting-ip']} ${headers['x-forwarded-proto']} ${headers[':authority']}`);
    },
  });
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
    httpRequest(`${sim.eyeballUrl}/x`, { headers: { host: 'app.example.com' } }, resolve)
      .on('error', reject)
      .end(),
  );
  const body = await new Promise<string>((resolve) => {
    let text = '';
    res.on('data', (c) => (text += c));
    res.on('end', () => resolve(text));
  });
  t.is(res.statusCode, 207);
  t.is(res.headers['x-real'], 'one');
  t.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
  t.not(res.headers['keep-alive'], 'timeout=99', "the origin's Keep-Alive is not forwarded (Node may add its own)");
  t.is(res.headers['proxy-connection'], undefined);
  t.is(body, 'seen 127.0.0.1 http app.example.com');
  t.deepEqual(sim.violations, []);
});

test('large bodies reach HTTP/1.1 eyeballs whole and in order, framed by content-length or chunked with trailers', async (t) => {
  const sim = await simulator(t);
  // 3 MiB + 7 bytes of a pattern no shifted or reordered piece repeats, written in uneven pieces.
  const body = Buffer.alloc(3 * 1024 * 1024 + 7);
  for (let i = 0; i + 4 <= body.length; i += 4) body.writeUInt32BE(i, i);
  await fakeConnector(t, sim, {
    onStream: (stream, headers) => {
      const chunked = headers[':path'] === '/chunked';
      stream.respond(
        {
          ':status': 200,
          'cf-cloudflared-response-headers': '',
          'cf-cloudflared-response-meta': '{"src":"origin"}',
          ...(chunked ? {} : { 'content-length': body.length }),
        },
        { waitForTrailers: chunked },
      );
      if (chunked) stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'done' }));
      let at = 0;
      const more = () => {
        while (at < body.length) {
          const piece = body.subarray(at, (at += 40_000 + (at % 7_000)));
          if (!stream.write(piece)) return void stream.once('drain', more);
        }
        stream.end();
      };
      more();
    },
  });
  for (const path of ['/length', '/chunked']) {
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
      httpRequest(`${sim.eyeballUrl}${path}`, { headers: { host: 'app.example.com' } }, resolve)
        .on('error', reject)
        .end(),
    );
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    await once(res, 'end');
    const got = Buffer.concat(chunks);
    t.is(got.length, body.length, path);
    t.true(got.equals(body), `${path}: the body arrives byte for byte`);
    if (path === '/chunked') {
      t.is(res.headers['transfer-encoding'], 'chunked');
      t.is(res.trailers['x-checksum'], 'done');
    } else t.is(res.headers['content-length'], String(body.length));
  }
  t.deepEqual(sim.violations, []);
});

test('malformed serialized headers and a missing meta are recorded as violations; the eyeball gets 502', async (t) => {
  const sim = await simulator(t);
  await fakeConnector(t, sim, {
    onStream: (stream, headers) => {
      if (headers[':path'] === '/bad') {
        stream.respond({ ':status': 200, 'cf-cloudflared-response-headers': 'bW9jawo=:ZGF0YQo=:bW9jawo=', 'cf-cloudflared-response-meta': '{"src":"origin"}' });
      } else {
        stream.respond({ ':status': 200, 'cf-cloudflared-response-headers': '' });
      }
      stream.end('x');
    },
  });
  const bad = await fetch(`${sim.eyeballUrl}/bad`);
  t.is(bad.status, 502);
  t.regex(await bad.text(), /deserialize/);
  const noMeta = await fetch(`${sim.eyeballUrl}/nometa`);
  t.is(noMeta.status, 200);
  t.is(sim.violations.length, 2);
  t.regex(sim.violations[0]!, /unable to deserialize/);
  t.regex(sim.violations[1]!, /without cf-cloudflared-response-meta/);
});

test.serial('a simulator that cannot listen on a port rejects and leaves none of its other listeners open', async (t) => {
  const taken = createNetServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as import('node:net').AddressInfo).port;
  const listeners = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
  };
  const before = await listeners();
  await t.throwsAsync(startEdgeSimulator({ edgeListeners: 2, eyeball: { host: '127.0.0.1', port } }), { code: 'EADDRINUSE' }, 'the plain eyeball port');
  t.is(await listeners(), before, 'the two edge listeners are closed again');
  await t.throwsAsync(
    startEdgeSimulator({ eyeball: { host: '127.0.0.1', port: 0, tls: { port, certificate: () => undefined } } }),
    { code: 'EADDRINUSE' },
    'the TLS eyeball port',
  );
  t.is(await listeners(), before, 'the edge listener and the plain eyeball are closed again');
});

test('the TLS eyeball presents the certificate the harness gives for each server name, and refuses unknown names', async (t) => {
  const ca = createTestCa('names');
  const certs = new Map([
    ['a.example', issueCert(ca, { dns: ['a.example'] })],
    ['b.example', issueCert(ca, { dns: ['*.b.example'] })],
  ]);
  const asked: Array<string | undefined> = [];
  const sim = await simulator(t, {
    eyeball: {
      tls: {
        certificate: async (name) => {
          asked.push(name);
          return name?.endsWith('b.example') ? certs.get('b.example') : name ? certs.get(name) : undefined;
        },
      },
    },
  });
  await fakeConnector(t, sim, {
    onStream: (stream, headers) => {
      stream.respond({ ':status': 200, 'cf-cloudflared-response-headers': '', 'cf-cloudflared-response-meta': '{"src":"origin"}' });
      stream.end(`${headers[':authority']} ${headers['x-forwarded-proto']}`);
    },
  });
  const port = Number(new URL(sim.eyeballTlsUrl!).port);
  const get = (servername: string) =>
    new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, servername, path: '/', headers: { host: servername }, ca: ca.certPem, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
  t.is(await get('a.example'), 'a.example https');
  t.is(await get('x.b.example'), 'x.b.example https');
  // A name the harness has no certificate for fails the handshake rather than getting some other name's.
  await t.throwsAsync(get('c.example'));
  t.true(asked.includes(undefined), 'the certificate for hellos without a name is asked for at start');
  t.deepEqual(asked.filter(Boolean).sort(), ['a.example', 'c.example', 'x.b.example']);
});

test('the eyeball entrance speaks h2c and, with tls, h2 and HTTP/1.1 over TLS', async (t) => {
  const sim = await simulator(t, { eyeball: { tls: true } });
  await fakeConnector(t, sim, {
    onStream: (stream, headers) => {
      stream.respond({ ':status': 200, 'cf-cloudflared-response-headers': '', 'cf-cloudflared-response-meta': '{"src":"origin"}' });
      stream.end(`${headers['x-forwarded-proto']}`);
    },
  });
  const read = (stream: import('node:stream').Readable) =>
    new Promise<string>((resolve, reject) => {
      let text = '';
      stream.on('data', (c) => (text += c));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
    });
  const h2c = h2connect(sim.eyeballUrl);
  t.teardown(() => h2c.close());
  t.is(await read(h2c.request({ ':path': '/' })), 'http');
  const h2s = h2connect(sim.eyeballTlsUrl!, { ca: sim.caPem });
  t.teardown(() => h2s.close());
  t.is(await read(h2s.request({ ':path': '/' })), 'https');
  const h1s = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
    httpsRequest(`${sim.eyeballTlsUrl}/`, { ca: sim.caPem }, resolve).on('error', reject).end(),
  );
  t.is(await read(h1s), 'https');
});

test('close() ends every connection and the listeners', async (t) => {
  const sim = await startEdgeSimulator();
  await fakeConnector(t, sim);
  await sim.close();
  t.true(sim.connections.every((c) => c.closed));
  await t.throwsAsync(fetch(`${sim.eyeballUrl}/`));
});

test('stream faults: a delay before each tunnel stream, and resets right after the response head', async (t) => {
  const sim = await simulator(t);
  let opened = 0;
  await fakeConnector(t, sim, {
    onStream: (stream) => {
      opened++;
      stream.respond({ ':status': 200, 'cf-cloudflared-response-headers': '', 'cf-cloudflared-response-meta': '{"src":"origin"}' });
      stream.end('body');
    },
  });
  sim.faults.streamDelayMs = 250;
  const started = Date.now();
  const delayed = await fetch(`${sim.eyeballUrl}/`);
  t.is(await delayed.text(), 'body');
  t.true(Date.now() - started >= 250, 'the stream waited for the configured delay');
  sim.faults.streamDelayMs = 0;
  sim.faults.resetStreamsAfterHead = true;
  const reset = await fetch(`${sim.eyeballUrl}/`);
  t.is(reset.status, 502);
  t.regex(await reset.text(), /reset by the edge/);
  t.is(opened, 2);
});
