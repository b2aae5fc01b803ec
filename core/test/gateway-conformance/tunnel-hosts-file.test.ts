/**
 * (No cluster) How the conformance run lets the suite resolve `<tunnel-id>.cfargotunnel.com`: the hosts file maps
 * each tunnel hostname to the entrance the edge simulator opened for that tunnel, and a process that runs with it
 * bind-mounted over /etc/hosts (as the suite does) sees the entrances that open after it started.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { startEdgeSimulator, tunnelHostname } from '../../src/edge-simulator/index.js';
import { tempDir } from '../e2e/support/children.js';
import { fakeConnector } from '../edge-simulator/support/fake-connector.js';
import { withHostsFile } from './support/run-suite.js';
import { TunnelHostsFile } from './support/tunnel-edge.js';

const ACCOUNT = randomBytes(16).toString('hex');

test('the hosts file maps each tunnel hostname to its own entrance, and a process with it over /etc/hosts sees later entrances', async (t) => {
  const tunnels = [0, 1].map(() => ({ id: randomUUID(), secret: randomBytes(32) }));
  const sim = await startEdgeSimulator({
    authorize: (c) => c.accountTag === ACCOUNT && tunnels.some((x) => x.id === c.tunnelId && x.secret.equals(c.tunnelSecret)),
    eyeball: false,
    tunnelEntrances: { hosts: ['127.0.0.2', '127.0.0.3'], port: 0, tls: false },
  });
  t.teardown(() => sim.close());
  const hosts = new TunnelHostsFile(tempDir('hosts-file'), sim);
  t.teardown(() => hosts.close());
  const inode = statSync(hosts.path).ino;

  // A process started before any entrance opened, reading /etc/hosts when told to.
  const [command, args] = withHostsFile(hosts.path, 'sh', ['-c', 'echo mounted; read go; cat /etc/hosts']);
  const reader = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => reader.kill('SIGKILL'));
  let out = '';
  let err = '';
  reader.stdout.on('data', (c: Buffer) => (out += c));
  reader.stderr.on('data', (c: Buffer) => (err += c));
  const exited = once(reader, 'exit');
  const deadline = Date.now() + 10_000;
  while (!out.includes('mounted') && reader.exitCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.true(out.includes('mounted'), `the hosts file is mounted over /etc/hosts (${err.trim()})`);

  for (const [i, tunnel] of tunnels.entries()) {
    t.true((await fakeConnector(t, sim, { accountTag: ACCOUNT, tunnelId: tunnel.id, secret: tunnel.secret, connIndex: i })).ok);
    await sim.waitForEntrance(tunnel.id);
  }
  const expected = tunnels.map((tunnel) => `${sim.entranceOf(tunnel.id)!.host} ${tunnelHostname(tunnel.id)}`);
  t.deepEqual(expected, [`127.0.0.2 ${tunnelHostname(tunnels[0]!.id)}`, `127.0.0.3 ${tunnelHostname(tunnels[1]!.id)}`]);
  t.is(statSync(hosts.path).ino, inode, 'rewritten in place, so the bind mount shows each version');

  reader.stdin.end('go\n');
  await exited;
  const seen = out.split('\n');
  for (const line of expected) t.true(seen.includes(line), `the process sees "${line}"`);
  t.true(
    seen.some((l) => /^127\.0\.0\.1\s+localhost\b/.test(l)),
    "the machine's own entries stay",
  );
  t.false(readFileSync('/etc/hosts', 'utf8').includes('cfargotunnel.com'), "the test's own /etc/hosts is untouched");
});
