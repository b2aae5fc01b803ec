/**
 * The image bounds glibc's malloc arenas (`MALLOC_ARENA_MAX` in the final stage's `ENV`): by default glibc gives
 * every thread that allocates its own arena, up to eight per core, and each keeps the memory it once held (V8's
 * compiler and GC threads, libuv's pool). Serving 1 MiB responses that was 20–28 MiB of the peak RSS
 * (docs/benchmarks.md, "Where the peak RSS goes"). Here a Node process with several threads allocating at once
 * counts the arenas it ended up with, without the bound and with the image's environment and flags.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { baseEnv, NODE_BIN } from '../e2e/support/paths.js';
import { envOf, final } from './dockerfile.js';

/** Worker threads the probe starts, each holding 4 MiB in 64 KiB ArrayBuffers (below malloc's mmap threshold). */
const THREADS = 4;

/**
 * Prints how many glibc arenas besides the main heap the process has: each is a 64 MiB-aligned reservation whose
 * used part is read-write and the rest inaccessible (glibc's `new_heap`), read from /proc/self/maps.
 */
const PROBE = `
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
const code = "import { parentPort } from 'node:worker_threads'; const keep = []; for (let i = 0; i < 64; i++) keep.push(new Uint8Array(65536).fill(1)); parentPort.postMessage(keep.length); setInterval(() => {}, 1000);";
const workers = Array.from({ length: ${THREADS} }, () => new Worker(code, { eval: true }));
await Promise.all(workers.map((w) => new Promise((ready) => w.once('message', ready))));
const HEAP = 64n << 20n;
const maps = readFileSync('/proc/self/maps', 'utf8').trim().split('\\n').map((line) => {
  const [range, perms, , , inode, path] = line.split(/\\s+/);
  const [start, end] = range.split('-').map((x) => BigInt('0x' + x));
  return { start, end, perms, anonymous: inode === '0' && !path };
});
let arenas = 0;
for (let i = 0; i + 1 < maps.length; i++) {
  const [used, rest] = [maps[i], maps[i + 1]];
  if (used.anonymous && rest.anonymous && used.perms === 'rw-p' && rest.perms === '---p' && used.start % HEAP === 0n
    && used.end === rest.start && used.end - used.start < HEAP && rest.end - used.start >= HEAP) arenas++;
}
console.log(arenas);
for (const w of workers) await w.terminate();
`;

const entryFlags = () => (JSON.parse(final.instructions.find((i) => i.op === 'ENTRYPOINT')!.args) as string[]).slice(1, -1);

function arenasUnder(env: NodeJS.ProcessEnv): number {
  const out = execFileSync(NODE_BIN, [...entryFlags(), '--input-type=module', '-e', PROBE], { env: baseEnv(env), encoding: 'utf8', timeout: 30_000 });
  return Number(out.trim());
}

test('the runtime image is glibc-based, where MALLOC_ARENA_MAX applies, and sets a small bound', (t) => {
  // distroless/nodejsNN-debianNN carries Debian's glibc; on a musl base (Alpine) the variable would do nothing.
  t.regex(final.from, /^gcr\.io\/distroless\/nodejs\d+-debian\d+/);
  const max = Number(envOf(final).get('MALLOC_ARENA_MAX'));
  t.true(Number.isInteger(max) && max >= 1 && max <= 2, `MALLOC_ARENA_MAX=${envOf(final).get('MALLOC_ARENA_MAX')} in the final stage's ENV`);
});

test("under the image's environment, threads that allocate at once share the bounded arenas", (t) => {
  const { header } = process.report.getReport() as { header: { glibcVersionRuntime?: string } };
  t.truthy(header.glibcVersionRuntime, 'this Node runs on glibc, as the image does');
  const max = Number(envOf(final).get('MALLOC_ARENA_MAX'));
  const unbounded = arenasUnder({});
  t.true(unbounded >= THREADS, `without the bound every allocating thread gets an arena (${unbounded} seen): the probe sees them`);
  const bounded = arenasUnder(Object.fromEntries(envOf(final)));
  t.true(bounded <= max - 1, `${bounded} arenas besides the main heap with MALLOC_ARENA_MAX=${max}`);
});
