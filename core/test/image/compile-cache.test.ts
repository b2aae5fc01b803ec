/**
 * The image carries Node's compile cache for the bundle: a stage of the final image runs the bundle's
 * `warm-compile-cache.js` (made by scripts/bundle.js) as the pod's user, and the final stage copies the cache in and
 * points NODE_COMPILE_CACHE at it. Here the Dockerfile's wiring is checked, then the warm step runs in the assembled
 * runtime tree and Warren starts from it with the image's command line: every module of the bundle it compiles on
 * the way to its first tunnel registration must come from the cache, but for the two entry points the cache leaves
 * out (their evaluation starts Warren).
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEdgeSimulator } from '../../src/edge-simulator/index.js';
import { cleanUpAfter, describeExit, spawnLogged, tempDir } from '../e2e/support/children.js';
import { baseEnv, NODE_BIN } from '../e2e/support/paths.js';
import { assembleRuntimeTree, envOf, final, ROOT, type Stage, stages } from './dockerfile.js';

const WARM = 'core/build/src/warm-compile-cache.js';

const argsOf = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);
const warmStage = () => stages.find((s) => argsOf(s, 'RUN').some((run) => run.includes(WARM)));
/** The warm step's exec-form command line. */
const warmCommand = (stage: Stage) => JSON.parse(argsOf(stage, 'RUN').find((r) => r.includes(WARM))!) as string[];

test('a stage of the final image bakes the compile cache as the pod user, and the final stage uses it', (t) => {
  const stage = warmStage();
  if (stage === undefined) return t.fail(`no stage runs ${WARM}`);
  t.is(stage.from, final.from, 'the same Node binary as the final image: the cache is only valid for the Node that made it');
  t.deepEqual(argsOf(stage, 'USER'), argsOf(final, 'USER'), 'the same user: Node keeps a cache per user id');
  t.deepEqual(argsOf(stage, 'WORKDIR'), argsOf(final, 'WORKDIR'));
  const runtimeCopy = argsOf(final, 'COPY').find((c) => c.endsWith(' /app /app'));
  t.truthy(runtimeCopy);
  t.true(argsOf(stage, 'COPY').includes(runtimeCopy!), 'the very tree the final image runs: entries are checked against their source');
  const run = warmCommand(stage);
  const entry = JSON.parse(argsOf(final, 'ENTRYPOINT')[0]!) as string[];
  t.deepEqual(
    run,
    [entry[0], ...entry.slice(1, -1), WARM],
    "exec form (the image has no shell), the entry point's Node with its flags: V8 rejects code cached under other flags",
  );
  const made = envOf(stage).get('NODE_COMPILE_CACHE');
  const used = envOf(final).get('NODE_COMPILE_CACHE');
  t.truthy(made);
  t.truthy(used);
  t.true(argsOf(final, 'COPY').includes(`--from=${stage.name} ${made} ${used}`), 'the final stage copies the cache where NODE_COMPILE_CACHE points');
});

test('Warren started from the image tree compiles every bundled module it loads before registering from the cache', async (t) => {
  const out = assembleRuntimeTree(t);
  const cache = join(tempDir('compile-cache'), 'cache');
  // The warm step as the image runs it (its Node flags included), then Warren as the image starts it.
  const warm = execFileSync(NODE_BIN, warmCommand(warmStage()!).slice(1), { cwd: out, env: baseEnv({ NODE_COMPILE_CACHE: cache }), encoding: 'utf8', timeout: 60_000 });
  t.is(warm, '', 'the warm step starts nothing and prints nothing');
  const entries = readdirSync(cache, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  t.true(entries.length > 20, `${entries.length} cache entries`);
  const modes = new Set(entries.map((e) => (statSync(join(e.parentPath, e.name)).mode & 0o777).toString(8)));
  t.deepEqual([...modes], ['644'], 'readable by the pod user once copied in owned by root, writable by no one else');

  const edge = await startEdgeSimulator({ edgeListeners: 1, eyeball: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => edge.close());
  const folder = tempDir('compile-cache-folder');
  writeFileSync(join(folder, 'ingress.yaml'), readFileSync(join(ROOT, 'examples/local/ingress.yaml')));
  const settings = join(tempDir('compile-cache-settings'), 'warren.json');
  writeFileSync(
    settings,
    JSON.stringify({ tunnel: { edgeAddresses: [...edge.edgeAddresses], edgeCaFile: edge.caFile, haConnections: 1 }, server: { listen: '127.0.0.1:0' } }),
  );

  const argv = JSON.parse(argsOf(final, 'ENTRYPOINT')[0]!) as string[];
  const warren = spawnLogged('warren-compile-cache', NODE_BIN, [...argv.slice(1), '--local', folder, '--config', settings], {
    cwd: out,
    env: baseEnv({ TUNNEL_TOKEN: edge.token, NODE_COMPILE_CACHE: cache, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' }),
  });
  cleanUpAfter(t, warren);
  await Promise.race([
    edge.waitForRegistrations(1, 30_000),
    warren.exited.then((exit) => Promise.reject(new Error(`warren exited: ${describeExit(exit)}\n${warren.stderr()}${warren.stdout()}`))),
  ]);
  warren.signal('SIGTERM');
  const exit = await warren.exited;
  t.is(exit.code, 0, describeExit(exit));

  // Node's own account of each module it compiled (NODE_DEBUG_NATIVE=COMPILE_CACHE).
  const bundle = `file://${join(out, 'core/build/src')}/`;
  const outcome = new Map<string, string>();
  for (const [, file, result] of warren.stderr().matchAll(/V8 code cache for ESM (\S+) was (\w+(?: \w+)?)/g)) {
    if (file!.startsWith(bundle)) outcome.set(file!.slice(bundle.length), result!);
  }
  t.true(outcome.size > 10, `${outcome.size} bundled modules compiled before the registration`);
  const notCached = [...outcome].filter(([, result]) => result !== 'accepted').map(([file]) => file);
  t.deepEqual(notCached.map((f) => f.replace(/-\w+\.js$/, '-*.js')).sort(), ['main-*.js', 'main.js'], 'only the two entry points compile afresh');
});
