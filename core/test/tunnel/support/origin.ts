import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/**
 * A real node:http origin on 127.0.0.1 for connector tests:
 *  - `/echo`: JSON of method, path, raw headers, body length and sha256;
 *  - `/bytes?n=N[&chunked=1]`: N pseudo-random bytes streamed in 64 KiB chunks (content-length unless chunked);
 *  - `/status/<code>`: that status with a short body (none for 204/304);
 *  - `/cookies?n=N`: N Set-Cookie headers plus mixed-case custom headers;
 *  - `/headers?n=N`: N distinct response headers;
 *  - `/trailers`: a chunked body followed by trailers `grpc-status`/`x-checksum`;
 *  - `/slow?ms=M`: answers after M ms (for drain tests);
 *  - `/raw-header?hex=H`: a response header `X-Raw` whose value is exactly the bytes H (hex);
 *  - WebSocket upgrades on any path: echo every message.
 */
export interface TestOrigin {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Requests seen, in order (method and path). */
  readonly seen: Array<{ method: string; path: string; headers: string[] }>;
  close(): Promise<void>;
}

const PATTERN_PERIOD = 256;
const pattern = Buffer.alloc(65536 + PATTERN_PERIOD);
for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31) & 0xff;

/**
 * Deterministic test bytes: byte i of a body is `(i * 31) & 0xff`. Slices of one shared buffer, so streaming
 * tens of MiB creates no garbage of its own (memory tests measure the tunnel, not the test data).
 */
export function patternBytes(offset: number, length: number): Buffer {
  if (length <= 65536) return pattern.subarray(offset % PATTERN_PERIOD, (offset % PATTERN_PERIOD) + length);
  const out = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; done += 65536) patternBytes(offset + done, Math.min(65536, length - done)).copy(out, done);
  return out;
}

async function readBody(req: IncomingMessage): Promise<{ length: number; sha256: string }> {
  const hash = createHash('sha256');
  let length = 0;
  for await (const chunk of req) {
    hash.update(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  return { length, sha256: hash.digest('hex') };
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://origin');
  const path = url.pathname;
  if (path === '/echo') {
    const body = await readBody(req);
    const text = JSON.stringify({ method: req.method, path: req.url, headers: req.rawHeaders, body });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  if (path === '/bytes') {
    req.resume();
    const n = Number(url.searchParams.get('n') ?? '0');
    const chunked = url.searchParams.get('chunked') === '1';
    res.writeHead(200, chunked ? { 'Content-Type': 'application/octet-stream' } : { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
    let sent = 0;
    const pump = () => {
      while (sent < n) {
        const size = Math.min(65536, n - sent);
        const ok = res.write(patternBytes(sent, size));
        sent += size;
        if (!ok) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  if (path.startsWith('/status/')) {
    req.resume();
    const code = Number(path.slice(8));
    if (code === 204 || code === 304) return void res.writeHead(code).end();
    res.writeHead(code, { 'Content-Type': 'text/plain' });
    res.end(`status ${code}\n`);
    return;
  }
  if (path === '/cookies') {
    req.resume();
    const n = Number(url.searchParams.get('n') ?? '3');
    const headers: string[] = ['X-Mixed-Case', 'Value One'];
    for (let i = 0; i < n; i++) headers.push('Set-Cookie', `c${i}=v${i}; Path=/; HttpOnly`);
    headers.push('X-Empty', '', 'Content-Length', '2');
    res.writeHead(200, headers);
    res.end('ok');
    return;
  }
  if (path === '/headers') {
    req.resume();
    const n = Number(url.searchParams.get('n') ?? '10');
    const headers: string[] = [];
    for (let i = 0; i < n; i++) headers.push(`X-Header-${i}`, `value-${i}-${'x'.repeat(20)}`);
    res.writeHead(200, headers);
    res.end('headers');
    return;
  }
  if (path === '/trailers') {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/grpc', Trailer: 'grpc-status, x-checksum' });
    res.write('part one;');
    res.write('part two');
    res.addTrailers({ 'grpc-status': '0', 'x-checksum': 'abc123' });
    res.end();
    return;
  }
  if (path === '/raw-header') {
    req.resume();
    // node:http writes the head as latin1 (one character per byte) when the body is a Buffer; with a string
    // body the head would take the body's encoding.
    const value = Buffer.from(url.searchParams.get('hex') ?? '', 'hex').toString('latin1');
    res.writeHead(200, ['X-Raw', value, 'Content-Length', '2']);
    res.end(Buffer.from('ok'));
    return;
  }
  if (path === '/slow') {
    req.resume();
    const ms = Number(url.searchParams.get('ms') ?? '200');
    setTimeout(() => res.end(`slept ${ms}`), ms);
    return;
  }
  req.resume();
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
}

export async function startTestOrigin(): Promise<TestOrigin> {
  const seen: TestOrigin['seen'] = [];
  const server = createServer({ maxHeaderSize: 256 * 1024 }, (req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.rawHeaders });
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 30_000;
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, binary) => ws.send(data, { binary }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
