import anyTest, { type TestFn } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { capturedLogger } from '@warren/core/testing';
import type { TransportProfile } from '@warren/core/plugin';
import { FastCgiPool, type PoolLimits } from '../src/fastcgi-pool.js';
import { poolRequest, scriptSettings } from './support/dispatch.js';
import { startPhpFpm, type PhpFpm } from './support/php-fpm.js';
import { SCRIPTS } from './support/scripts.js';

/** The FastCGI pool against a real PHP-FPM on loopback, driven the way core's dispatch drives a pool. */

const test = anyTest as TestFn<{ fpm: PhpFpm }>;

const LIMITS: PoolLimits = { maxResponseHeaderBytes: 64 * 1024, maxParamsBytes: 64 * 1024, maxStderrBytes: 8 * 1024, maxUnsizedBodyBytes: 1 << 20 };
const KEEP_ALIVE: TransportProfile = { scheme: 'http:', http2: 'off', connectTimeout: 2_000, keepAlive: { timeout: 10_000, maxConnections: 2 } };
const PER_REQUEST: TransportProfile = { scheme: 'http:', http2: 'off', connectTimeout: 2_000 };

test.before(async (t) => {
  t.context.fpm = await startPhpFpm({ scripts: SCRIPTS, workers: 6 });
});

test.after.always(async (t) => {
  await t.context.fpm?.stop();
});

function pool(t: { context: { fpm: PhpFpm }; teardown(f: () => unknown): void }, profile = KEEP_ALIVE, limits = LIMITS, logger = capturedLogger().logger) {
  const p = new FastCgiPool(`http://${t.context.fpm.key}`, profile, limits, logger);
  t.teardown(() => p.destroy());
  return p;
}

function json(body: Buffer): { server: Record<string, string>; get: Record<string, string>; bytes: number; sha256: string } {
  return JSON.parse(body.toString()) as never;
}

test('GET: CGI variables per RFC 3875, query, request headers as HTTP_*, and no HTTP_PROXY', async (t) => {
  const p = pool(t);
  const settings = scriptSettings(t.context.fpm.root);
  const reply = await poolRequest(p, {
    path: '/echo.php/extra/path?a=1&b=two%20words',
    headers: [
      'host',
      'php.example:8443',
      'x-forwarded-proto',
      'https',
      'accept',
      'text/html',
      'proxy',
      'http://evil.example:3128',
      'x-under_score',
      'dropped',
      'cookie',
      'a=1',
      'cookie',
      'b=2',
    ],
    settings,
  });
  t.is(reply.error, undefined);
  t.deepEqual(reply.calls, ['start', 'head', 'data', 'end']);
  t.is(reply.status, 200);
  t.is(reply.headers['content-type'], 'application/json');
  const { server, get } = json(reply.body);
  t.like(server, {
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: 'GET',
    REQUEST_URI: '/echo.php/extra/path?a=1&b=two%20words',
    QUERY_STRING: 'a=1&b=two%20words',
    SCRIPT_NAME: '/echo.php',
    SCRIPT_FILENAME: join(t.context.fpm.root, 'echo.php'),
    PATH_INFO: '/extra/path',
    DOCUMENT_ROOT: t.context.fpm.root,
    SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_NAME: 'php.example',
    SERVER_PORT: '8443',
    REMOTE_ADDR: '198.18.0.9',
    HTTPS: 'on',
    REQUEST_SCHEME: 'https',
    HTTP_HOST: 'php.example:8443',
    HTTP_ACCEPT: 'text/html',
    HTTP_COOKIE: 'a=1; b=2',
  });
  t.deepEqual(get, { a: '1', b: 'two words' });
  t.false('HTTP_PROXY' in server, 'a client Proxy header never becomes HTTP_PROXY (httpoxy)');
  t.false(
    Object.keys(server).some((k) => k.startsWith('HTTP_X_UNDER')),
    'names with underscores are not forwarded',
  );
});

test('a path ending in "/" gets the index; extra params replace computed ones', async (t) => {
  const p = pool(t);
  const root = t.context.fpm.root;
  const index = json((await poolRequest(p, { path: '/', settings: scriptSettings(root) })).body);
  t.is(index.server.SCRIPT_NAME, '/index.php');
  t.is(index.server.SCRIPT_FILENAME, join(root, 'index.php'));
  const front = json(
    (
      await poolRequest(p, {
        path: '/users/7',
        settings: scriptSettings(root, {
          params: [
            ['SCRIPT_FILENAME', join(root, 'echo.php')],
            ['APP_MODE', 'test'],
          ],
        }),
      })
    ).body,
  );
  t.is(front.server.SCRIPT_FILENAME, join(root, 'echo.php'), 'one front controller for every path');
  t.is(front.server.APP_MODE, 'test');
});

test('POST: the body arrives whole with CONTENT_TYPE and CONTENT_LENGTH', async (t) => {
  const p = pool(t);
  const body = randomBytes(300_000);
  const reply = await poolRequest(p, { method: 'POST', headers: ['content-type', 'application/octet-stream'], body, settings: scriptSettings(t.context.fpm.root) });
  const echoed = json(reply.body);
  t.is(echoed.bytes, body.length);
  t.is(echoed.sha256, createHash('sha256').update(body).digest('hex'));
  t.is(echoed.server.CONTENT_TYPE, 'application/octet-stream');
  t.is(echoed.server.CONTENT_LENGTH, String(body.length));
});

test('a body without a length is read whole (bounded) and sent with its CONTENT_LENGTH; beyond the bound, 413', async (t) => {
  const p = pool(t, KEEP_ALIVE, { ...LIMITS, maxUnsizedBodyBytes: 100_000 });
  const chunks = [randomBytes(30_000), randomBytes(30_000)];
  const ok = await poolRequest(p, { method: 'POST', body: Readable.from(chunks), settings: scriptSettings(t.context.fpm.root) });
  t.is(json(ok.body).server.CONTENT_LENGTH, '60000');
  t.is(json(ok.body).bytes, 60_000);
  const tooBig = await poolRequest(p, { method: 'POST', body: Readable.from([randomBytes(60_000), randomBytes(60_000)]), settings: scriptSettings(t.context.fpm.root) });
  t.is(tooBig.status, undefined);
  t.is((tooBig.error as { status?: number }).status, 413);
});

test('status, headers and repeated Set-Cookie from the script; Location without Status is a 302', async (t) => {
  const p = pool(t);
  const settings = scriptSettings(t.context.fpm.root);
  const created = await poolRequest(p, { path: '/status.php', settings });
  t.is(created.status, 201);
  t.is(created.headers['x-custom'], 'yes');
  t.deepEqual(created.headers['set-cookie'], ['a=1', 'b=2']);
  t.is(created.body.toString(), 'created');
  t.true(
    created.rawHeaders!.some((b) => b.toString() === 'X-Custom'),
    "the script's spelling of names is kept",
  );
  const moved = await poolRequest(p, { path: '/redirect.php', settings });
  t.is(moved.status, 302);
  t.is(moved.headers.location, '/elsewhere?from=php');
});

test("an unknown script is the application's 404; a HEAD response has no body", async (t) => {
  const p = pool(t);
  const missing = await poolRequest(p, { path: '/nope.php', settings: scriptSettings(t.context.fpm.root) });
  t.is(missing.error, undefined);
  t.is(missing.status, 404);
  const head = await poolRequest(p, { method: 'HEAD', path: '/status.php', settings: scriptSettings(t.context.fpm.root) });
  t.is(head.status, 201);
  t.is(head.body.length, 0);
  t.deepEqual(head.calls, ['start', 'head', 'end']);
});

test('big download: streamed, and the script is held back while the handler is paused', async (t) => {
  const p = pool(t);
  const mb = 64;
  let paused = false;
  const progress = join(t.context.fpm.scratch, 'progress');
  let producedWhilePaused: Promise<number> | undefined;
  const reply = await poolRequest(p, {
    path: `/big.php?mb=${mb}`,
    settings: scriptSettings(t.context.fpm.root),
    onData(controller, total) {
      if (!paused && total >= 1 << 20) {
        paused = true;
        controller.pause();
        producedWhilePaused = new Promise((resolve) => setTimeout(resolve, 800)).then(async () => {
          const produced = Number(await readFile(progress, 'utf8').catch(() => '0'));
          controller.resume();
          return produced;
        });
      }
    },
  });
  t.is(reply.error, undefined);
  t.is(reply.body.length, mb << 20);
  t.true(reply.body.every((b) => b === 0x78));
  const produced = await producedWhilePaused!;
  t.true(produced > 0, 'the script reported progress');
  t.true(produced < (mb << 20) / 2, `the script had written ${produced} bytes while the reader was paused`);
});

test('big upload: streamed as STDIN with backpressure while the script does not read', async (t) => {
  const p = pool(t);
  const total = 64 << 20;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  const body = new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      sent += chunk.length;
      this.push(chunk);
    },
  });
  let sentAfterWait = 0;
  setTimeout(() => (sentAfterWait = sent), 1_000);
  const reply = await poolRequest(p, {
    method: 'POST',
    path: '/slow-upload.php?wait=1500',
    headers: ['content-length', String(total)],
    body,
    settings: scriptSettings(t.context.fpm.root),
  });
  t.is(reply.error, undefined);
  t.is(reply.body.toString(), String(total));
  t.true(sentAfterWait > 0);
  t.true(sentAfterWait < total / 2, `${sentAfterWait} bytes were taken from the client while the script read nothing`);
});

test('a worker killed mid-response is an error after the head, never a complete response', async (t) => {
  const p = pool(t);
  const reply = await poolRequest(p, { path: '/killed.php', settings: scriptSettings(t.context.fpm.root) });
  t.is(reply.status, 200);
  t.deepEqual(reply.calls, ['start', 'head', 'data', 'error']);
  // Closed before END_REQUEST: a reset (the worker died with bytes unread) or an orderly close.
  t.true(['ECONNRESET', 'UND_ERR_SOCKET'].includes(reply.error?.code ?? ''), reply.error?.code);
});

test("a body shorter than the script's Content-Length is an error even with END_REQUEST", async (t) => {
  const p = pool(t);
  const reply = await poolRequest(p, { path: '/short.php', settings: scriptSettings(t.context.fpm.root) });
  t.deepEqual(reply.calls, ['start', 'head', 'data', 'error']);
  t.regex(reply.error!.message, /shorter than its Content-Length 100000/);
});

test('STDERR is logged once per request, bounded', async (t) => {
  const { logger, lines } = capturedLogger();
  const p = pool(t, KEEP_ALIVE, { ...LIMITS, maxStderrBytes: 100 }, logger);
  const reply = await poolRequest(p, { path: '/stderr.php?n=5000', settings: scriptSettings(t.context.fpm.root) });
  t.is(reply.body.toString(), 'ok');
  const logged = lines.filter((l) => l.msg === 'FastCGI application wrote to stderr');
  t.is(logged.length, 1);
  t.regex(String(logged[0]!.stderr), /something odd: e+/);
  t.is(String(logged[0]!.stderr).length, 100);
  t.true(logged[0]!.truncated as boolean);
  // PHP itself cuts a message near 1 KiB; the log line keeps 100 bytes and counts the rest.
  t.true((logged[0]!.stderrBytes as number) > 500);
});

test('keep-alive: sequential requests reuse one connection; without a keep-alive profile each has its own', async (t) => {
  const kept = pool(t);
  for (let i = 0; i < 5; i++) t.is((await poolRequest(kept, { path: '/status.php', settings: scriptSettings(t.context.fpm.root) })).status, 201);
  t.is(kept.openConnections, 1);
  const single = pool(t, PER_REQUEST);
  t.is((await poolRequest(single, { path: '/status.php', settings: scriptSettings(t.context.fpm.root) })).status, 201);
  // The application closes its side after END_REQUEST; the pool closes too.
  for (let i = 0; i < 50 && single.openConnections > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(single.openConnections, 0);
});

test('at most keepAlive.maxConnections at once; further requests wait their turn', async (t) => {
  const p = pool(t);
  const settings = scriptSettings(t.context.fpm.root);
  let peak = 0;
  const watch = setInterval(() => (peak = Math.max(peak, p.openConnections)), 5);
  const replies = await Promise.all(Array.from({ length: 6 }, () => poolRequest(p, { path: '/slow.php?ms=150', settings })));
  clearInterval(watch);
  t.deepEqual(
    replies.map((r) => r.body.toString()),
    Array(6).fill('late'),
  );
  t.is(peak, 2);
});

test('abort during the response closes the connection; the next request gets a fresh one', async (t) => {
  const p = pool(t);
  const settings = scriptSettings(t.context.fpm.root);
  const reply = await poolRequest(p, { path: '/big.php?mb=8', settings, onHead: (c) => c.abort(new Error('client went away')) });
  t.is(reply.error?.message, 'client went away');
  t.deepEqual(reply.calls, ['start', 'head', 'error']);
  t.is((await poolRequest(p, { path: '/status.php', settings })).status, 201);
});

test('no response head within the response-head timeout', async (t) => {
  const p = pool(t);
  const reply = await poolRequest(p, { path: '/slow.php?ms=2000', headersTimeout: 200, settings: scriptSettings(t.context.fpm.root) });
  t.is(reply.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
});

test("nothing listening: the socket's ECONNREFUSED, which core treats as a connect failure", async (t) => {
  const p = new FastCgiPool('http://127.0.0.1:1', PER_REQUEST, LIMITS, undefined);
  t.teardown(() => p.destroy());
  const reply = await poolRequest(p, { settings: scriptSettings('/srv') });
  t.is(reply.error?.code, 'ECONNREFUSED');
  t.deepEqual(reply.calls, ['start', 'error']);
});

test('paths that decode to "..", or params too large, are refused before anything is sent', async (t) => {
  const p = pool(t, KEEP_ALIVE, { ...LIMITS, maxParamsBytes: 2048 });
  const settings = scriptSettings(t.context.fpm.root);
  const dots = await poolRequest(p, { path: '/a%2F..%2F..%2Fetc/passwd.php', settings });
  t.is((dots.error as { status?: number }).status, 400);
  const large = await poolRequest(p, { headers: ['x-big', 'v'.repeat(4000)], settings });
  t.is((large.error as { status?: number }).status, 431);
  t.is(p.openConnections, 0);
});
