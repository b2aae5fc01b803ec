/**
 * The README's local quick start, run exactly as a user runs it: `npm run local` in the repository (build, then
 * the demo origin and Warren in local mode on examples/local), requests through the built-in edge simulator on
 * http://127.0.0.1:8080, and stopping it. The repository's files are never edited: the live-edit check runs the
 * same controller binary on a temp copy of the example, on other ports, and edits the copy.
 *
 * `npm run local` uses fixed ports (8080, 3001, 3002, 10254), so this file must run inside the test network
 * namespace of scripts/test.sh, where nothing else owns them; its tests that start it run one after another.
 */
import test, { type ExecutionContext } from 'ava';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { cleanUpAfter, describeExit, spawnLogged, tempDir, waitUntil, type LoggedChild } from './support/children.js';
import { send, sendUntil, type HttpAnswer } from './support/http.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from './support/paths.js';
import { freePort } from '../support/ports.js';

const EYEBALL = 'http://127.0.0.1:8080';
const HEALTH = 'http://127.0.0.1:10254';
const EXAMPLE = join(REPO_ROOT, 'examples', 'local');
/** `npm run local` builds first (`tsc -b`), which may take a while on a busy machine. */
const START_MS = 180_000;

const ready = async (url: string) => (await send(url, '/readyz', { timeoutMs: 2_000 }).catch(() => undefined))?.status === 200;

/** Starts `npm run local` in the repository, as the README says, and waits for the banner and readiness. */
async function npmRunLocal(t: ExecutionContext): Promise<LoggedChild> {
  const npm = spawnLogged('npm-run-local', 'npm', ['run', 'local'], { cwd: REPO_ROOT, env: baseEnv() });
  cleanUpAfter(t, npm);
  await npm.waitForOutput(/Ctrl-C stops\./, START_MS, 'the local-mode banner');
  await waitUntil('local mode /readyz 200', () => ready(HEALTH), 30_000);
  return npm;
}

const get = (host: string, path: string, base = EYEBALL): Promise<HttpAnswer> => send(base, path, { host });

test.serial('npm run local: the demo origin answers through the edge simulator, unrouted requests get 404', async (t) => {
  await npmRunLocal(t);

  const app = await get('app.localhost', '/hello?x=1');
  t.is(app.status, 200);
  t.regex(String(app.headers['content-type']), /^application\/json/);
  t.is(app.echo?.service, 'web');
  t.is(app.echo?.method, 'GET');
  t.is(app.echo?.path, '/hello');
  t.is(app.echo?.headers?.host, 'app.localhost', 'the client Host reaches the origin');
  t.truthy(app.echo?.headers?.['cf-ray'], 'the request crossed the (simulated) edge and the tunnel');

  const api = await get('api.localhost', '/v1/items');
  t.is(api.status, 200);
  t.is(api.echo?.service, 'api');
  t.is(api.echo?.path, '/v1/items');

  t.is((await get('api.localhost', '/other')).status, 404, 'no rule for that path');
  t.is((await get('nothing.localhost', '/')).status, 404, 'no rule for that host');

  // api.localhost routes only Prefix /v1: no spelling of a path outside it reaches the api Service.
  for (const [path, status] of [
    ['/v1/../admin', 404],
    ['/v1/%2e%2e/admin', 404],
    ['/v1/%2E%2E/hello', 404],
    ['/v1/x/../../admin', 404],
    ['/v1/..\\admin', 400],
    ['/v1/..%2fadmin', 400],
    ['/v1/..;/admin', 400],
  ] as const) {
    t.is((await get('api.localhost', path)).status, status, path);
  }
  const resolved = await get('api.localhost', '/v1/x/../items');
  t.is(resolved.echo?.path, '/v1/items', 'the api Service gets the path that was matched');
});

test.serial('npm run local: says it builds, and every curl command of the banner works', async (t) => {
  const npm = await npmRunLocal(t);
  t.regex(npm.stderr(), /npm run local: building Warren \(tsc -b\); the first build takes about half a minute/, 'the build is announced');
  const banner = npm.stderr();
  const examples = [...banner.matchAll(/^ {2}curl -H 'Host: ([^']+)' (http:\/\/127\.0\.0\.1:8080)(\/\S*)$/gm)];
  t.deepEqual(examples.map((m) => m[1]).sort(), ['api.localhost', 'app.localhost'], `banner:\n${banner}`);
  for (const [line, host, base, path] of examples) {
    const answer = await send(base!, path!, { host: host! });
    t.is(answer.status, 200, `${line.trim()} answers ${answer.status}`);
  }
  t.false(banner.includes('no Ingress routes yet'), 'the example has routes');
});

test.serial('npm run local: Ctrl-C drains: an open stream still reaches the origin, a new request gets 1033 at once', async (t) => {
  const npm = await npmRunLocal(t);
  const stream = send(EYEBALL, '/events?count=6&interval=400', { host: 'app.localhost', timeoutMs: 20_000 });
  await new Promise((resolve) => setTimeout(resolve, 600));
  npm.signalGroup('SIGINT');
  await npm.waitForOutput(/"msg":"unregistered tunnel connection"/, 10_000, 'the connector to unregister');
  const started = Date.now();
  const during = await send(EYEBALL, '/hello', { host: 'app.localhost', timeoutMs: 10_000 });
  t.is(during.status, 530, 'no registered connection while Warren drains');
  t.true(Date.now() - started < 2_000, `answered after ${Date.now() - started} ms, not held`);
  const events = await stream;
  t.is(events.status, 200);
  t.is(events.body.match(/^event: tick$/gm)?.length, 6, 'the demo origin kept serving the stream Warren drained');
  await waitUntil('every process of npm run local to exit', () => npm.groupMembers().length === 0, 30_000);
});

test.serial("npm run local with the demo origin's port taken: exits non-zero with the origin's line, Warren never starts", async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(3001, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const npm = spawnLogged('npm-run-local-taken', 'npm', ['run', 'local'], { cwd: REPO_ROOT, env: baseEnv() });
  cleanUpAfter(t, npm);
  const exit = await npm.exited;
  t.not(exit.code, 0, describeExit(exit));
  t.regex(npm.stderr(), /^demo origin: cannot listen on 127\.0\.0\.1:3001 for service "web": the port is already in use\./m);
  t.notRegex(npm.stderr() + npm.stdout(), /\n\s+at /, 'no stack trace');
  t.false(npm.stdout().includes('"app":"warren"'), 'Warren did not start');
  await waitUntil('every process of npm run local to exit', () => npm.groupMembers().length === 0, 15_000);
});

test.serial("npm run local -- --help: prints the launcher's usage and Warren's options, starting nothing", async (t) => {
  // The demo origin's port is taken: help must not need it.
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(3001, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const npm = spawnLogged('npm-run-local-help', 'npm', ['run', 'local', '--', '--help'], { cwd: REPO_ROOT, env: baseEnv() });
  cleanUpAfter(t, npm);
  const exit = await npm.exited;
  t.is(exit.code, 0, describeExit(exit));
  t.regex(npm.stdout(), /^Usage: npm run local \[-- WARREN_OPTIONS\]$/m);
  t.regex(npm.stdout(), /WEB_PORT and API_PORT/);
  t.regex(npm.stdout(), /^Usage: warren \[options\]$/m);
  t.notRegex(npm.stdout() + npm.stderr(), /demo origin ("web" listening|: cannot listen)/, 'the demo origin was not started');
  await waitUntil('every process of npm run local to exit', () => npm.groupMembers().length === 0, 15_000);
});

test.serial('npm run local: SIGTERM to npm stops Warren and the demo origin, leaving no process behind', async (t) => {
  const npm = await npmRunLocal(t);
  t.true(npm.groupMembers().length >= 3, 'npm, the launcher, the origin and Warren run');
  npm.signal('SIGTERM');
  await npm.exited;
  const left = await waitUntil('every process of npm run local to exit', () => npm.groupMembers().length === 0, 15_000).then(
    () => [],
    () => npm.groupMembers().map(describeProcess),
  );
  t.deepEqual(left, [], 'processes still running after SIGTERM');
});

test.serial('npm run local: Ctrl-C (SIGINT to the foreground process group) stops every process', async (t) => {
  const npm = await npmRunLocal(t);
  npm.signalGroup('SIGINT');
  await waitUntil('every process of npm run local to exit', () => npm.groupMembers().length === 0, 30_000);
  t.regex(npm.stdout(), /"signal":"SIGINT","msg":"stop signal received; shutting down gracefully"/, 'Warren saw the signal');
  await t.throwsAsync(send(EYEBALL, '/', { host: 'app.localhost', timeoutMs: 2_000 }), { code: 'ECONNREFUSED' }, 'nothing listens on :8080 any more');
});

test.serial('the same binary with --local on a copy of the example: routing follows edits of the copy; SIGTERM exits 0', async (t) => {
  const [webPort, apiPort] = [await freePort(), await freePort()];
  const origin = spawnLogged('demo-origin', NODE_BIN, [join(EXAMPLE, 'origin', 'server.js')], {
    cwd: REPO_ROOT,
    env: baseEnv({ WEB_PORT: String(webPort), API_PORT: String(apiPort) }),
  });
  cleanUpAfter(t, origin);
  await origin.waitForOutput(/demo origin "api" listening/, 20_000, 'the demo origin');

  const folder = tempDir('local-copy');
  copyFileSync(join(EXAMPLE, 'ingress.yaml'), join(folder, 'ingress.yaml'));
  writeFileSync(
    join(folder, 'services.yaml'),
    readFileSync(join(EXAMPLE, 'services.yaml'), 'utf8').replace('port: 3001', `port: ${webPort}`).replace('port: 3002', `port: ${apiPort}`),
  );
  const warren = spawnLogged('warren-local', NODE_BIN, [MAIN_JS, '--local', folder, '--set', 'local.eyeballListen=127.0.0.1:0', '--set', 'server.listen=127.0.0.1:0'], {
    cwd: REPO_ROOT,
    env: baseEnv(),
  });
  cleanUpAfter(t, warren);
  const [, eyeball] = await warren.waitForOutput(/Requests enter the built-in edge simulator at (http:\/\/127\.0\.0\.1:\d+)/, 30_000, 'the banner');
  const [, health] = await warren.waitForOutput(/"address":"([^"]+)","msg":"health and metrics server listening"/, 30_000, 'the health address');
  await waitUntil('/readyz 200', () => ready(`http://${health}`), 30_000);
  const via = (host: string, path: string) => get(host, path, eyeball);
  const follows = (host: string, path: string, accept: (a: HttpAnswer) => boolean, what: string) =>
    sendUntil(eyeball!, path, { host }, accept, 5_000, `${host}${path}: ${what}`);

  t.is((await via('app.localhost', '/hello')).echo?.service, 'web');
  t.is((await via('api.localhost', '/v1/items')).echo?.service, 'api');
  t.is((await via('api.localhost', '/v2/items')).status, 404);

  // Edit the Ingress: app.localhost now goes to the api Service, and api.localhost serves /v2 instead of /v1.
  const ingressFile = join(folder, 'ingress.yaml');
  const original = readFileSync(ingressFile, 'utf8');
  const edited = original.replace(/name: web\n(\s+)port:\n\s+name: http/, 'name: api\n$1port:\n$1  number: 80').replace('path: /v1', 'path: /v2');
  t.not(edited, original);
  writeFileSync(ingressFile, edited);
  await follows('app.localhost', '/hello', (a) => a.echo?.service === 'api', 'app.localhost moved to the api Service');
  await follows('api.localhost', '/v2/items', (a) => a.status === 200 && a.echo?.service === 'api', '/v2 routed');
  t.is((await via('api.localhost', '/v1/items')).status, 404, '/v1 no longer routed');

  // A broken edit is not applied: the last good version keeps serving, and the log names the file.
  writeFileSync(ingressFile, `${edited}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: [not, a, mapping\n`);
  await warren.waitForOutput(/"level":"warn"[^\n]*"file":"[^"]*ingress\.yaml"/, 10_000, 'a warning naming ingress.yaml');
  t.is((await via('app.localhost', '/hello')).echo?.service, 'api', 'the last good version stays in effect');
  t.is((await via('api.localhost', '/v2/items')).status, 200);

  // A new file adds routes; deleting it removes them.
  writeFileSync(
    join(folder, 'extra.yaml'),
    [
      'apiVersion: networking.k8s.io/v1',
      'kind: Ingress',
      'metadata: { name: extra, namespace: demo }',
      'spec:',
      '  ingressClassName: cloudflare-tunnel',
      '  rules:',
      '    - host: extra.localhost',
      '      http: { paths: [ { path: /, pathType: Prefix, backend: { service: { name: web, port: { name: http } } } } ] }',
      '',
    ].join('\n'),
  );
  await follows('extra.localhost', '/', (a) => a.echo?.service === 'web', 'the new file is read');
  rmSync(join(folder, 'extra.yaml'));
  await follows('extra.localhost', '/', (a) => a.status === 404, 'the deleted file no longer routes');

  warren.signal('SIGTERM');
  const exit = await warren.exited;
  t.is(exit.code, 0, `Warren exits 0 on SIGTERM (${describeExit(exit)})`);
  t.regex(warren.stdout(), /"msg":"stopped"/);
  origin.signal('SIGTERM');
  t.is((await origin.exited).code, 0, 'the demo origin exits 0 on SIGTERM');
  t.deepEqual(warren.groupMembers(), []);
  t.deepEqual(origin.groupMembers(), []);
});

/** `pid command line` of a running process, for messages. */
function describeProcess(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`;
  } catch {
    return String(pid);
  }
}
