/**
 * How the real CLI fails: a port in use, a demo origin that cannot listen, a Node.js that is too old. Each must
 * end the process with a non-zero status, one clear line on stderr naming what to change, and at most one log
 * record for the failure (with its code and cause, without a stack trace for an expected error).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { delimiter, join } from 'node:path';
import { cleanUpAfter, spawnLogged, type LoggedChild } from './support/children.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from './support/paths.js';

const EXAMPLE = join(REPO_ROOT, 'examples', 'local');

/** A port some other program holds for the whole test. */
async function takenPort(t: ExecutionContext): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

async function exitOf(t: ExecutionContext, child: LoggedChild, withinMs = 30_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([child.exited, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), withinMs)))]);
  clearTimeout(timer);
  t.truthy(exit, `${child.name} still running after ${withinMs} ms:\n${child.tail()}`);
  return exit?.code ?? null;
}

const records = (child: LoggedChild) =>
  child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; msg: string; err?: Record<string, unknown> });

function warrenLocal(t: ExecutionContext, sets: string[]): LoggedChild {
  const child = spawnLogged('warren-cli', NODE_BIN, [MAIN_JS, '--local', EXAMPLE, ...sets.flatMap((s) => ['--set', s])], { cwd: REPO_ROOT, env: baseEnv() });
  cleanUpAfter(t, child);
  return child;
}

test('local mode with the eyeball port taken: exit 1, one stderr line naming the flag, one log record with code and cause', async (t) => {
  const port = await takenPort(t);
  const warren = warrenLocal(t, [`local.eyeballListen=127.0.0.1:${port}`, 'server.listen=127.0.0.1:0']);
  t.is(await exitOf(t, warren), 1);
  const stderr = warren.stderr().trim().split('\n');
  t.is(stderr.length, 1, warren.stderr());
  t.regex(
    stderr[0]!,
    new RegExp(
      `^warren: WARREN_ERR_CONFIG_INVALID: cannot listen on 127\\.0\\.0\\.1:${port} \\(local\\.eyeballListen\\): the port is already in use; choose another address with --set local\\.eyeballListen=127\\.0\\.0\\.1:${port + 1}$`,
    ),
  );
  const failures = records(warren).filter((r) => r.level === 'error' || r.level === 'fatal');
  t.is(failures.length, 1, warren.stdout());
  t.is(failures[0]!.err?.code, 'WARREN_ERR_CONFIG_INVALID');
  t.like(failures[0]!.err?.cause as object, { code: 'EADDRINUSE', syscall: 'listen', port });
  t.false(warren.stdout().includes('"stack"'), 'no stack trace for an expected failure');
  t.false(warren.stdout().includes('"type":"Object"'));
});

test('the health port taken: exit 1 after a clean stop, one stderr line naming server.listen, one error record', async (t) => {
  const port = await takenPort(t);
  const warren = warrenLocal(t, ['local.eyeballListen=127.0.0.1:0', `server.listen=127.0.0.1:${port}`]);
  t.is(await exitOf(t, warren), 1);
  const stderr = warren.stderr().trim().split('\n');
  t.is(stderr.length, 1, warren.stderr());
  t.regex(
    stderr[0]!,
    /^warren: WARREN_ERR_CONFIG_INVALID: cannot listen on 127\.0\.0\.1:\d+ \(server\.listen\): the port is already in use; choose another address with --set server\.listen=/,
  );
  const failures = records(warren).filter((r) => r.level === 'error' || r.level === 'fatal');
  t.is(failures.length, 1, `one record for one failure:\n${warren.stdout()}`);
  t.like(failures[0]!, { msg: 'runnable failed; stopping the controller' });
  t.like(failures[0]!.err?.cause as object, { code: 'EADDRINUSE' });
  t.false(warren.stdout().includes('"stack"'));
});

test('the demo origin with its port taken: exit 1 with one line naming the variable that moves it, no stack trace', async (t) => {
  const port = await takenPort(t);
  const origin = spawnLogged('demo-origin', NODE_BIN, [join(EXAMPLE, 'origin', 'server.js')], { cwd: REPO_ROOT, env: baseEnv({ WEB_PORT: String(port), API_PORT: '0' }) });
  cleanUpAfter(t, origin);
  t.is(await exitOf(t, origin, 15_000), 1);
  const stderr = origin.stderr().trim().split('\n');
  t.is(stderr.length, 1, origin.stderr());
  t.regex(
    stderr[0]!,
    new RegExp(`^demo origin: cannot listen on 127\\.0\\.0\\.1:${port} for service "web": the port is already in use\\. .*WEB_PORT=<port>.*examples/local/services\\.yaml`),
  );
});

/** An installed Node.js older than 24 on PATH, if the machine has one. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'node');
    if (!dir || dir.includes('node_modules') || !existsSync(candidate)) continue;
    try {
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
      if (Number(version.replace(/^v/, '').split('.')[0]) < 24) return candidate;
    } catch {
      // Not runnable: look further.
    }
  }
  return undefined;
}

test('a Node.js older than 24 gets one line saying which version is needed, before anything else can fail', async (t) => {
  // The running Node 24 made to report an older version, before Warren's entry point loads.
  const pretend = `data:text/javascript,Object.defineProperty(process.versions,'node',{value:'22.3.0'})`;
  const faked = spawnLogged('warren-old-node', NODE_BIN, [`--import=${pretend}`, MAIN_JS, '--version'], { cwd: REPO_ROOT, env: baseEnv() });
  cleanUpAfter(t, faked);
  t.is(await exitOf(t, faked, 15_000), 1);
  t.is(faked.stdout(), '', 'nothing ran');
  t.is(
    faked.stderr(),
    'warren: Warren needs Node.js 24.12.0 or newer, but runs on Node.js 22.3.0. Install Node.js 24 LTS, or in the repository use the pinned one: npm run … scripts and npx node use it.\n',
  );

  // A real older Node.js, where the rest of Warren cannot even be linked.
  const old = olderNode();
  if (!old) return t.log('no Node.js older than 24 on PATH; the real-binary check did not run');
  const real = spawnLogged('warren-real-old-node', old, [MAIN_JS, '--local', EXAMPLE], { cwd: REPO_ROOT, env: baseEnv() });
  cleanUpAfter(t, real);
  t.is(await exitOf(t, real, 15_000), 1);
  t.regex(real.stderr(), /^warren: Warren needs Node\.js 24\.12\.0 or newer, but runs on Node\.js \d+\.\d+\.\d+\. /);
  t.notRegex(real.stderr(), /SyntaxError|getCACertificates/);
});
