// Calls the example service through Warren.
//
//   npx node examples/grpc/origin/client.js [address] [name]
//
// address: where the edge (or, in local mode, the edge simulator) listens, default 127.0.0.1:8080. The
// authority sent is grpc.localhost, the Ingress host; set GRPC_AUTHORITY for another.
import { credentials } from '@grpc/grpc-js';
import { Greeter } from './greeter.js';

const address = process.argv[2] ?? '127.0.0.1:8080';
const name = process.argv[3] ?? 'Warren';
const client = new Greeter(address, credentials.createInsecure(), { 'grpc.default_authority': process.env.GRPC_AUTHORITY ?? 'grpc.localhost' });
const deadline = () => new Date(Date.now() + 10_000);

const unary = (request) =>
  new Promise((resolve) => client.SayHello(request, { deadline: deadline() }, (err, reply) => resolve(err ? `error ${err.code}: ${err.details}` : reply.message)));

console.log(await unary({ name }));
console.log(await unary({ name: '' }));
await new Promise((resolve, reject) => {
  const call = client.SayHelloStream({ name, count: 3 }, { deadline: deadline() });
  call.on('data', (reply) => console.log(reply.message));
  call.on('end', resolve);
  call.on('error', reject);
});
client.close();
