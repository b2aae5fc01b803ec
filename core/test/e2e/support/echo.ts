/**
 * Echo backends for end-to-end tests, in the manner of the ingress conformance suite's echoserver: every answer
 * is JSON naming the Service and the backend address that served it, plus the request as received (method,
 * path, Host, HTTP version, headers). `GET …?delay=MS` waits that long (at most 30 s) before answering, for
 * drain tests.
 *
 * One {@link EchoService} stands for the pods of one Service: a server on each given test-host address
 * (198.18.0.2–41, which exist only inside scripts/test.sh's network namespace), all on ONE port because an
 * EndpointSlice has one port list for all its endpoints. The port is picked free on every address, so test
 * files running side by side never collide.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { testHost } from '../../support/k8s-objects.js';

export interface EchoService {
  readonly name: string;
  readonly addresses: readonly string[];
  /** The one port every address listens on (the EndpointSlice port). */
  readonly port: number;
  /** Requests answered, per address. */
  readonly hits: ReadonlyMap<string, number>;
  /** Requests received but not yet answered (e.g. waiting for `delay`). */
  readonly inFlight: number;
  close(): Promise<void>;
}

const MAX_DELAY_MS = 30_000;

/** Starts the echo servers of Service `name` on `addresses`. */
export async function startEchoService(name: string, addresses: readonly string[]): Promise<EchoService> {
  if (addresses.length === 0) throw new Error('an echo service needs at least one address');
  const hits = new Map<string, number>(addresses.map((a) => [a, 0]));
  let inFlight = 0;
  const handler = (address: string, port: () => number) => (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://echo');
      const delay = Math.min(MAX_DELAY_MS, Math.max(0, Number(url.searchParams.get('delay') ?? 0) || 0));
      const answer = () => {
        inFlight--;
        hits.set(address, (hits.get(address) ?? 0) + 1);
        const body = JSON.stringify({
          service: name,
          backend: `${address}:${port()}`,
          method: req.method,
          path: req.url,
          host: req.headers.host,
          httpVersion: req.httpVersion,
          headers: req.headers,
          bodyBytes: Buffer.concat(chunks).length,
        });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  };

  for (let attempt = 0; attempt < 20; attempt++) {
    const servers: Server[] = [];
    let port = 0;
    try {
      for (const address of addresses) {
        const server = createServer();
        server.on(
          'request',
          handler(address, () => port),
        );
        await listen(server, address, port);
        servers.push(server);
        port = (server.address() as AddressInfo).port;
      }
    } catch (err) {
      await Promise.all(servers.map(close));
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
      throw err;
    }
    return {
      name,
      addresses,
      port,
      hits,
      get inFlight() {
        return inFlight;
      },
      close: () => Promise.all(servers.map(close)).then(() => undefined),
    };
  }
  throw new Error(`no port free on all of ${addresses.join(', ')} after 20 attempts`);
}

function listen(server: Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        err.code === 'EADDRNOTAVAIL'
          ? new Error(`test host ${address} does not exist here: run this test through scripts/test.sh, which creates the test network namespace`)
          : err,
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, address);
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/**
 * Echo services of one test file, each on its own test-host addresses (handed out in order from 198.18.0.2),
 * closed together with `closeAll`.
 */
export class EchoPool {
  readonly #services: EchoService[] = [];
  #nextHost = 2;

  async start(name: string, count = 1): Promise<EchoService> {
    const addresses = Array.from({ length: count }, () => testHost(this.#nextHost++));
    const service = await startEchoService(name, addresses);
    this.#services.push(service);
    return service;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#services.map((e) => e.close()));
  }
}
