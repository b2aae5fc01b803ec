/**
 * What a folder-mode Warren with a supplied tunnel loads before and while it serves: the real entry point,
 * registering with the edge simulator, with a module hook that records every module it loads. Start-up CPU and
 * memory are mostly module loading (docs/benchmarks.md, "Start-up"), so code a mode never runs stays unloaded.
 */
import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEdgeSimulator } from '../../src/edge-simulator/index.js';
import { cleanUpAfter, spawnLogged, tempDir } from '../e2e/support/children.js';
import { baseEnv, MAIN_JS, NODE_BIN } from '../e2e/support/paths.js';

const HOOK = `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.LOADED_MODULES_FILE, loaded.join('\\n')));
`;

const MANIFESTS = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: default}
spec:
  ingressClassName: cloudflare-tunnel
  rules: [{host: app.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}]}}]
`;

test('folder mode with a supplied tunnel registers without loading the edge simulator or the Kubernetes control plane', async (t) => {
  const edge = await startEdgeSimulator();
  t.teardown(() => edge.close());
  const dir = tempDir('warren-startup-modules-');
  const folder = join(dir, 'manifests');
  const hook = join(dir, 'hook.mjs');
  const loadedFile = join(dir, 'loaded.txt');
  const configFile = join(dir, 'config.json');
  writeFileSync(hook, HOOK);
  mkdirSync(folder);
  writeFileSync(join(folder, 'app.yaml'), MANIFESTS);
  writeFileSync(
    configFile,
    JSON.stringify({
      logLevel: 'info',
      server: { listen: '127.0.0.1:0' },
      tunnel: { tokenFile: edge.tokenFile, edgeCaFile: edge.caFile, edgeAddresses: [...edge.edgeAddresses], haConnections: 1 },
    }),
  );
  const warren = spawnLogged('warren', NODE_BIN, [`--import=${hook}`, MAIN_JS, '--local', folder, '--config', configFile], {
    env: baseEnv({ LOADED_MODULES_FILE: loadedFile }),
    dir,
  });
  cleanUpAfter(t, warren);
  await warren.waitForOutput(/Registered tunnel connection/, 30_000, 'the first registration');
  const exit = await warren.stop(10_000);
  t.is(exit.code, 0, 'a graceful stop writes the list');
  const loaded = readFileSync(loadedFile, 'utf8').split('\n');
  const matching = (pattern: RegExp) => loaded.filter((url) => pattern.test(url));

  t.is(matching(/\/tunnel\/connector\.js$/).length, 1, 'the hook sees what is loaded: the connector ran');
  t.deepEqual(matching(/\/edge-simulator\//), [], 'the built-in edge simulator is loaded only for the demo');
  t.deepEqual(
    matching(/\/composition\/kubernetes\.js$|\/k8s\/(informers|leader-election|reflector)\.js$/),
    [],
    'the Kubernetes control plane is loaded only in Kubernetes mode',
  );
});
