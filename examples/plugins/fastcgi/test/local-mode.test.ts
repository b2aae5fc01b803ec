import anyTest, { type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPhpFpm, type PhpFpm } from './support/php-fpm.js';
import { freePort } from './support/ports.js';
import { SCRIPTS } from './support/scripts.js';

/**
 * The whole way, as a user runs it: the `warren` command in folder mode (`--local`) with the plugin listed under
 * `extraPlugins`, manifests in a folder, requests entering the built-in edge simulator, crossing the tunnel to
 * Warren's connector and pipeline, and served by PHP-FPM.
 */

const test = anyTest as TestFn<{ fpm: PhpFpm }>;

test.before(async (t) => {
  t.context.fpm = await startPhpFpm({ scripts: SCRIPTS, workers: 2 });
});

test.after.always(async (t) => {
  await t.context.fpm?.stop();
});

function request(port: number, path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: body ? 'POST' : 'GET', agent: false, headers: { host: 'php.localhost' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function manifests(fpm: PhpFpm): object {
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'php', namespace: 'web' }, spec: { ports: [{ name: 'fastcgi', port: 9000, targetPort: fpm.port }] } },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'php-local', namespace: 'web', labels: { 'kubernetes.io/service-name': 'php' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
        ports: [{ name: 'fastcgi', port: fpm.port, protocol: 'TCP' }],
      },
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: {
          name: 'php',
          namespace: 'web',
          annotations: {
            'warren.dev/backend-protocol': 'FCGI',
            'warren.dev/fastcgi-index': 'echo.php',
            'warren.dev/fastcgi-params': 'APP_MODE=local',
          },
        },
        spec: {
          ingressClassName: 'cloudflare-tunnel',
          rules: [{ host: 'php.localhost', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'php', port: { name: 'fastcgi' } } } }] } }],
        },
      },
    ],
  };
}

test('folder mode: edge simulator → tunnel → pipeline → PHP-FPM, with the plugin loaded from extraPlugins', async (t) => {
  const { fpm } = t.context;
  const dir = await mkdtemp(join(tmpdir(), 'warren-fcgi-local-'));
  const folder = join(dir, 'manifests');
  await mkdir(folder);
  await writeFile(join(folder, 'php.json'), JSON.stringify(manifests(fpm)));
  const eyeball = await freePort();
  const settings = {
    extraPlugins: [{ package: '@warren-examples/plugin-fastcgi', config: { documentRoot: fpm.root } }],
    local: { eyeballListen: `127.0.0.1:${eyeball}` },
    server: { listen: '127.0.0.1:0' },
  };
  await writeFile(join(dir, 'settings.json'), JSON.stringify(settings));
  const main = join(dirname(fileURLToPath(import.meta.resolve('@warren/core/package.json'))), 'build/src/main.js');
  const warren = spawn(process.execPath, [main, '--local', folder, '--config', join(dir, 'settings.json'), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  warren.stdout!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-8192)));
  warren.stderr!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-8192)));
  const exited = new Promise<void>((resolve) => warren.once('exit', () => resolve()));
  t.teardown(async () => {
    warren.kill('SIGTERM');
    const timer = setTimeout(() => warren.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    await rm(dir, { recursive: true, force: true });
  });

  // Ready once the route answers through the simulator (bounded).
  let index: { status: number; body: Buffer } | undefined;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && warren.exitCode === null) {
    index = await request(eyeball, '/?via=edge').catch(() => undefined);
    if (index?.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.is(index?.status, 200, output);
  const seen = JSON.parse(index!.body.toString()) as { server: Record<string, string>; get: Record<string, string> };
  t.like(seen.server, { SCRIPT_NAME: '/echo.php', APP_MODE: 'local', DOCUMENT_ROOT: fpm.root, HTTP_HOST: 'php.localhost' });
  t.deepEqual(seen.get, { via: 'edge' });

  const body = randomBytes(1 << 20);
  const upload = await request(eyeball, '/echo.php', body);
  const echoed = JSON.parse(upload.body.toString()) as { bytes: number; sha256: string };
  t.is(echoed.bytes, body.length);
  t.is(echoed.sha256, createHash('sha256').update(body).digest('hex'));
});
