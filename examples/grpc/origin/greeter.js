// The example's gRPC service definition, loaded from greeter.proto (shared by the server and the client).
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

const definition = loadSync(fileURLToPath(new URL('greeter.proto', import.meta.url)), { keepCase: true, defaults: true });

/** The `demo.Greeter` service: `Greeter.service` for servers, `new Greeter(address, credentials)` for clients. */
export const Greeter = loadPackageDefinition(definition).demo.Greeter;
