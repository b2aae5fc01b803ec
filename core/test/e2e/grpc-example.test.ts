/**
 * examples/grpc as its README runs it: the example's gRPC server, Warren in local mode on the example folder, and
 * the example's client calling through the built-in edge simulator and the tunnel. The folder is copied so the
 * server can take a free port; the manifests are otherwise the example's own.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cleanUpAfter, spawnLogged, tempDir, waitUntil } from './support/children.js';
import { send } from './support/http.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from './support/paths.js';

const EXAMPLE = join(REPO_ROOT, 'examples', 'grpc');

interface Greeter extends grpc.Client {
  SayHello(request: { name: string }, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, reply?: { message: string }) => void): void;
  SayHelloStream(request: { name: string; count: number }, options: grpc.CallOptions): grpc.ClientReadableStream<{ message: string }>;
}

test('the gRPC example: unary, streaming and a failed call through the tunnel, each logged with its grpc-status', async (t) => {
  const { startGreeter } = (await import(pathToFileURL(join(EXAMPLE, 'origin', 'server.js')).href)) as {
    startGreeter(o: { port: number }): Promise<{ port: number; close(): Promise<void> }>;
  };
  const { Greeter } = (await import(pathToFileURL(join(EXAMPLE, 'origin', 'greeter.js')).href)) as {
    Greeter: new (address: string, credentials: grpc.ChannelCredentials, options: object) => Greeter;
  };
  const server = await startGreeter({ port: 0 });
  t.teardown(() => server.close());

  const folder = tempDir('grpc-example');
  copyFileSync(join(EXAMPLE, 'ingress.yaml'), join(folder, 'ingress.yaml'));
  const services = readFileSync(join(EXAMPLE, 'services.yaml'), 'utf8');
  t.regex(services, /port: 50051\n\s+protocol: TCP/);
  writeFileSync(join(folder, 'services.yaml'), services.replace(/port: 50051\n(\s+)protocol: TCP/, `port: ${server.port}\n$1protocol: TCP`));

  const warren = spawnLogged('warren-grpc-example', NODE_BIN, [MAIN_JS, '--local', folder, '--set', 'local.eyeballListen=127.0.0.1:0', '--set', 'server.listen=127.0.0.1:0'], {
    cwd: REPO_ROOT,
    env: baseEnv(),
  });
  cleanUpAfter(t, warren);
  const [, eyeball] = await warren.waitForOutput(/Requests enter the built-in edge simulator at (http:\/\/127\.0\.0\.1:\d+)/, 60_000, 'the banner');
  const [, health] = await warren.waitForOutput(/"address":"([^"]+)","msg":"health and metrics server listening"/, 30_000, 'the health address');
  await waitUntil('/readyz 200', async () => (await send(`http://${health}`, '/readyz', { timeoutMs: 2_000 }).catch(() => undefined))?.status === 200, 30_000);

  const client = new Greeter(new URL(eyeball!).host, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'grpc.localhost' });
  t.teardown(() => client.close());
  const deadline = () => ({ deadline: new Date(Date.now() + 10_000) });
  const unary = (name: string) =>
    new Promise<{ err: grpc.ServiceError | null; reply?: { message: string } }>((resolve) => client.SayHello({ name }, deadline(), (err, reply) => resolve({ err, reply })));

  const hello = await unary('Warren');
  t.is(hello.err, null);
  t.is(hello.reply?.message, 'Hello, Warren');
  const refused = await unary('');
  t.is(refused.err?.code, grpc.status.INVALID_ARGUMENT);
  t.is(refused.err?.details, 'name is required');
  const streamed: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.SayHelloStream({ name: 'Warren', count: 3 }, deadline());
    call.on('data', (r: { message: string }) => streamed.push(r.message));
    call.on('end', () => resolve());
    call.on('error', reject);
  });
  t.deepEqual(streamed, ['Hello 1/3, Warren', 'Hello 2/3, Warren', 'Hello 3/3, Warren']);

  const access = () =>
    warren
      .stdout()
      .split('\n')
      .filter((l) => l.includes('"component":"access"'))
      .map((l) => JSON.parse(l) as { host: string; path: string; status: number; grpcStatus?: number });
  await waitUntil('three access-log records', () => access().length >= 3, 5_000);
  t.deepEqual(
    access().map((r) => [r.path, r.status, r.grpcStatus]),
    [
      ['/demo.Greeter/SayHello', 200, grpc.status.OK],
      ['/demo.Greeter/SayHello', 200, grpc.status.INVALID_ARGUMENT],
      ['/demo.Greeter/SayHelloStream', 200, grpc.status.OK],
    ],
  );
});
