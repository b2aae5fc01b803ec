/**
 * Benchmark origin (its own process): `GET /bytes/<n>` (or a POST, once its body was read) answers n bytes with content-length from a
 * preallocated buffer. Prints `{"listening": "http://127.0.0.1:<port>"}` once ready; exits on SIGTERM.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const cache = new Map<number, Buffer>();
const server = createServer((req, res) => {
  // Answer once the request body was read, as an upload handler does (`--upload` benchmarks).
  req.resume();
  if (!req.complete) {
    req.once('end', () => answer(req.url, res));
    return;
  }
  answer(req.url, res);
});

function answer(url: string | undefined, res: ServerResponse): void {
  const m = /^\/bytes\/(\d+)$/.exec(url ?? '');
  const n = m ? Math.min(Number(m[1]), 64 * 1024 * 1024) : -1;
  if (n < 0) {
    res.writeHead(404).end();
    return;
  }
  let body = cache.get(n);
  if (!body) cache.set(n, (body = Buffer.alloc(n, 'x')));
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
  res.end(body);
}
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ listening: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
