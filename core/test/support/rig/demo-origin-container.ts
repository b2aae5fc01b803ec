/**
 * The process the rig's node runs for a container of image `warren.dev/demo-origin`: Warren's demo origin
 * (examples/local/origin/server.js) on the pod's address, plus a health port for readiness probes.
 *
 * Environment (set by the node from the pod spec):
 *   POD_IP        address to listen on (required)
 *   HTTP_PORT     the demo origin's port (the container's first port)
 *   HEALTH_PORT   optional: GET anything → 200, or 503 while a file named `unready` exists in the working
 *                 directory (the container's own folder), so a test can turn a pod unready the way an
 *                 application's health check would fail
 *   DEMO_SERVICE  the `service` name the demo origin reports (default `demo`)
 *
 * SIGTERM closes the servers and exits 0, as the demo origin does on its own.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface DemoOrigin {
  servers: Array<{ name: string; port: number; url: string }>;
  close(): Promise<void>;
}

const repoRoot = new URL('../../../../../', import.meta.url);
const host = process.env.POD_IP;
if (!host) throw new Error('POD_IP is not set');
const httpPort = Number(process.env.HTTP_PORT ?? 8080);
const healthPort = process.env.HEALTH_PORT ? Number(process.env.HEALTH_PORT) : undefined;
const name = process.env.DEMO_SERVICE || 'demo';

const originModule = pathToFileURL(join(new URL(repoRoot).pathname, 'examples', 'local', 'origin', 'server.js')).href;
const { startDemoOrigin } = (await import(originModule)) as { startDemoOrigin(o: object): Promise<DemoOrigin> };
const origin = await startDemoOrigin({ host, services: [{ name, port: httpPort }] });

const health = healthPort
  ? createServer((_req, res) => {
      const ready = !existsSync('unready');
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok\n' : 'unready\n');
    })
  : undefined;
if (health) await new Promise<void>((resolve) => health.listen(healthPort, host, resolve));

process.stdout.write(`demo origin "${name}" listening on ${origin.servers[0]!.url}${healthPort ? `, health on ${healthPort}` : ''}\n`);
process.once('SIGTERM', () => {
  process.stdout.write('SIGTERM: closing\n');
  health?.close();
  void origin.close().then(() => process.exit(0));
});
