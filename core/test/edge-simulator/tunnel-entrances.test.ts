/**
 * The simulator's entrance per tunnel (option `tunnelEntrances`): each tunnel that registers gets its own host, and
 * what enters there reaches only that tunnel's connections — over HTTP/1.1, h2c, HTTPS and the direct request —
 * even when it has none left while another tunnel has.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { startEdgeSimulator, tunnelHostname, type EdgeSimulator, type TunnelEntrance } from '../../src/edge-simulator/index.js';
import { fakeConnector } from './support/fake-connector.js';

const ACCOUNT = randomBytes(16).toString('hex');
const HOSTS = ['127.0.0.2', '127.0.0.3'];

interface Tunnel {
  readonly id: string;
  readonly secret: Buffer;
}

const newTunnel = (): Tunnel => ({ id: randomUUID(), secret: randomBytes(32) });

/** A simulator that accepts exactly `tunnels` and opens entrances on HOSTS (free ports, HTTPS with its own certificates). */
async function simulator(t: ExecutionContext, tunnels: readonly Tunnel[], seen: TunnelEntrance[] = []): Promise<EdgeSimulator> {
  const sim = await startEdgeSimulator({
    authorize: (c) => c.accountTag === ACCOUNT && tunnels.some((x) => x.id === c.tunnelId && x.secret.equals(c.tunnelSecret)),
    eyeballWaitMs: 300,
    tunnelEntrances: { hosts: HOSTS, port: 0, tls: { port: 0 } },
  });
  sim.on('entrance', (e: TunnelEntrance) => seen.push(e));
  t.teardown(() => sim.close());
  return sim;
}

/** Registers a connector of `tunnel` whose every answer names the tunnel, with `connIndex`. */
async function connect(t: ExecutionContext, sim: EdgeSimulator, tunnel: Tunnel, name: string, connIndex: number): Promise<void> {
  const result = await fakeConnector(t, sim, {
    accountTag: ACCOUNT,
    tunnelId: tunnel.id,
    secret: tunnel.secret,
    connIndex,
    onStream: (stream, headers) => {
      stream.respond({ ':status': 200, 'cf-cloudflared-response-headers': '', 'cf-cloudflared-response-meta': '{"src":"origin"}' });
      stream.end(`${name} ${headers['x-forwarded-proto'] ?? 'direct'}`);
    },
  });
  t.true(result.ok, `${name} registers`);
}

const read = (stream: Readable) =>
  new Promise<string>((resolve, reject) => {
    let text = '';
    stream.on('data', (c) => (text += c));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });

/** GET / through an entrance over HTTP/1.1: status and body. */
const http1 = (url: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) =>
    httpRequest(`${url}/`, { agent: false, headers: { host: 'app.example.com' } }, (res) => read(res).then((body) => resolve({ status: res.statusCode ?? 0, body }), reject))
      .on('error', reject)
      .end(),
  );

test('each tunnel gets its own entrance, and an entrance delivers only to its own tunnel', async (t) => {
  const [a, b] = [newTunnel(), newTunnel()];
  const opened: TunnelEntrance[] = [];
  const sim = await simulator(t, [a, b], opened);
  await connect(t, sim, a, 'A', 0);
  await connect(t, sim, a, 'A', 1);
  await connect(t, sim, b, 'B', 2);
  const [entranceA, entranceB] = [await sim.waitForEntrance(a.id), await sim.waitForEntrance(b.id)];
  t.deepEqual(
    opened.map((e) => e.tunnelId),
    [a.id, b.id],
    'one entrance event per tunnel, in registration order (a second connection opens none)',
  );
  t.deepEqual([entranceA.host, entranceB.host], HOSTS, 'the pool is used in order');
  t.is(sim.entranceOf(a.id), entranceA);

  // Several rounds, so round robin over the three connections would have crossed over.
  for (let i = 0; i < 6; i++) {
    t.deepEqual(await http1(entranceA.url), { status: 200, body: 'A http' });
    t.deepEqual(await http1(entranceB.url), { status: 200, body: 'B http' });
  }
  const h2c = h2connect(entranceB.url);
  t.teardown(() => h2c.close());
  for (let i = 0; i < 3; i++) t.is(await read(h2c.request({ ':path': '/', ':authority': 'app.example.com' })), 'B http');
  // HTTPS with the entrance's own certificate, for the tunnel hostname.
  const https = (entrance: TunnelEntrance) =>
    new Promise<string>((resolve, reject) =>
      httpsRequest(`${entrance.tlsUrl}/`, { agent: false, ca: sim.caPem, servername: tunnelHostname(entrance.tunnelId) }, (res) => read(res).then(resolve, reject))
        .on('error', reject)
        .end(),
    );
  t.is(await https(entranceA), 'A https');
  t.is(await https(entranceB), 'B https');
  // The direct request names the tunnel too.
  for (let i = 0; i < 3; i++) t.is((await sim.request({ tunnelId: b.id })).body.toString(), 'B direct');

  // Tunnel B loses its only connection: its entrance answers 1033 instead of borrowing tunnel A's.
  t.is(sim.faults.dropConnection(2), 1);
  await sim.waitFor(() => sim.registeredConnections(b.id).length === 0, 5_000, 'tunnel B without connections');
  const orphan = await http1(entranceB.url);
  t.is(orphan.status, 530);
  t.regex(orphan.body, /1033/);
  await t.throwsAsync(sim.request({ tunnelId: b.id }), { message: new RegExp(`no registered connection of tunnel ${b.id}`) });
  t.deepEqual(await http1(entranceA.url), { status: 200, body: 'A http' });
});

test('a tunnel that registers when every entrance host is taken gets none, and says why', async (t) => {
  const tunnels = [newTunnel(), newTunnel(), newTunnel()];
  const sim = await simulator(t, tunnels);
  for (const [i, tunnel] of tunnels.entries()) {
    await connect(t, sim, tunnel, `T${i}`, i);
    if (i < HOSTS.length) await sim.waitForEntrance(tunnel.id);
  }
  await sim.waitFor(() => sim.entranceFailures.length > 0, 5_000, 'the refusal of a third entrance');
  t.is(sim.entranceOf(tunnels[2]!.id), undefined);
  t.deepEqual(sim.entranceFailures, [`tunnel ${tunnels[2]!.id} gets no entrance: all 2 entrance hosts are taken`]);
  t.is(sim.entrances.length, 2);
  // The tunnel is still served by the direct request.
  t.is((await sim.request({ tunnelId: tunnels[2]!.id })).body.toString(), 'T2 direct');
});

test('an entrance’s extra plain ports reach the same tunnel, with the Host and its port as the client sent them', async (t) => {
  const [a, b] = [newTunnel(), newTunnel()];
  const sim = await startEdgeSimulator({
    authorize: (c) => c.accountTag === ACCOUNT && [a, b].some((x) => x.id === c.tunnelId && x.secret.equals(c.tunnelSecret)),
    eyeballWaitMs: 300,
    tunnelEntrances: { hosts: HOSTS, port: 0, extraPorts: [0], tls: false },
  });
  t.teardown(() => sim.close());
  for (const [i, [tunnel, name]] of (
    [
      [a, 'A'],
      [b, 'B'],
    ] as const
  ).entries()) {
    const result = await fakeConnector(t, sim, {
      accountTag: ACCOUNT,
      tunnelId: tunnel.id,
      secret: tunnel.secret,
      connIndex: i,
      onStream: (stream, headers) => {
        stream.respond({ ':status': 200, 'cf-cloudflared-response-headers': '', 'cf-cloudflared-response-meta': '{"src":"origin"}' });
        stream.end(`${name} ${headers[':authority']} ${headers['x-forwarded-proto']}`);
      },
    });
    t.true(result.ok);
  }
  const [entranceA, entranceB] = [await sim.waitForEntrance(a.id), await sim.waitForEntrance(b.id)];
  t.is(entranceA.extraUrls.length, 1);
  t.not(entranceA.extraUrls[0], entranceA.url);
  const get = (url: string, host: string) =>
    new Promise<string>((resolve, reject) =>
      httpRequest(`${url}/`, { agent: false, headers: { host } }, (res) => read(res).then(resolve, reject))
        .on('error', reject)
        .end(),
    );
  t.is(await get(entranceA.extraUrls[0]!, 'app.example.com:8080'), 'A app.example.com:8080 http');
  t.is(await get(entranceB.extraUrls[0]!, 'app.example.com:8080'), 'B app.example.com:8080 http');
  t.is(await get(entranceA.url, 'app.example.com'), 'A app.example.com http');
});
