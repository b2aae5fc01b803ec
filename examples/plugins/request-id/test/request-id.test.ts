import test from 'ava';
import http from 'node:http';
import { parseConfig, resolvePlugins } from '@warren/core';
import { startOrigin, startProxyHarness, testRoute, testRouteTable, type TestRouteInit } from '@warren/core/testing';
import requestId, { REQUEST_ID_HEADER } from '../src/index.js';

/** Loads the plugin exactly as the controller does: `extraPlugins` by package name. */
async function harness(t: { teardown(f: () => unknown): void }, config: Record<string, unknown>, route: Partial<TestRouteInit> = {}) {
  const origin = await startOrigin({
    handler: (req, res) => res.end(JSON.stringify(req.headers)),
  });
  const settings = parseConfig({ extraPlugins: [{ package: '@warren-examples/plugin-request-id', config }] });
  const loaded = await resolvePlugins(settings);
  const proxy = await startProxyHarness({ loadedPlugins: loaded, table: testRouteTable([testRoute({ ...route, endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  return { proxy, loaded };
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ sent: Record<string, string | undefined>; received: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ sent: JSON.parse(body) as Record<string, string | undefined>, received: res.headers }));
      })
      .on('error', reject);
  });
}

test('loads through extraPlugins by package name and gives every request an id', async (t) => {
  const { proxy, loaded } = await harness(t, {});
  t.deepEqual(
    loaded.map((p) => [p.module.manifest.id, p.source]).filter(([id]) => id === 'example.request-id'),
    [['example.request-id', '@warren-examples/plugin-request-id']],
  );
  const a = await get(proxy.url);
  const b = await get(proxy.url);
  t.regex(a.sent['x-request-id']!, /^[0-9a-f-]{36}$/);
  t.not(a.sent['x-request-id'], b.sent['x-request-id']);
  t.is(a.received['x-request-id'], a.sent['x-request-id'], 'the client gets the same id back');
});

test('keeps a well-formed incoming id, replaces a malformed one', async (t) => {
  const { proxy } = await harness(t, {});
  t.is((await get(proxy.url, { 'x-request-id': 'edge-42' })).sent['x-request-id'], 'edge-42');
  const replaced = await get(proxy.url, { 'x-request-id': 'bad id; with spaces' });
  t.regex(replaced.sent['x-request-id']!, /^[0-9a-f-]{36}$/);
});

test('settings and the annotation choose the header; echo and trust can be turned off', async (t) => {
  const { proxy } = await harness(t, { header: 'X-Trace', echo: false, trustIncoming: false });
  const reply = await get(proxy.url, { 'x-trace': 'client-chosen' });
  t.regex(reply.sent['x-trace']!, /^[0-9a-f-]{36}$/);
  t.is(reply.received['x-trace'], undefined);
  const { proxy: annotated } = await harness(t, {}, { annotations: { 'request-id-header': 'x-correlation-id' } });
  const viaAnnotation = await get(annotated.url);
  t.truthy(viaAnnotation.sent['x-correlation-id']);
  t.is(viaAnnotation.sent['x-request-id'], undefined);
});

test('bad settings are refused at load time with the key named', async (t) => {
  const settings = parseConfig({ extraPlugins: [{ package: '@warren-examples/plugin-request-id', config: { header: 'not a header', colour: 'red' } }] });
  const err = await t.throwsAsync(resolvePlugins(settings));
  t.regex(err!.message, /extraPlugins\[0\]\.config\.header": got "not a header"/);
  t.regex(err!.message, /unknown setting "extraPlugins\[0\]\.config\.colour"/);
  t.is(REQUEST_ID_HEADER.schema.safeParse('x id').success, false);
  t.is(requestId.manifest.kind, 'policy');
});
