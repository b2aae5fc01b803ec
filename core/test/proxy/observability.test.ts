import test from 'ava';
import http from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { usesTls as usesTlsOf } from '../../src/proxy/compile.js';
import { loadBuiltinManifests } from '../../src/plugins/builtin.js';
import { ProtocolCatalog } from '../../src/routes/protocol.js';
import type { Route } from '../../src/routes/types.js';
import { startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

function get(url: string, path = '/'): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}${path}`, { agent: false, headers: { host: 'log.test' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
      .on('error', reject);
  });
}

async function logged(t: { teardown(f: () => unknown): void }, accessLog: Record<string, unknown>, requests: number) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const origin = await startOrigin();
  const proxy = await startProxyHarness({
    logger: pino({ level: 'info' }, sink),
    settings: { proxy: { accessLog } },
    table: testRouteTable([testRoute({ host: 'log.test', endpoints: [origin.key] })]),
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  for (let i = 0; i < requests; i++) await get(proxy.url, `/p${i}?token=secret-${i}`);
  return { lines: lines.filter((l) => l.component === 'access'), origin };
}

test('the access log records each exchange with route and upstream, never the query string', async (t) => {
  const { lines, origin } = await logged(t, { enabled: true, sampleRate: 1 }, 5);
  t.is(lines.length, 5);
  const first = lines[0]!;
  t.is(first.msg, 'request');
  t.is(first.method, 'GET');
  t.is(first.path, '/p0');
  t.is(first.status, 200);
  t.is(first.upstream, origin.key);
  t.is(first.host, 'log.test');
  t.is(typeof first.ms, 'number');
  t.false(JSON.stringify(lines).includes('secret-'), 'query strings are not logged');
});

test('access log sampling: rate 0 and disabled log nothing; a fraction logs about that share', async (t) => {
  t.is((await logged(t, { enabled: true, sampleRate: 0 }, 5)).lines.length, 0);
  t.is((await logged(t, { enabled: false, sampleRate: 1 }, 5)).lines.length, 0);
  const { lines } = await logged(t, { enabled: true, sampleRate: 0.5 }, 200);
  t.true(lines.length > 40 && lines.length < 160, `${lines.length} of 200 logged at rate 0.5`);
});

test('AUTO routes: TLS is guessed from the port name, then the port number (as the built-in manifests declare)', async (t) => {
  const catalog = new ProtocolCatalog(await loadBuiltinManifests());
  const usesTls = (route: Route) => usesTlsOf(route, catalog);
  const auto = (port: number, portName?: string) => testRoute({ endpoints: [`127.0.0.1:${port}`], port, portName, protocol: 'auto' });
  t.true(usesTls(auto(443)));
  t.true(usesTls(auto(8443)));
  t.false(usesTls(auto(8080)));
  t.true(usesTls(auto(9000, 'https-web')));
  t.true(usesTls(auto(9000, 'grpcs')));
  t.false(usesTls(auto(443, 'http')));
  t.true(usesTls(auto(443, 'web')));
  t.true(usesTls(testRoute({ endpoints: ['127.0.0.1:1'], protocol: 'wss' })));
  t.false(usesTls(testRoute({ endpoints: ['127.0.0.1:1'], protocol: 'h2c' })));
});
