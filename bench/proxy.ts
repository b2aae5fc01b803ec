/**
 * Proxy pipeline benchmark: the same closed-loop load straight to an origin and through Warren's pipeline,
 * per upstream protocol, plus the client-library comparisons behind the transport choices.
 *
 *   npx tsc -b bench && npx node bench/build/proxy.js [--seconds 3] [--concurrency 16]
 *
 * Three processes: this driver (load generators), an origin process (HTTP/1.1, HTTPS, h2c, gRPC, WebSocket
 * and SSE servers plus the edge simulator) and a proxy process (pipeline with every built-in plugin behind the
 * plain-HTTP entry, and the tunnel connector registered with the simulator). "CPU/req" is the proxy process's
 * CPU time (/proc) divided by the requests of the run. Every run is bounded in time and count.
 *
 * `--promoted` also records the proxy process's garbage collections over each pipeline run (`v8.GCProfiler`) and
 * notes the bytes per request its scavenges promoted to the old generation, with the scavenges and mark-compacts
 * of the run: what a finished request leaves for the mark-compacts to pay for.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import v8 from 'node:v8';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';
import { gcWindow, type GcWindow } from './lib/gc-window.js';
import { cpuTimeMs } from './lib/proc-stats.js';
import type * as Simulator from '../core/src/edge-simulator/index.js';
import type * as Tunnel from '../core/src/tunnel/index.js';
import type * as Schema from '../core/src/config/schema.js';
import type * as H2 from '../core/src/proxy/h2-pool.js';

/** Core modules that `@warren/core` does not export, loaded from core's build output. */
const fromCore = <T>(path: string): Promise<T> => import(new URL(`../../core/build/src/${path}`, import.meta.url).href) as Promise<T>;

const self = fileURLToPath(import.meta.url);
const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'driver' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    /** Write a V8 CPU profile of the proxy process into this folder. */
    'profile-proxy': { type: 'string' },
    /** Run only the cases whose name contains this text. */
    only: { type: 'string' },
    /** Note the bytes per request the proxy process promotes to the old generation in each pipeline run. */
    promoted: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds);
const CONCURRENCY = Number(args.concurrency);
const MAX_OPS = 2_000_000;
const BODY = Buffer.alloc(1024, 'w');

interface OriginInfo {
  http: number;
  https: number;
  h2c: number;
  grpc: number;
  ws: number;
  caPem: string;
  sim: { edge: string; caFile: string; token: string; eyeball: string };
}

interface ProxyInfo {
  url: string;
}

// ---------------------------------------------------------------------------------------------------- origin

const grpcJson = {
  requestSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  requestDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
  responseSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  responseDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};

async function grpcService() {
  const grpc = await import('@grpc/grpc-js');
  const service = { unary: { path: '/bench.Echo/Unary', requestStream: false, responseStream: false, ...grpcJson } };
  return { grpc, service, Client: grpc.makeGenericClientConstructor(service, 'Echo') };
}

async function runOrigin(): Promise<void> {
  const { createTestCa, issueCert } = await import('@warren/core/testing');
  const { startEdgeSimulator } = await fromCore<typeof Simulator>('edge-simulator/index.js');
  const { WebSocketServer } = await import('ws');
  const listen = async (server: http.Server | https.Server | http2.Http2Server): Promise<number> => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };
  const handler: http.RequestListener = (req, res) => {
    if (req.url?.startsWith('/events')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`data: ${performance.timeOrigin + performance.now()}\n\n`);
        if (++n === 400) {
          clearInterval(timer);
          res.end();
        }
      }, 5);
      res.on('close', () => clearInterval(timer));
      return;
    }
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length }).end(BODY));
  };
  const ca = createTestCa('bench CA');
  const cert = issueCert(ca, { dns: ['origin.bench'] });
  const h1 = http.createServer({ keepAliveTimeout: 60_000 }, handler);
  const tls = https.createServer({ cert: cert.certPem, key: cert.keyPem, keepAliveTimeout: 60_000 }, handler);
  const h2c = http2.createServer();
  h2c.on('stream', (stream) => {
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': BODY.length });
      stream.end(BODY);
    });
  });
  const wsServer = http.createServer();
  const wss = new WebSocketServer({ server: wsServer });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  const { grpc, service } = await grpcService();
  const grpcServer = new grpc.Server();
  grpcServer.addService(service, {
    unary: (call: { request: unknown }, callback: (e: null, v: unknown) => void) => callback(null, call.request),
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  const sim = await startEdgeSimulator({ eyeballWaitMs: 10_000 });
  const connections = { http: 0, https: 0, h2c: 0 };
  h1.on('connection', () => connections.http++);
  tls.on('secureConnection', () => connections.https++);
  h2c.on('session', () => connections.h2c++);
  process.on('message', (m) => {
    if (m === 'connections') process.send!({ connections });
  });
  const info: OriginInfo = {
    http: await listen(h1),
    https: await listen(tls),
    h2c: await listen(h2c),
    grpc: grpcPort,
    ws: await listen(wsServer),
    caPem: ca.certPem,
    sim: { edge: sim.edgeAddress, caFile: sim.caFile, token: sim.token, eyeball: sim.eyeballUrl },
  };
  process.send!(info);
}

// ----------------------------------------------------------------------------------------------------- proxy

async function runProxy(origin: OriginInfo): Promise<void> {
  const core = await import('@warren/core');
  const { TunnelConnector } = await fromCore<typeof Tunnel>('tunnel/index.js');
  const { tunnelSchema } = await fromCore<typeof Schema>('config/schema.js');
  const testing = await import('@warren/core/testing');
  const { pino } = await import('pino');
  const { testRoute, testRouteTable, MemorySecrets, startProxyHarness } = testing;
  const secrets = new MemorySecrets();
  secrets.set('default', 'bench-ca', { 'ca.crt': origin.caPem });
  const at = (port: number) => [`127.0.0.1:${port}`];
  const table = testRouteTable([
    testRoute({ host: 'h1.bench', endpoints: at(origin.http) }),
    testRoute({ host: 'tls.bench', endpoints: at(origin.https), protocol: 'https', annotations: { 'proxy-ssl-secret': 'bench-ca', 'proxy-ssl-name': 'origin.bench' } }),
    testRoute({ host: 'h2c.bench', endpoints: at(origin.h2c), protocol: 'h2c' }),
    testRoute({ host: `127.0.0.1`, endpoints: at(origin.grpc), protocol: 'grpc' }),
    testRoute({ host: 'ws.bench', endpoints: at(origin.ws) }),
  ]);
  const loaded = await core.resolvePlugins(core.parseConfig({}));
  const proxy = await startProxyHarness({ loadedPlugins: loaded, secrets, table, settings: { proxy: { accessLog: { enabled: false } } } });
  const connector = new TunnelConnector({
    config: { tunnel: tunnelSchema.parse({ edgeAddresses: [origin.sim.edge], edgeCaFile: origin.sim.caFile, haConnections: 1 }), shutdownGracePeriod: 1000 },
    handler: proxy.pipeline,
    logger: pino({ level: 'silent' }),
    env: { TUNNEL_TOKEN: origin.sim.token },
    registrationIntervalMs: 20,
  });
  void connector.start(new AbortController().signal);
  while (connector.registeredConnections < 1) await new Promise((r) => setTimeout(r, 20));
  let gc: v8.GCProfiler | undefined;
  process.on('message', (m) => {
    if (m === 'gc-start') {
      gc = new v8.GCProfiler();
      gc.start();
      process.send!('gc-started');
    } else if (m === 'gc-stop') {
      process.send!({ gc: gcWindow(gc?.stop()) });
      gc = undefined;
    }
  });
  const info: ProxyInfo = { url: proxy.url };
  process.send!(info);
}

// ---------------------------------------------------------------------------------------------------- driver

interface Run {
  ops: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  cpuPerOpUs: number | undefined;
  gc?: GcWindow;
}

function pct(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The proxy process when `--promoted` asks for its garbage collections over each pipeline run. */
let gcOf: ChildProcess | undefined;

/** `concurrency` workers run `op` back to back for SECONDS (at most MAX_OPS in total). */
async function closedLoop(op: () => Promise<void>, measurePid?: number, concurrency = CONCURRENCY): Promise<Run> {
  const lat = new Float64Array(MAX_OPS);
  let n = 0;
  let errors = 0;
  const gcChild = measurePid === undefined ? undefined : gcOf;
  if (gcChild) {
    gcChild.send('gc-start');
    await once(gcChild, 'message');
  }
  const cpu0 = measurePid ? cpuTimeMs(measurePid) : 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (n < MAX_OPS && performance.now() < end) {
        const t0 = performance.now();
        try {
          await op();
        } catch {
          errors++;
        }
        lat[n++] = performance.now() - t0;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu = measurePid ? cpuTimeMs(measurePid) - cpu0 : undefined;
  let gc: GcWindow | undefined;
  if (gcChild) {
    gcChild.send('gc-stop');
    gc = ((await once(gcChild, 'message')) as [{ gc: GcWindow }])[0].gc;
  }
  const sorted = lat.subarray(0, n).sort();
  return { ops: n, errors, seconds, p50: pct(sorted, 50), p99: pct(sorted, 99), cpuPerOpUs: cpu === undefined ? undefined : (cpu * 1000) / n, gc };
}

async function undiciGet(pool: Dispatcher, host: string): Promise<void> {
  const res = await pool.request({ path: '/', method: 'GET', headers: { host } });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
}

const rows: string[] = [];
const notes: string[] = [];
function row(name: string, via: string, r: Run, unit = 'req/s', direct?: Run): void {
  const added = direct ? `${(r.p50 - direct.p50).toFixed(2)} / ${(r.p99 - direct.p99).toFixed(2)}` : '';
  rows.push(
    `| ${name} | ${via} | ${Math.round(r.ops / r.seconds).toLocaleString('en')} ${unit} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${added} | ${
      r.cpuPerOpUs === undefined ? '' : r.cpuPerOpUs.toFixed(0)
    } | ${r.errors} |`,
  );
  process.stderr.write(`${rows[rows.length - 1]}\n`);
  if (r.gc) {
    const { promoted, scavenges, markCompacts } = r.gc;
    notes.push(
      `${name}, ${via}: ${Math.round(promoted / r.ops).toLocaleString('en')} bytes promoted per request (${scavenges} scavenges, ${markCompacts} mark-compacts in ${r.ops.toLocaleString('en')} requests).`,
    );
    process.stderr.write(`${notes[notes.length - 1]}\n`);
  }
}

function forkRole(role: string): ChildProcess {
  const profile = role === 'proxy' && args['profile-proxy'] ? ['--cpu-prof', `--cpu-prof-dir=${args['profile-proxy']}`] : [];
  return fork(self, ['--role', role], { execArgv: ['--import=reflect-metadata', ...profile], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Whether a case runs (`--only`). */
const wanted = (name: string): boolean => !args.only || name.toLowerCase().includes(args.only.toLowerCase());

async function runDriver(): Promise<void> {
  const originChild = forkRole('origin');
  const [origin] = (await once(originChild, 'message')) as [OriginInfo];
  /** Connections the origin accepted so far, per server. */
  const originConnections = async (): Promise<Record<string, number>> => {
    originChild.send('connections');
    const [reply] = (await once(originChild, 'message')) as [{ connections: Record<string, number> }];
    return reply.connections;
  };
  const proxyChild = forkRole('proxy');
  proxyChild.send(origin);
  const [proxyInfo] = (await once(proxyChild, 'message')) as [ProxyInfo];
  const proxyPid = proxyChild.pid!;
  if (args.promoted) gcOf = proxyChild;
  const proxyUrl = proxyInfo.url;
  try {
    const direct = (port: number, scheme = 'http') => `${scheme}://127.0.0.1:${port}`;
    const pool = (url: string, options: Pool.Options = {}) => new Pool(url, { connections: CONCURRENCY, keepAliveTimeout: 60_000, ...options });
    /** A run measuring this (driver) process's CPU per operation: the cost of a client library. */
    const cpuOf = async (op: () => Promise<void>): Promise<Run> => {
      const c0 = process.cpuUsage();
      const r = await closedLoop(op);
      const c = process.cpuUsage(c0);
      return { ...r, cpuPerOpUs: (c.user + c.system) / r.ops };
    };

    // HTTP/1.1 keep-alive
    const h1Direct = pool(direct(origin.http));
    const h1Proxy = pool(proxyUrl);
    const closing: Dispatcher[] = [h1Direct, h1Proxy];
    if (wanted('HTTP/1.1 keep-alive')) {
      const d1 = await closedLoop(() => undiciGet(h1Direct, 'h1.bench'));
      row('HTTP/1.1 keep-alive, 1 KiB', 'direct', d1);
      row('HTTP/1.1 keep-alive, 1 KiB', 'pipeline', await closedLoop(() => undiciGet(h1Proxy, 'h1.bench'), proxyPid), 'req/s', d1);
      const tunnelPool = pool(origin.sim.eyeball);
      closing.push(tunnelPool);
      row('HTTP/1.1 keep-alive, 1 KiB', 'simulator → connector → pipeline', await closedLoop(() => undiciGet(tunnelPool, 'h1.bench'), proxyPid), 'req/s', d1);
    }

    // HTTPS upstream (verified)
    if (wanted('HTTPS upstream')) {
      const tlsDirect = pool(direct(origin.https, 'https'), { connect: { ca: origin.caPem, servername: 'origin.bench' } });
      closing.push(tlsDirect);
      const dt = await closedLoop(() => undiciGet(tlsDirect, 'origin.bench'));
      row('HTTPS upstream, 1 KiB', 'direct', dt);
      const before = (await originConnections()).https!;
      row('HTTPS upstream, 1 KiB', 'pipeline', await closedLoop(() => undiciGet(h1Proxy, 'tls.bench'), proxyPid), 'req/s', dt);
      notes.push(`HTTPS pipeline run: ${(await originConnections()).https! - before} upstream TLS connections opened.`);
    }

    // h2c upstream: undici (what the pipeline uses) and node:http2 straight to the origin, then the pipeline
    if (wanted('h2c upstream')) {
      const h2Undici = new Pool(direct(origin.h2c), { connections: 1, allowH2: true, useH2c: true, pipelining: 100, maxConcurrentStreams: 100 } as Pool.Options);
      closing.push(h2Undici);
      const dh = await cpuOf(() => undiciGet(h2Undici, 'h2c.bench'));
      row('h2c upstream, 1 KiB', 'direct (undici H2C pool; CPU: driver)', dh);
      const session = http2.connect(direct(origin.h2c));
      const dn = await cpuOf(
        () =>
          new Promise<void>((resolve, reject) => {
            const s = session.request({ ':path': '/', ':method': 'GET' });
            s.on('error', reject);
            s.resume();
            s.on('end', () => resolve());
          }),
      );
      session.close();
      row('h2c upstream, 1 KiB', 'direct (node:http2 session; CPU: driver)', dn);
      const { H2cPool } = await fromCore<typeof H2>('proxy/h2-pool.js');
      const warrenH2 = new H2cPool(direct(origin.h2c), { scheme: 'http:', http2: 'prior-knowledge', connectTimeout: 5_000, maxConcurrentStreams: 100 });
      const dw = await cpuOf(
        () =>
          new Promise<void>((resolve, reject) => {
            warrenH2.dispatch({ path: '/', method: 'GET', headers: ['host', 'h2c.bench'] } as Dispatcher.DispatchOptions, {
              onResponseError: (_c, err) => reject(err),
              onResponseEnd: () => resolve(),
            });
          }),
      );
      await warrenH2.close();
      row('h2c upstream, 1 KiB', "direct (core's H2cPool over node:http2; CPU: driver)", dw);
      row('h2c upstream, 1 KiB', 'pipeline', await closedLoop(() => undiciGet(h1Proxy, 'h2c.bench'), proxyPid), 'req/s', dh);
    }

    // gRPC unary (grpc-js client; h2c to the pipeline's entry)
    if (wanted('gRPC unary')) {
      const { grpc, Client } = await grpcService();
      const call = (client: InstanceType<typeof Client>) => () =>
        new Promise<void>((resolve, reject) =>
          (client as unknown as { unary: (m: unknown, cb: (e: Error | null) => void) => void }).unary({ hello: 'bench' }, (e) => (e ? reject(e) : resolve())),
        );
      const gDirect = new Client(`127.0.0.1:${origin.grpc}`, grpc.credentials.createInsecure());
      const gProxy = new Client(new URL(proxyUrl).host, grpc.credentials.createInsecure(), { 'grpc.default_authority': '127.0.0.1' });
      const dg = await closedLoop(call(gDirect));
      row('gRPC unary', 'direct', dg, 'calls/s');
      row('gRPC unary', 'pipeline', await closedLoop(call(gProxy), proxyPid), 'calls/s', dg);
      gDirect.close();
      gProxy.close();
    }

    // WebSocket: round trips of 64-byte messages over CONCURRENCY sessions
    if (wanted('WebSocket')) {
      const { WebSocket } = await import('ws');
      const wsLoop = async (url: string, host: string, pid?: number) => {
        const sockets = await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            const ws = new WebSocket(url, { headers: { host } });
            await once(ws, 'open');
            return ws;
          }),
        );
        let next = 0;
        const payload = Buffer.alloc(64, 1);
        const result = await closedLoop(
          () => {
            const ws = sockets[next++ % sockets.length]!;
            return new Promise<void>((resolve) => {
              ws.once('message', () => resolve());
              ws.send(payload);
            });
          },
          pid,
          CONCURRENCY,
        );
        for (const ws of sockets) ws.terminate();
        return result;
      };
      const dw = await wsLoop(`ws://127.0.0.1:${origin.ws}/`, 'ws.bench');
      row('WebSocket echo, 64 B', 'direct', dw, 'msg/s');
      row('WebSocket echo, 64 B', 'pipeline', await wsLoop(`${proxyUrl.replace('http', 'ws')}/`, 'ws.bench', proxyPid), 'msg/s', dw);
    }

    // SSE: one stream, an event every 5 ms; latency from the origin's write to the client's read
    if (wanted('SSE')) {
      const sse = async (url: string, host: string): Promise<Run> => {
        const lat: number[] = [];
        await new Promise<void>((resolve, reject) => {
          http
            .get(`${url}/events`, { headers: { host } }, (res) => {
              let buffered = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => {
                const now = performance.timeOrigin + performance.now();
                buffered += chunk;
                let i: number;
                while ((i = buffered.indexOf('\n\n')) !== -1) {
                  lat.push(now - Number(buffered.slice(6, i)));
                  buffered = buffered.slice(i + 2);
                }
              });
              res.on('end', () => resolve());
            })
            .on('error', reject);
        });
        const sorted = Float64Array.from(lat).sort();
        return { ops: lat.length, errors: 0, seconds: 2, p50: pct(sorted, 50), p99: pct(sorted, 99), cpuPerOpUs: undefined };
      };
      const ds = await sse(direct(origin.http), 'h1.bench');
      row('SSE event latency', 'direct', ds, 'events/s');
      row('SSE event latency', 'pipeline', await sse(proxyUrl, 'h1.bench'), 'events/s', ds);
    }

    // Client library for HTTP/1.1 upstreams: undici Pool versus node:http Agent, CPU of this process
    if (wanted('client library')) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      row('client library, HTTP/1.1', 'undici Pool (driver CPU)', await cpuOf(() => undiciGet(h1Direct, 'h1.bench')));
      row(
        'client library, HTTP/1.1',
        'node:http Agent (driver CPU)',
        await cpuOf(
          () =>
            new Promise<void>((resolve, reject) => {
              http
                .get(direct(origin.http), { agent }, (res) => {
                  res.resume();
                  res.on('end', () => resolve());
                })
                .on('error', reject);
            }),
        ),
      );
      agent.destroy();
    }

    await Promise.all(closing.map((d) => d.close()));
  } finally {
    proxyChild.kill('SIGINT');
    originChild.kill();
  }
  process.stdout.write(
    [
      `Proxy pipeline benchmark: ${SECONDS}s per run, ${CONCURRENCY} concurrent clients, Node ${process.versions.node}`,
      '',
      '| case | path | throughput | p50 ms | p99 ms | added p50 / p99 ms | proxy CPU µs/op | errors |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      ...rows,
      '',
      ...notes,
      '',
    ].join('\n'),
  );
}

if (args.role === 'origin') await runOrigin();
else if (args.role === 'proxy') {
  const [origin] = (await once(process, 'message')) as [OriginInfo];
  process.on('SIGINT', () => process.exit(0));
  await runProxy(origin);
} else await runDriver();
