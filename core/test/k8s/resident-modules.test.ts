/**
 * The controller's resident module graph must not contain `@kubernetes/client-node`: importing it costs ~80 MB of
 * RSS (its generated models load as one graph), which is what kept the controller over its memory budget at
 * 10,000 Ingresses. Warren talks to the API server through its own client (core/src/k8s/api); client-node is a
 * type-only dependency at run time and a test driver in tests.
 *
 * The check loads what `warren` loads — the entry's assembly module and every built-in plugin package — in a fresh
 * Node process with a resolve hook that records every module, then looks for client-node among them.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BUILTIN_PLUGINS } from '../../src/plugins/builtin.js';

const run = promisify(execFile);
const bootstrap = new URL('../../src/bootstrap.js', import.meta.url).href;
const uninstall = new URL('../../src/uninstall.js', import.meta.url).href;

async function loadedModules(entries: readonly string[]): Promise<string[]> {
  const script = `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r; } });
    await import('reflect-metadata');
    for (const entry of ${JSON.stringify(entries)}) await import(entry);
    process.stdout.write(JSON.stringify([...seen]));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../../../', import.meta.url)),
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as string[];
}

test('the controller and its built-in plugins load without @kubernetes/client-node', async (t) => {
  const modules = await loadedModules([bootstrap, uninstall, ...Object.values(BUILTIN_PLUGINS)]);
  // The graph was really walked: Warren's own API client and each plugin package are in it.
  t.true(modules.some((m) => m.endsWith('/k8s/api/client.js')), 'own Kubernetes client loaded');
  t.true(modules.some((m) => m.includes('/plugins/tls/')), 'tls plugin loaded');
  t.true(modules.length > 50, `only ${modules.length} modules seen`);
  t.deepEqual(
    modules.filter((m) => m.includes('@kubernetes/client-node')),
    [],
  );
});

test('the check detects client-node when something does load it', async (t) => {
  const modules = await loadedModules(['@kubernetes/client-node']);
  t.true(modules.some((m) => m.includes('@kubernetes/client-node')));
});
