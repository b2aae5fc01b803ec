/**
 * There is no container engine here, so the image is checked from its Dockerfile: base images, user, entry point,
 * the production-only install, and — by running the Dockerfile's own assembly step against this checkout — that the
 * runtime tree (the bundle of core and the built-in plugins) holds everything its entries import, with production
 * dependencies only.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { assembleRuntimeTree, dockerfile, final, ROOT, stages, walk } from './dockerfile.js';

const NODE_24 = /^(node:24([.-]|$)|gcr\.io\/distroless\/nodejs24-)/;

test('every stage builds on Node 24, and the runtime is a minimal image without npm', (t) => {
  t.true(stages.length >= 2, 'multi-stage');
  for (const stage of stages) t.regex(stage.from, NODE_24, `stage ${stage.name ?? '(final)'}`);
  t.regex(final.from, /^gcr\.io\/distroless\/nodejs24-/);
  t.false(
    final.instructions.some((i) => i.op === 'RUN'),
    'the final stage runs no shell commands (it has no shell)',
  );
});

test('the Dockerfile is architecture-neutral, for a multi-arch buildx build', (t) => {
  const code = dockerfile
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'))
    .join('\n');
  t.notRegex(code, /amd64|arm64|x86_64|aarch64|armv7|ppc64le|s390x/i, 'no architecture is named outside comments');
  const build = stages.find((s) => s.name === 'build')!;
  t.is(build.platform, '$BUILDPLATFORM', 'the compile stage runs natively on the build machine (its output is JavaScript)');
  for (const stage of stages.filter((s) => s !== build)) t.is(stage.platform, undefined, `stage ${stage.name ?? '(final)'} is built per target platform`);
  t.false(code.includes('--platform=$TARGETPLATFORM'), 'nothing forces a platform on the target stages');
});

test('the runtime user is a numeric non-root UID and GID', (t) => {
  const users = final.instructions.filter((i) => i.op === 'USER');
  t.is(users.length, 1);
  const m = /^(\d+):(\d+)$/.exec(users[0]!.args);
  t.truthy(m, `USER ${users[0]!.args} is numeric uid:gid`);
  t.true(Number(m![1]) > 0 && Number(m![2]) > 0);
  // The chart runs the pod as the same user.
  const values = readFileSync(join(ROOT, 'chart', 'values.yaml'), 'utf8');
  t.regex(values, new RegExp(`runAsUser: ${m![1]}\\b`));
  t.regex(values, new RegExp(`runAsGroup: ${m![2]}\\b`));
});

test('the entry point is exec-form node, with a capped young generation and an old generation floor, on the bundled main, which the build makes and which runs', async (t) => {
  const entry = final.instructions.filter((i) => i.op === 'ENTRYPOINT');
  t.is(entry.length, 1);
  const argv = JSON.parse(entry[0]!.args) as string[];
  t.true(Array.isArray(argv), 'exec form, so node is PID 1 and receives SIGTERM');
  t.regex(argv[0]!, /\/node$/);
  const workdir = final.instructions.filter((i) => i.op === 'WORKDIR').at(-1)!.args;
  t.is(workdir, '/app');
  const main = argv.at(-1)!;
  const flags = argv.slice(1, -1);
  t.is(main, 'core/build/src/main.js');
  const out = assembleRuntimeTree(t);
  t.true(existsSync(join(out, main)), 'made by the assembly step (the bundle)');
  t.regex(readFileSync(join(out, main), 'utf8'), /linkBuiltinPlugins\(/, 'the bundled entry, not the compiled one');
  t.true(
    flags.every((f) => f.startsWith('--')),
    `only node options before the script: ${flags.join(' ')}`,
  );
  const semiSpace = (bound: string) => Number(flags.find((f) => f.startsWith(`--${bound}-semi-space-size=`))?.split('=')[1]);
  t.true(semiSpace('max') > 0, 'young generation capped (memory budget, docs/benchmarks.md)');
  t.true(semiSpace('min') > 0 && semiSpace('min') <= semiSpace('max'), 'young generation started larger than V8 would, below the cap (start-up CPU)');
  // The old generation's first limit: a floor under which streamed bodies do not make V8 collect it again and
  // again. Above the smallest old-space limit the chart allows (its NODE_OPTIONS), it would be a limit V8 cannot keep.
  const initialOld = Number(flags.find((f) => f.startsWith('--initial-old-space-size='))?.split('=')[1]);
  const chartMinimum = Number(/if lt \$oldSpace (\d+)/.exec(readFileSync(join(ROOT, 'chart', 'templates', '_node-options.tpl'), 'utf8'))?.[1]);
  t.true(initialOld > 0, 'old generation floor set (docs/benchmarks.md, "The V8 heap for streamed bodies")');
  t.true(initialOld <= chartMinimum, `old generation floor ${initialOld} MiB within the chart's smallest old-space limit ${chartMinimum} MiB`);
  // Node refuses an unknown option, so running with the image's flags proves they are valid for this Node. The
  // version comes from core/package.json, found relative to the bundle's files as to the compiled ones.
  const version = await new Promise<string>((done, fail) =>
    execFile(process.execPath, [...flags, join(out, main), '--version'], { timeout: 30_000 }, (err, stdout) => (err ? fail(err) : done(stdout))),
  );
  const { version: expected } = JSON.parse(readFileSync(join(ROOT, 'core', 'package.json'), 'utf8')) as { version: string };
  t.is(version.trim(), `warren ${expected}`);
});

test('the tree copied into the runtime image gets production dependencies only', (t) => {
  const copy = final.instructions.find((i) => i.op === 'COPY' && i.args.includes('--from='))!;
  const source = /--from=(\S+)/.exec(copy.args)![1];
  const stage = stages.find((s) => s.name === source)!;
  const installs = stage.instructions.filter((i) => i.op === 'RUN' && /\bnpm (ci|install|i)\b/.test(i.args));
  t.is(installs.length, 1);
  t.regex(installs[0]!.args, /\bnpm ci\b/);
  t.regex(installs[0]!.args, /--omit=dev\b/);
  t.regex(installs[0]!.args, /--ignore-scripts\b/);
});

test('the assembled runtime tree holds every workspace manifest and only compiled output', (t) => {
  const out = assembleRuntimeTree(t);
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  for (const pattern of root.workspaces) {
    const base = pattern.replace(/\/\*$/, '');
    const dirs = pattern.endsWith('/*') ? readdirSync(join(ROOT, base)).map((d) => `${base}/${d}`) : [base];
    for (const dir of dirs.filter((d) => existsSync(join(ROOT, d, 'package.json')))) {
      t.true(existsSync(join(out, dir, 'package.json')), `${dir}/package.json`);
    }
  }
  t.true(existsSync(join(out, 'package-lock.json')));
  t.true(existsSync(join(out, 'core/build/src/main.js')));
  const stray = walk(out).filter((f) => (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.includes('/test/') || f.includes('/bench/'));
  t.deepEqual(stray, []);
});

test('everything the entries of the bundle import is shipped or a production dependency', (t) => {
  const out = assembleRuntimeTree(t);
  const manifests = walk(out).filter((f) => f.endsWith('/package.json') || f === 'package.json');
  const allowed = new Set<string>();
  const workspaces = new Map<string, string>();
  for (const file of manifests) {
    const pkg = JSON.parse(readFileSync(join(out, file), 'utf8')) as { name: string; dependencies?: object; peerDependencies?: object };
    workspaces.set(pkg.name, dirname(file));
    for (const dep of [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]) allowed.add(dep);
  }
  const builtins = new Set(builtinModules);
  // The bin and every path core exports: the built-in plugins are inside the bundle.
  const core = JSON.parse(readFileSync(join(out, 'core', 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const entries = [...Object.values(core.bin), workspaceEntry(out, 'core', ''), workspaceEntry(out, 'core', '/plugin')].map((e) => posix.join('core', e));
  const seen = new Set<string>();
  const bare = new Map<string, string>();
  const queue = entries.map((e) => join(out, e));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    t.true(existsSync(file), `${relative(out, file)} is shipped`);
    if (!existsSync(file)) continue;
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        queue.push(resolve(dirname(file), spec));
        continue;
      }
      if (spec.startsWith('node:') || builtins.has(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      const workspace = workspaces.get(name);
      if (workspace !== undefined) {
        queue.push(join(out, workspace, workspaceEntry(out, workspace, spec.slice(name.length))));
        continue;
      }
      if (!bare.has(name)) bare.set(name, relative(out, file));
    }
  }
  t.true(seen.size > 10, 'the import graph was followed');
  const missing = [...bare].filter(([name]) => !allowed.has(name)).map(([name, from]) => `${name} (imported by ${from})`);
  t.deepEqual(missing, [], 'imported but not a production dependency of any workspace');
});

test('the build context keeps the sources and lockfile, and leaves out installed modules and stale builds', (t) => {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  t.false(
    patterns.some((p) => p.startsWith('!')),
    'no re-includes (kept simple on purpose)',
  );
  const toRegex = (p: string) =>
    new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '\0')
        .replace(/\*/g, '[^/]*')
        .replace(/\0/g, '(?:.*/)?')}(?:/.*)?$`,
    );
  const ignored = (path: string) => patterns.some((p) => toRegex(p).test(path));
  const needed = [
    'package.json',
    'package-lock.json',
    'tsconfig.base.json',
    'core/package.json',
    'core/tsconfig.json',
    'core/src/main.ts',
    'core/test/chart/helm.ts',
    'scripts/bundle.js',
  ];
  for (const plugin of readdirSync(join(ROOT, 'plugins'))) needed.push(`plugins/${plugin}/package.json`, `plugins/${plugin}/tsconfig.json`);
  for (const example of readdirSync(join(ROOT, 'examples', 'plugins'))) needed.push(`examples/plugins/${example}/package.json`);
  t.deepEqual(needed.filter(ignored), []);
  for (const path of [
    '.git/HEAD',
    'node_modules/zod/package.json',
    'core/node_modules/x',
    'core/build/src/main.js',
    'plugins/tls/build/src/index.js',
    'core/build/.tsbuildinfo',
  ]) {
    t.true(ignored(path), `${path} is left out of the context`);
  }
});

/** Import specifiers of a module, leaving out comment lines (bundled libraries name modules in their JSDoc). */
function importsOf(text: string): string[] {
  const source = text
    .split('\n')
    .filter((line) => !/^\s*(\*|\/\*|\/\/)/.test(line))
    .join('\n');
  const found: string[] = [];
  const patterns = [/(?:^|[\s;])(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g, /(?:^|[\s;])import\s*['"]([^'"]+)['"]/g, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) found.push(m[1]!);
  return found;
}

/** The file a package subpath (`''` or `/plugin`) of a workspace resolves to, per its `exports`. */
function workspaceEntry(out: string, workspace: string, subpath: string): string {
  const pkg = JSON.parse(readFileSync(join(out, workspace, 'package.json'), 'utf8')) as { exports?: Record<string, { default?: string } | string> };
  const target = pkg.exports?.[subpath ? `.${subpath}` : '.'];
  const file = typeof target === 'string' ? target : target?.default;
  if (!file) throw new Error(`${workspace} does not export ${subpath || '.'}`);
  return posix.normalize(file);
}
