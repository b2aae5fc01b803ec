#!/usr/bin/env node
// Bundles @warren/core with the built-in plugins into one module graph: the code the image runs. Input is the
// compiled tree (`tsc -b core plugins/*` first), so the bundle holds exactly the code the tests ran. Why: start-up is
// mostly resolving, reading and compiling ~850 modules, and one tree-shaken graph costs far less (docs/benchmarks.md,
// "Start-up").
//
//   node scripts/bundle.js [--out DIR] [--metafile FILE]
//
// DIR (default core/build/bundle) takes the place of core's compiled `build/src`: the Dockerfile writes the bundle
// into the image's /app/core/build/src, so every path core/package.json exports points into it.
// - Entries, one per export: `main.js` (the `warren` bin), `index.js` (`@warren/core`), `plugin-api/index.js`
//   (`@warren/core/plugin`); code they share sits in chunks beside main.js, loaded on demand. A custom plugin
//   (`extraPlugins`, loaded by package name from node_modules) that imports `@warren/core/plugin` therefore gets
//   the very modules the bundled core runs: one tsyringe registry (its `@injectable()` metadata is module state),
//   one copy of the contract. (`@warren/core/testing` is for tests and is not bundled.)
// - The built-in plugins are linked into the bundle (`linkBuiltinPlugins`), all in one chunk.
// - Chunks sit two folders below core/package.json, as the compiled files do: version.js reads the version from
//   `../../package.json` relative to itself.
// - zod's locales (64 modules, a third of zod) are left out but for English, the default: Warren's messages are
//   English and nothing selects another locale (`z.config`). Custom plugins bring their own zod (a peer dependency).
// - prom-client's one use of @opentelemetry/api (51 modules, ~6 ms at start) is for exemplars, which Warren does not
//   enable: in prom-client it is replaced by an object that throws, naming why, if it is ever used.
// - Node's built-in modules are loaded with require(), not import: Node 24's ESM view of `node:http` reads every
//   export, including the lazy WebSocket getters that load Node's own copy of undici (~30 ms of CPU at start). An
//   import that names what it takes reads just those names, once: through esbuild's CommonJS interop, every export
//   would be copied into a getter per importing module, and reading their descriptors loads what `node:util` hides
//   behind lazy getters (~4 MiB of resident memory and a few ms at start).
// - Whitespace and syntax are minified (identifiers are not, so stack traces keep function names): ~4 MiB less
//   resident memory. Source maps chain through tsc's own maps back to the TypeScript sources; Node reads them only
//   with `--enable-source-maps` (NODE_OPTIONS), which costs ~60 ms of CPU and ~20 MiB at start, so it is not the default.
// - `warm-compile-cache.js` beside main.js loads every module of the bundle except the two that start Warren (the
//   bin and core's main.js) without starting anything: the Dockerfile runs it once with NODE_COMPILE_CACHE set, so
//   that the image carries V8's compiled code for them and a start skips compiling ~2 MB of source
//   (docs/benchmarks.md, "Start-up").
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BUILTIN_PLUGINS } from '../core/build/src/plugins/builtin.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const compiled = join(root, 'core/build/src');
const { values } = parseArgs({ options: { out: { type: 'string', default: join(root, 'core/build/bundle') }, metafile: { type: 'string' } } });

/**
 * The built-in plugins, one namespace each, in one module: start-up reads every built-in's manifest, so all of them
 * load, and one chunk (one dynamic import) costs less than a chunk per plugin.
 */
const BUILTINS_MODULE = 'warren-builtin-plugins';
const builtinsModule = Object.values(BUILTIN_PLUGINS)
  .map((pkg, i) => `export * as p${i} from ${JSON.stringify(pkg)};`)
  .join('\n');

/** The `warren` bin: links the built-in plugins, then runs core's own entry (which checks the Node.js version first). */
const MAIN_ENTRY = 'warren-main-entry';
const mainEntry = `#!/usr/bin/env node
import { linkBuiltinPlugins } from './plugins/builtin.js';
const builtins = () => import(${JSON.stringify(BUILTINS_MODULE)});
linkBuiltinPlugins({
${Object.values(BUILTIN_PLUGINS)
  .map((pkg, i) => `  ${JSON.stringify(pkg)}: () => builtins().then((m) => m.p${i}),`)
  .join('\n')}
});
await import('./main.js');
`;
const mainEntryPlugin = {
  name: 'main-entry',
  setup(bundler) {
    bundler.onResolve({ filter: new RegExp(`^(${MAIN_ENTRY}|${BUILTINS_MODULE})$`) }, (args) => ({ path: args.path, namespace: MAIN_ENTRY }));
    bundler.onLoad({ filter: /.*/, namespace: MAIN_ENTRY }, (args) => ({
      contents: args.path === MAIN_ENTRY ? mainEntry : builtinsModule,
      resolveDir: compiled,
      loader: 'js',
    }));
  },
};

/** Resolves zod's locale index (`export * as locales`, from two of its modules) to English only; fails the build if zod no longer imports it. */
const englishOnlyZod = {
  name: 'english-only-zod',
  setup(bundler) {
    let replaced = 0;
    bundler.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)) return undefined;
      replaced++;
      return { path: join(dirname(args.importer), '../locales/index.js'), namespace: 'english-only-zod' };
    });
    bundler.onLoad({ filter: /.*/, namespace: 'english-only-zod' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
    bundler.onEnd((result) => {
      if (replaced === 0 && result.errors.length === 0) {
        result.errors.push({ text: "zod no longer imports '../locales/index.js': update the english-only-zod step in scripts/bundle.js" });
      }
    });
  },
};

/** Gives prom-client an @opentelemetry/api that throws on use (see above); anyone else gets the real one. */
const promClientWithoutOpenTelemetry = {
  name: 'prom-client-without-opentelemetry',
  setup(bundler) {
    bundler.onResolve({ filter: /^@opentelemetry\/api$/ }, (args) =>
      /[\\/]node_modules[\\/]prom-client[\\/]/.test(args.importer) ? { path: args.path, namespace: 'prom-client-without-opentelemetry' } : undefined,
    );
    bundler.onLoad({ filter: /.*/, namespace: 'prom-client-without-opentelemetry' }, () => ({
      contents: `module.exports = new Proxy({}, { get(_, key) {
  throw new Error('@opentelemetry/api.' + String(key) + ': not in this build of Warren (scripts/bundle.js), as prom-client uses it only for exemplars');
} });`,
      loader: 'js',
    }));
  },
};

/**
 * The names a module imports from `specifier` (`import a, { b, c as d } from '…'`): `{ hasDefault, names }`, or
 * undefined when it takes the whole namespace (`import * as`, `export * from`) or the statement is not found.
 */
function importedNames(source, specifier) {
  const quoted = `['"]${specifier.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}['"]`;
  const statements = [...source.matchAll(new RegExp(`(?:^|[;\\s])(import|export)\\s*([^'";]*?)\\s*from\\s*${quoted}`, 'g'))];
  if (statements.length === 0) return undefined;
  let hasDefault = false;
  const names = new Set();
  for (const [, keyword, clause] of statements) {
    if (!/^(?:[\w$]+\s*,?\s*)?(?:\{[^}]*\})?$/.test(clause)) return undefined;
    const braces = /\{([^}]*)\}/.exec(clause);
    if (keyword === 'import' && /^[\w$]/.test(clause)) hasDefault = true;
    for (const item of braces?.[1].split(',') ?? []) {
      const name = item.trim().split(/\s+as\s+/)[0];
      if (name === 'default') hasDefault = true;
      else if (name) names.add(name);
    }
  }
  return { hasDefault, names: [...names].sort() };
}

/**
 * Turns `import … from 'node:x'` into a require() of it (the banner's), see above. An import that names what it
 * takes gets a module exporting just those names, read once: otherwise esbuild's CommonJS interop copies every
 * export of the built-in module into a wrapper for each importing module, and reading their descriptors makes Node
 * load what some of them hide behind lazy getters (`node:util`'s, ~8 ms at start).
 */
const builtinsByRequire = {
  name: 'builtins-by-require',
  setup(bundler) {
    const builtins = new Set(builtinModules);
    const isBuiltin = (path) => path.startsWith('node:') || builtins.has(path);
    bundler.onResolve({ filter: /.*/ }, (args) => {
      if (!isBuiltin(args.path)) return undefined;
      if (args.kind === 'require-call' || args.kind === 'dynamic-import') return { path: args.path, external: true };
      const imported = args.kind === 'import-statement' ? importedNames(readFileSync(args.importer, 'utf8'), args.path) : undefined;
      if (imported === undefined) return { path: args.path, namespace: 'builtins-by-require' };
      const key = `${imported.hasDefault ? 'default,' : ''}${imported.names.join(',')}`;
      return { path: `${args.path}?${key}`, namespace: 'builtins-by-name', pluginData: { builtin: args.path, ...imported } };
    });
    bundler.onLoad({ filter: /.*/, namespace: 'builtins-by-require' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
    bundler.onLoad({ filter: /.*/, namespace: 'builtins-by-name' }, ({ pluginData: { builtin, hasDefault, names } }) => ({
      contents: [
        `const builtin = require(${JSON.stringify(builtin)});`,
        ...(hasDefault ? ['export default builtin;'] : []),
        ...(names.length > 0 ? [`export const { ${names.join(', ')} } = builtin;`] : []),
      ].join('\n'),
      loader: 'js',
    }));
  },
};

/** Gives a chunk the `require` that bundled CommonJS code and the built-in modules by name call (below). */
const REQUIRE_BANNER = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

/**
 * Blanks the banner in chunks that never name `require` (all but the one holding esbuild's `__require`, which the
 * others import): making a require function and the chunk's `import.meta` costs ~0.1 ms of CPU per chunk at start,
 * for ~45 chunks. The line stays (empty), so the source maps still match. Names in strings or comments count as uses.
 */
function dropUnusedRequireBanners(files) {
  for (const file of files) {
    const code = readFileSync(file, 'utf8');
    const at = code.indexOf(REQUIRE_BANNER);
    if (at < 0) throw new Error(`scripts/bundle.js: ${file} lacks the require banner`);
    if (/(?<![\w$.])require(?![\w$])/.test(code.slice(at + REQUIRE_BANNER.length))) continue;
    writeFileSync(file, code.slice(0, at) + code.slice(at + REQUIRE_BANNER.length));
  }
}

// A clean folder: chunk names carry content hashes, so stale chunks would pile up.
rmSync(values.out, { recursive: true, force: true });
const result = await build({
  entryPoints: [
    { in: MAIN_ENTRY, out: 'main' },
    { in: join(compiled, 'index.js'), out: 'index' },
    { in: join(compiled, 'plugin-api/index.js'), out: 'plugin-api/index' },
  ],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  outdir: values.out,
  chunkNames: '[name]-[hash]',
  plugins: [mainEntryPlugin, englishOnlyZod, promClientWithoutOpenTelemetry, builtinsByRequire],
  // Bundled CommonJS packages (pino, prom-client, undici, tsyringe) call require() for Node's built-in modules.
  banner: { js: REQUIRE_BANNER },
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
  metafile: true,
});
if (values.metafile) writeFileSync(values.metafile, JSON.stringify(result.metafile));
dropUnusedRequireBanners(Object.keys(result.metafile.outputs).filter((file) => file.endsWith('.js')));

// esbuild's metafile names files relative to the working folder, and the generated entry as `namespace:path`.
const metaPath = (path) => relative(process.cwd(), path).replaceAll('\\', '/');
/** Entries whose evaluation starts Warren: the bin and core's own main.js. */
const starters = new Set([`${MAIN_ENTRY}:${MAIN_ENTRY}`, metaPath(join(compiled, 'main.js'))]);
const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
const warmed = outputs.filter(([, output]) => !starters.has(output.entryPoint ?? '')).map(([file]) => `./${relative(values.out, file).replaceAll('\\', '/')}`);
if (outputs.length - warmed.length !== starters.size) {
  throw new Error(`scripts/bundle.js: expected ${[...starters].join(' and ')} among the entries: update the warm-compile-cache step`);
}
writeFileSync(
  join(values.out, 'warm-compile-cache.js'),
  `// Made by scripts/bundle.js. Loads the bundle's modules without starting Warren, so that a run with
// NODE_COMPILE_CACHE set stores V8's compiled code for each: the Dockerfile bakes that cache into the image. Node
// writes the cache readable by its own user only; made readable by all (not writable), it can be copied into the
// image owned by root.
import { chmodSync, readdirSync } from 'node:fs';
import { flushCompileCache, getCompileCacheDir } from 'node:module';
import { join } from 'node:path';
for (const file of ${JSON.stringify(warmed.sort(), null, 2)}) await import(file);
const cache = getCompileCacheDir();
if (cache === undefined) throw new Error('warm-compile-cache.js: the compile cache is not enabled (NODE_COMPILE_CACHE)');
flushCompileCache();
chmodSync(cache, 0o755);
for (const entry of readdirSync(cache, { withFileTypes: true, recursive: true })) {
  chmodSync(join(entry.parentPath, entry.name), entry.isDirectory() ? 0o755 : 0o644);
}
`,
);
