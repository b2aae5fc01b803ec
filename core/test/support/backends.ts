/**
 * Echo backends on Warren's test hosts (198.18.0.2–198.18.0.41). Those addresses exist only inside the network
 * namespace that scripts/test.sh creates, so tests using them must run through it
 * (`WARREN_SKIP_TEST_BINARIES=1 bash scripts/test.sh <files>`); elsewhere binding fails with a clear message.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoBackend {
  readonly address: string;
  readonly port: number;
  /** Requests this backend answered. */
  readonly hits: number;
  close(): Promise<void>;
}

/** Starts an HTTP/1.1 server on `address:port` that answers JSON naming itself and echoing the request. */
export async function startEchoBackend(address: string, port = 8080): Promise<EchoBackend> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    const body = JSON.stringify({ backend: address, method: req.method, path: req.url, host: req.headers.host });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRNOTAVAIL'
          ? new Error(`test host ${address} does not exist here: run this test through scripts/test.sh, which creates the test network namespace`)
          : err,
      ),
    );
    server.listen(port, address, () => resolve());
  });
  return {
    address,
    port: (server.address() as AddressInfo).port,
    get hits() {
      return hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ProxyAnswer {
  readonly status: number;
  readonly backend?: string;
  readonly body: string;
}

/** Sends GET `path` with `Host: host` to the proxy entry at `entryUrl` (loopback) and reads the answer. */
export function viaProxy(entryUrl: string, host: string, path = '/'): Promise<ProxyAnswer> {
  const url = new URL(entryUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        let backend: string | undefined;
        try {
          backend = (JSON.parse(body) as { backend?: string }).backend;
        } catch {
          backend = undefined;
        }
        resolve({ status: res.statusCode ?? 0, backend, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('proxy request timed out')));
    req.on('error', reject);
    req.end();
  });
}
