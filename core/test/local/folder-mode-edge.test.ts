/**
 * Which edge a folder-mode Warren uses, decided from the tunnel settings exactly as Kubernetes mode decides its
 * tunnel mode, and what it refuses.
 */
import test from 'ava';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleWarren, folderModeEdge } from '../../src/bootstrap.js';
import { parseConfig } from '../../src/config/load.js';
import { ErrorCode } from '../../src/errors.js';
import { capturingLogger } from '../../src/testing/index.js';
import { freePort } from '../support/ports.js';

const folder = { source: { kind: 'folder', folder: '/nonexistent' } };

test('a supplied tunnel (env token, token file or credentials file) means the real edge; none means the simulator; disabled means neither', (t) => {
  t.is(folderModeEdge(parseConfig(folder), { TUNNEL_TOKEN: 'eyJh' }), 'tunnel');
  t.is(folderModeEdge(parseConfig({ ...folder, tunnel: { tokenFile: '/run/token' } }), {}), 'tunnel');
  t.is(folderModeEdge(parseConfig({ ...folder, tunnel: { credentialsFile: '/run/creds.json' } }), {}), 'tunnel');
  t.is(folderModeEdge(parseConfig(folder), { TUNNEL_TOKEN: '  ' }), 'simulator', 'a blank token is no token, as in Kubernetes mode');
  t.is(folderModeEdge(parseConfig(folder), {}), 'simulator');
  t.is(folderModeEdge(parseConfig({ ...folder, tunnel: { enabled: false } }), { TUNNEL_TOKEN: 'eyJh' }), 'none');
});

test('a managed tunnel is refused in folder mode, also when half configured, instead of silently running the demo', (t) => {
  const managed = parseConfig({ ...folder, cloudflare: { accountId: 'acc', tunnelName: 'laptop' } });
  for (const env of [{ CLOUDFLARE_API_TOKEN: 'x' }, {}]) {
    const err = t.throws(() => folderModeEdge(managed, env));
    t.is((err as { code?: string }).code, ErrorCode.ConfigInvalid);
    t.regex(err!.message, /folder mode cannot run a managed tunnel \(cloudflare\.tunnelName\).*TUNNEL_TOKEN/);
  }
  t.is(folderModeEdge(managed, { TUNNEL_TOKEN: 'eyJh', CLOUDFLARE_API_TOKEN: 'x' }), 'tunnel', 'a supplied tunnel wins, as in Kubernetes mode');
});

test('the demo refuses Cloudflare-side plugins (its tunnel does not exist in Cloudflare) and releases the simulator it started', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-folder-edge-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'empty.yaml'), '');
  const port = await freePort();
  const config = parseConfig({
    source: { kind: 'folder', folder: dir },
    local: { eyeballListen: `127.0.0.1:${port}` },
    server: { listen: '127.0.0.1:0' },
    plugins: { dns: { enabled: true } },
  });
  const err = await t.throwsAsync(assembleWarren(config, { logger: capturingLogger().logger, env: {} }));
  t.is((err as { code?: string }).code, ErrorCode.ConfigInvalid);
  t.regex(err!.message, /plugin cloud\.dns changes Cloudflare for a real tunnel, but no tunnel is configured/);
  // The simulator's eyeball port is free again: nothing was left listening.
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  t.pass();
});

test("the demo's simulator leaves nothing behind: closing Warren removes its CA key and tunnel token files", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-folder-edge-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig({ source: { kind: 'folder', folder: dir }, local: { eyeballListen: '127.0.0.1:0' }, server: { listen: '127.0.0.1:0' } });
  const warren = await assembleWarren(config, { logger: capturingLogger().logger, env: {} });
  const files = warren.simulator!.ca.dir;
  t.true(existsSync(join(files, 'ca.key')) && existsSync(warren.simulator!.tokenFile));
  await warren.close();
  t.false(existsSync(files));
});

test('folder mode reports its caches synced once the folder is read, as /readyz does', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-folder-edge-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'empty.yaml'), '');
  const config = parseConfig({ source: { kind: 'folder', folder: dir }, tunnel: { enabled: false }, server: { listen: '127.0.0.1:0', proxyListen: '127.0.0.1:0' } });
  const warren = await assembleWarren(config, { logger: capturingLogger().logger, env: {} });
  const stop = new AbortController();
  const running = warren.run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running.catch(() => undefined);
  });
  const synced = async () => (await warren.registry.getSingleMetric('warren_informer_caches_synced')?.get())?.values[0]?.value;
  const deadline = Date.now() + 10_000;
  while ((await synced()) !== 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(await synced(), 1);
});
