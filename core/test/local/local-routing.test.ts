/**
 * The local-mode path without the edge: the example manifests (pointed at a demo origin on free ports) →
 * FolderSource → route builder → the real proxy pipeline behind its plain-HTTP entry point → the demo origin.
 * Editing a manifest must change where requests go, live.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startProxyHarness } from '../../src/testing/proxy-harness.js';
import { RouteTableBuilder, routingConfig } from '../../src/routes/index.js';
import { watchFolder } from './watch-folder.js';

const EXAMPLE = fileURLToPath(new URL('../../../../examples/local/', import.meta.url));
const ORIGIN = new URL('../../../../examples/local/origin/server.js', import.meta.url).href;

interface DemoOrigin {
  servers: Array<{ name: string; port: number }>;
  close(): Promise<void>;
}

test('requests follow the manifests in the folder, and follow an edit without a restart', async (t) => {
  const { startDemoOrigin } = (await import(ORIGIN)) as { startDemoOrigin: (o: unknown) => Promise<DemoOrigin> };
  const origin = await startDemoOrigin({
    services: [
      { name: 'web', port: 0 },
      { name: 'api', port: 0 },
    ],
  });
  t.teardown(() => origin.close());
  const [web, api] = origin.servers.map((s) => s.port) as [number, number];

  const folder = mkdtempSync(join(tmpdir(), 'warren-local-e2e-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(join(folder, 'ingress.yaml'), readFileSync(join(EXAMPLE, 'ingress.yaml')));
  const services = readFileSync(join(EXAMPLE, 'services.yaml'), 'utf8').replace('port: 3001', `port: ${web}`).replace('port: 3002', `port: ${api}`);
  writeFileSync(join(folder, 'services.yaml'), services);

  const harness = await startProxyHarness();
  t.teardown(() => harness.close());
  const builder = new RouteTableBuilder(routingConfig(harness.config, []));
  let published = Promise.resolve();
  const source = await watchFolder(t, folder, (s) =>
    s.onLoad(() => {
      published = harness.setTable(builder.build(s.snapshot(), s.takeChanges()));
    }),
  );
  await published;

  type Echo = { service: string; path: string; headers: Record<string, string> };
  const get = async (host: string, path: string): Promise<{ status: number; body: Echo | undefined }> => {
    const res = await request(`${harness.url}${path}`, { headers: { host } });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return { status: res.statusCode, body: undefined };
    }
    return { status: res.statusCode, body: (await res.body.json()) as Echo };
  };
  const app = await get('app.localhost:8080', '/hello');
  t.is(app.status, 200);
  t.is(app.body?.service, 'web');
  t.is(app.body?.path, '/hello');
  t.is(app.body?.headers.host, 'app.localhost:8080');
  t.is((await get('api.localhost', '/v1/items')).body?.service, 'api');
  t.is((await get('api.localhost', '/other')).status, 404);
  t.is((await get('unknown.localhost', '/')).status, 404);

  const events = await request(`${harness.url}/events?count=2&interval=10`, { headers: { host: 'app.localhost' } });
  t.is(events.headers['content-type'], 'text/event-stream');
  t.is((await events.body.text()).match(/^event: tick$/gm)?.length, 2);

  // Point app.localhost at the api Service by editing the Ingress.
  const changed = new Promise<void>((resolve) => {
    const off = source.onLoad(() => {
      off();
      resolve();
    });
  });
  const ingress = join(folder, 'ingress.yaml');
  writeFileSync(
    ingress,
    readFileSync(ingress, 'utf8')
      .replace('name: web', 'name: api')
      .replace(/port:\n\s+name: http/, 'port:\n                  number: 80'),
  );
  await changed;
  await published;
  t.is((await get('app.localhost', '/hello')).body?.service, 'api');
});
