/**
 * The benchmark origin: `GET /bytes/<n>` (or a POST, once its body was read) answers n bytes with content-length
 * from a preallocated buffer; anything else is a 404. Hosted by its own process (origin-server.ts) or, with the
 * tunnel bench's `--origin-in-simulator`, inside each simulator process (simulator-process.ts).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The largest body the origin sends: a bound on what one request can make it allocate. */
const MAX_BODY = 64 * 1024 * 1024;

export interface BenchOrigin {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the origin on an ephemeral loopback port. */
export async function startBenchOrigin(): Promise<BenchOrigin> {
  const cache = new Map<number, Buffer>();
  const answer = (url: string | undefined, res: ServerResponse): void => {
    const m = /^\/bytes\/(\d+)$/.exec(url ?? '');
    const n = m ? Math.min(Number(m[1]), MAX_BODY) : -1;
    if (n < 0) {
      res.writeHead(404).end();
      return;
    }
    let body = cache.get(n);
    if (!body) cache.set(n, (body = Buffer.alloc(n, 'x')));
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
    res.end(body);
  };
  const server: Server = createServer((req, res) => {
    // Answer once the request body was read, as an upload handler does (`--upload` benchmarks).
    req.resume();
    if (!req.complete) {
      req.once('end', () => answer(req.url, res));
      return;
    }
    answer(req.url, res);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
