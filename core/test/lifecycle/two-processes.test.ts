import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { stringify } from 'yaml';
import { adminClients, CONTROLLER_NAMESPACE, useApiServer } from '../support/apiserver.js';
import { eventually } from '../support/controller.js';
import { ensureIngressClass } from '../support/k8s-objects.js';

// Real controller processes (core/build/src/main.js) against the real apiserver, authenticating with the
// least-privilege ServiceAccount token: leader election across processes, SIGTERM and SIGKILL.
const server = useApiServer(test);
const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const NODE = process.execPath;

interface Replica {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

let dir: string;
let configFile: string;
const replicas: Replica[] = [];

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

test.serial.before(async () => {
  await ensureIngressClass(adminClients(server()));
  dir = mkdtempSync(join(tmpdir(), 'warren-two-processes-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    server()
      .configForToken(await server().controllerToken())
      .exportConfig(),
    { mode: 0o600 },
  );
  configFile = join(dir, 'warren.yaml');
  writeFileSync(
    configFile,
    stringify({
      logLevel: 'info',
      tunnel: { enabled: false },
      kubernetes: {
        kubeconfig,
        publishHostname: 'replicas.example',
        leaderElection: { leaseNamespace: CONTROLLER_NAMESPACE, leaseName: 'warren-leader', leaseDuration: '4s', renewDeadline: '3s', retryPeriod: '500ms' },
      },
      shutdownGracePeriod: '5s',
    }),
  );
});

test.after.always(async () => {
  for (const r of replicas) r.child.kill('SIGKILL');
  await Promise.all(replicas.map((r) => r.exited));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function startReplica(name: string): Promise<Replica> {
  const port = await freePort();
  const child = spawn(NODE, ['--import=reflect-metadata', MAIN, '--config', configFile, '--set', `server.listen=127.0.0.1:${port}`], {
    // WARREN_* variables are settings to the controller; the test runner's own (WARREN_TEST_BIN, …) must not leak in.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARREN_'))), POD_NAME: name, POD_NAMESPACE: CONTROLLER_NAMESPACE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const replica = { name, child, port, output: () => output, exited };
  replicas.push(replica);
  await eventually(`${name} to be ready`, async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 30_000).catch((err) => {
    throw new Error(`${(err as Error).message}\n${output.slice(-3000)}`);
  });
  return replica;
}

async function leads(r: Replica): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${r.port}/metrics`).catch(() => undefined);
  return res?.ok === true && /^warren_leader 1$/m.test(await res.text());
}

async function holder(): Promise<string> {
  const lease = await adminClients(server()).coordination.readNamespacedLease({ namespace: CONTROLLER_NAMESPACE, name: 'warren-leader' });
  return lease.spec?.holderIdentity ?? '';
}

test.serial('separate controller processes: one leader; SIGTERM hands over at once; SIGKILL after the lease expires', async (t) => {
  const a = await startReplica('replica-a');
  const b = await startReplica('replica-b');
  await eventually('a leader', async () => (await leads(a)) !== (await leads(b)));
  const [leader, follower] = (await leads(a)) ? [a, b] : [b, a];
  t.true((await holder()).startsWith(`${leader.name}_`), 'the Lease names the leader (pod name + suffix)');
  t.false(await leads(follower));

  // SIGTERM: graceful stop, Lease released, the follower takes over in well under the lease duration.
  const stopped = Date.now();
  leader.child.kill('SIGTERM');
  t.is(await leader.exited, 0, 'a graceful stop exits 0');
  await eventually('the follower to lead', () => leads(follower), 5_000);
  const handover = Date.now() - stopped;
  t.true(handover < 2_000, `handover took ${handover} ms`);
  t.regex(leader.output(), /released the leader Lease/);
  t.true((await holder()).startsWith(`${follower.name}_`));

  // A third replica joins as follower; SIGKILL the leader: no release, so the new one waits for expiry.
  const c = await startReplica('replica-c');
  t.false(await leads(c));
  const killed = Date.now();
  follower.child.kill('SIGKILL');
  await follower.exited;
  t.true((await holder()).startsWith(`${follower.name}_`), 'a killed leader still holds the Lease');
  await eventually('replica-c to lead', () => leads(c), 15_000);
  const takeover = Date.now() - killed;
  t.true(takeover >= 2_000, `took over after ${takeover} ms, before the 4 s lease could have expired`);
  t.true(takeover <= 8_000, `took over after ${takeover} ms`);
  t.true((await holder()).startsWith('replica-c_'));
});
