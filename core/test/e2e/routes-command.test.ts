/**
 * `warren routes` against a running Warren, both as users run them: the controller binary in local mode on a copy of
 * examples/local (with one path pointing at a Service that does not exist), and the same binary's `routes` command
 * reading that instance's health port. Covers the wiring of /debug/routes in the composition root.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanUpAfter, spawnLogged, tempDir, waitUntil } from './support/children.js';
import { send } from './support/http.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from './support/paths.js';

const EXAMPLE = join(REPO_ROOT, 'examples', 'local');

function routesCommand(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(NODE_BIN, [MAIN_JS, 'routes', ...args], { cwd: REPO_ROOT, env: baseEnv(), timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('warren routes prints the live table of a local-mode Warren, with the 503 of a missing Service', async (t) => {
  const folder = tempDir('routes-command');
  copyFileSync(join(EXAMPLE, 'services.yaml'), join(folder, 'services.yaml'));
  const ingress = readFileSync(join(EXAMPLE, 'ingress.yaml'), 'utf8');
  writeFileSync(join(folder, 'ingress.yaml'), ingress);
  writeFileSync(
    join(folder, 'broken.yaml'),
    [
      'apiVersion: networking.k8s.io/v1',
      'kind: Ingress',
      'metadata: {name: broken, namespace: default}',
      'spec:',
      '  ingressClassName: cloudflare-tunnel',
      '  rules:',
      '    - host: broken.localhost',
      '      http:',
      '        paths:',
      '          - {path: /admin, pathType: Prefix, backend: {service: {name: admin-svc-typo, port: {number: 80}}}}',
      '',
    ].join('\n'),
  );
  const warren = spawnLogged('warren-routes', NODE_BIN, [MAIN_JS, '--local', folder, '--set', 'local.eyeballListen=127.0.0.1:0', '--set', 'server.listen=127.0.0.1:0'], {
    cwd: REPO_ROOT,
    env: baseEnv(),
  });
  cleanUpAfter(t, warren);
  const [, health] = await warren.waitForOutput(/"address":"([^"]+)","msg":"health and metrics server listening"/, 60_000, 'the health address');
  const url = `http://${health}`;
  await waitUntil('/readyz 200', async () => (await send(url, '/readyz', { timeoutMs: 2_000 }).catch(() => undefined))?.status === 200, 30_000);
  await waitUntil(
    'the broken Ingress in the table',
    async () => (await send(url, '/debug/routes?host=broken.localhost', { timeoutMs: 2_000 }).catch(() => undefined))?.status === 200,
    10_000,
  );

  const text = await routesCommand(['--url', url, '--host', 'broken.localhost', '--path', '/admin/secret']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /this request gets: broken\.localhost \/admin \(Prefix\) from default\/broken → default\/admin-svc-typo:80, 503 ServiceNotFound/);
  t.regex(text.stdout, /Warning ServiceNotFound Ingress default\/broken spec\.rules\[0\]\.http\.paths\[0\]\.backend\.service\.name: .*requests to this path get 503/);

  const json = await routesCommand(['--url', url, '--json']);
  t.is(json.code, 0, json.stderr);
  const view = JSON.parse(json.stdout) as { routes: Array<{ host: string; state: string; endpoints: unknown[] }> };
  const app = view.routes.find((r) => r.host === 'app.localhost');
  t.truthy(app, 'the example Ingress is listed');
  t.true(view.routes.some((r) => r.host === 'broken.localhost' && r.state === 'unresolved'));
});
