// Demo origin for local mode: one small server per demo Service.
//
//   npx node examples/local/origin/server.js          # web on 127.0.0.1:3001, api on 127.0.0.1:3002
//   WEB_PORT=4001 API_PORT=4002 npx node examples/local/origin/server.js
//
// Every server answers
//   - any request: JSON describing it (service, method, path, query, headers, HTTP version, client address);
//   - GET /events: a server-sent event stream (`?count=N` events, default 5, every `?interval=MS`, default 1000);
//   - a WebSocket upgrade on /ws: echoes every message back.
// Importable too: `startDemoOrigin()` starts the servers and returns their ports and a `close()`.
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { WebSocketServer } from 'ws';

const MAX_EVENTS = 1000;
const MIN_INTERVAL_MS = 10;

/**
 * Starts one origin server per service.
 * @param {{ host?: string, services?: Array<{ name: string, port: number }> }} [options] port 0 picks a free port
 * @returns {Promise<{ servers: Array<{ name: string, port: number, url: string }>, close(): Promise<void> }>}
 */
export async function startDemoOrigin(options = {}) {
  const host = options.host ?? '127.0.0.1';
  const services = options.services ?? [
    { name: 'web', port: 3001 },
    { name: 'api', port: 3002 },
  ];
  const running = [];
  try {
    for (const service of services) running.push(await listen(service.name, host, service.port));
  } catch (err) {
    await Promise.all(running.map((r) => r.close()));
    throw err;
  }
  return {
    servers: running.map((r) => ({ name: r.name, port: r.port, url: `http://${host.includes(':') ? `[${host}]` : host}:${r.port}` })),
    close: () => Promise.all(running.map((r) => r.close())).then(() => undefined),
  };
}

function listen(name, host, port) {
  const streams = new Set();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    if (req.method === 'GET' && url.pathname.endsWith('/events')) return sendEvents(name, url, res, streams);
    const body = JSON.stringify(describe(name, req, url), null, 2);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const sockets = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    if (!url.pathname.endsWith('/ws')) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ service: name, hello: 'send any message; it comes back' }));
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  return new Promise((resolve, reject) => {
    const fail = (err) => reject(Object.assign(err, { service: name }));
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      const address = server.address();
      resolve({
        name,
        port: typeof address === 'object' && address ? address.port : port,
        close: () =>
          new Promise((done) => {
            for (const stop of streams) stop();
            for (const client of sockets.clients) client.terminate();
            sockets.close();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function describe(service, req, url) {
  return {
    service,
    method: req.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    httpVersion: req.httpVersion,
    headers: req.headers,
    client: { address: req.socket.remoteAddress, port: req.socket.remotePort },
  };
}

function sendEvents(service, url, res, streams) {
  const count = clamp(Number(url.searchParams.get('count') ?? 5), 1, MAX_EVENTS);
  const interval = clamp(Number(url.searchParams.get('interval') ?? 1000), MIN_INTERVAL_MS, 60_000);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  let sent = 0;
  const tick = () => {
    sent++;
    res.write(`id: ${sent}\nevent: tick\ndata: ${JSON.stringify({ service, n: sent, of: count })}\n\n`);
    if (sent >= count) stop(true);
  };
  const timer = setInterval(tick, interval);
  const stop = (finished = false) => {
    clearInterval(timer);
    streams.delete(stop);
    if (finished) res.end();
    else res.destroy();
  };
  streams.add(stop);
  res.on('close', () => {
    if (!res.writableEnded) stop();
  });
  tick();
}

function clamp(value, low, high) {
  return Number.isFinite(value) ? Math.min(high, Math.max(low, Math.trunc(value))) : low;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const services = [
    { name: 'web', port: Number(process.env.WEB_PORT ?? 3001), variable: 'WEB_PORT' },
    { name: 'api', port: Number(process.env.API_PORT ?? 3002), variable: 'API_PORT' },
  ];
  let origin;
  try {
    origin = await startDemoOrigin({ services });
  } catch (err) {
    process.stderr.write(`${describeStartFailure(err, services)}\n`);
    process.exit(1);
  }
  for (const s of origin.servers) process.stdout.write(`demo origin "${s.name}" listening on ${s.url}\n`);
  const stop = () => void origin.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  if (process.send) {
    // Supervised by `npm run local` (IPC channel): Ctrl-C reaches the whole process group, but the origin must
    // keep serving while Warren drains; the launcher sends SIGTERM once Warren has stopped (or exits itself).
    process.on('SIGINT', () => {});
    process.once('disconnect', stop);
    process.send({ ready: origin.servers });
  } else {
    process.once('SIGINT', stop);
  }
}

/** One line saying why the origin could not start and how to move it. */
function describeStartFailure(err, services) {
  const service = services.find((s) => s.name === err?.service);
  if (err?.code === 'EADDRINUSE' && service) {
    return (
      `demo origin: cannot listen on ${err.address ?? '127.0.0.1'}:${err.port ?? service.port} for service "${service.name}": the port is already in use. ` +
      `Stop what uses it, or move the origin with ${service.variable}=<port> and change that Service's EndpointSlice port in examples/local/services.yaml to match.`
    );
  }
  return `demo origin: cannot start${service ? ` service "${service.name}"` : ''}: ${err?.message ?? String(err)}`;
}
