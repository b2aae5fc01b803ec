// The example's gRPC server (plaintext HTTP/2, as pods usually serve behind an ingress).
//
//   npx node examples/grpc/origin/server.js            # 127.0.0.1:50051
//   GRPC_PORT=50052 npx node examples/grpc/origin/server.js
//
// SayHello answers "Hello, <name>"; a request without a name fails with INVALID_ARGUMENT, so a failed call can
// be seen in Warren's access log (HTTP 200, grpcStatus 3). SayHelloStream sends `count` replies.
// Importable too: `startGreeter({ port })` resolves with the bound port and a `close()`.
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import { Greeter } from './greeter.js';

const MAX_REPLIES = 100;

const handlers = {
  SayHello(call, callback) {
    const name = call.request.name;
    if (!name) return callback({ code: status.INVALID_ARGUMENT, details: 'name is required' });
    callback(null, { message: `Hello, ${name}` });
  },
  SayHelloStream(call) {
    const count = Math.min(Math.max(call.request.count || 3, 1), MAX_REPLIES);
    for (let i = 1; i <= count; i++) call.write({ message: `Hello ${i}/${count}, ${call.request.name || 'stranger'}` });
    call.end();
  },
};

/**
 * Starts the server.
 * @param {{ host?: string, port?: number }} [options] port 0 picks a free port
 * @returns {Promise<{ port: number, close(): Promise<void> }>}
 */
export function startGreeter(options = {}) {
  const server = new Server();
  server.addService(Greeter.service, handlers);
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${options.port ?? 50051}`, ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({ port, close: () => new Promise((done) => server.tryShutdown(() => done())) });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { port } = await startGreeter({ port: Number(process.env.GRPC_PORT ?? 50051) });
  process.stderr.write(`greeter gRPC server listening on 127.0.0.1:${port}\n`);
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
