/**
 * A network namespace of its own for a container whose program listens on the wildcard address (as the Gateway API
 * echo backend does on :3000), so that two such pods do not collide in the test namespace.
 *
 *   node pod-network.js outer <pod ip> <port,port…> -- <program> <args…>     (run by the rig's node)
 *
 * `outer` listens on <pod ip>:<port> for each port in the test namespace, starts `unshare -n` running this file
 * again as `inner`, and relays each connection through a Unix socket (sockets are files, so they cross network
 * namespaces). `inner` brings up loopback in the new namespace, relays each Unix socket to 127.0.0.1:<port>, and
 * starts the program. The program therefore sees connections from 127.0.0.1.
 *
 * Both relays ignore SIGTERM: the node signals the whole process group, the program decides when to exit, and the
 * relays exit with it (so requests in flight finish when the program lets them). SIGKILL ends everything.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { followChild } from './follow.js';

const [role, ...rest] = process.argv.slice(2);
const dashes = rest.indexOf('--');
if ((role !== 'outer' && role !== 'inner') || dashes < 0 || dashes === rest.length - 1) {
  process.stderr.write('usage: pod-network.js outer <pod ip> <ports> -- <program> <args…>\n');
  process.exit(2);
}
const [program, ...programArgs] = rest.slice(dashes + 1) as [string, ...string[]];
const servers: Server[] = [];

function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

function listen(server: Server, target: { port: number; host: string } | { path: string }): Promise<void> {
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => resolve());
  });
}

if (role === 'outer') {
  const [podIp, portList] = rest as [string, string];
  const ports = portList.split(',').map(Number);
  const socketDir = mkdtempSync(join(tmpdir(), 'wr-'));
  for (const port of ports) {
    const socketPath = join(socketDir, `${port}.sock`);
    await listen(
      createServer((client) => pipeBoth(client, connect(socketPath))),
      { port, host: podIp },
    );
  }
  const self = fileURLToPath(import.meta.url);
  followChild('unshare', ['-n', '--', process.execPath, self, 'inner', socketDir, portList, '--', program, ...programArgs], () => {
    for (const s of servers) s.close();
    rmSync(socketDir, { recursive: true, force: true });
  });
} else {
  const [socketDir, portList] = rest as [string, string];
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  for (const port of portList.split(',').map(Number)) {
    await listen(
      createServer((client) => pipeBoth(client, connect({ port, host: '127.0.0.1' }))),
      { path: join(socketDir, `${port}.sock`) },
    );
  }
  followChild(program, programArgs, () => {
    for (const s of servers) s.close();
  });
}
