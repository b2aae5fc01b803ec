/**
 * What one request allocates on Warren's data path, by site: the pipeline harness (connector + proxy pipeline,
 * `lib/warren-pipeline.js`) under V8's sampling heap profiler for exactly `--requests` tunnel streams, opened by
 * the edge simulator (its own process) against the bench origin (its own process), so every byte in the profile is
 * the connector process's: TLS reads, the HTTP/2 session, the exchange, the pipeline, undici, the response frames.
 *
 *   node bench/build/alloc.js [--build name=<tree>]… [--requests 10000] [--warmup 5000] [--concurrency 1,32]
 *     [--size 1024] [--interval 128] [--top 25] [--out /tmp/alloc] [--node-flags='…']
 *
 * Each `--build` (default: this tree as `this`) is the harness loading that tree's core, started under the image's
 * heap flags; the builds take turns per concurrency. Per cell: bytes allocated per request (objects collected since
 * included: what a request costs the young generation, not what stays), scavenges and mark-compacts per 10,000
 * requests, and the bytes per request of each site, a site being the innermost frame of Warren's own code or of
 * undici on the allocation's stack (Node's frame when neither is on it). Counts, not times, so they hold on a busy
 * machine; the sampling is statistical (one sample per `--interval` bytes on average, scaled by V8), which at 128
 * bytes and 10,000 requests puts a total within a fraction of a per cent. The profiles stay in `--out`.
 * `--node-flags` adds flags to the harness's (e.g. `--no-turbo-inlining`, which charges a function's bytes to it
 * rather than to the caller it was inlined into, for finding sites; it also keeps objects that escape analysis
 * would remove, so totals are read without it).
 *
 * `--survivors` samples only what outlives the young generation: objects a scavenge collected are left out, so a
 * site's bytes are what it promotes to the old generation (or what was still live at the window's end). Promoted
 * bytes are what the mark-compacts later pay for, and so the tail latency at high concurrency.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnJsonChild, type JsonChild } from './lib/child.js';
import { CHART_DEFAULT_OLD_SPACE, imageMallocEnv, imageNodeFlags } from './lib/image-flags.js';
import { streamLoadIn } from './lib/stream-load-client.js';

const { values } = parseArgs({
  options: {
    build: { type: 'string', multiple: true, default: [] },
    requests: { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '1,32' },
    size: { type: 'string', default: '1024' },
    interval: { type: 'string', default: '128' },
    top: { type: 'string', default: '25' },
    out: { type: 'string', default: '/tmp/warren-alloc' },
    'node-flags': { type: 'string', default: '' },
    survivors: { type: 'boolean', default: false },
  },
});
const requests = Number(values.requests);
const warmup = Number(values.warmup);
const levels = values.concurrency.split(',').map(Number);
const size = Number(values.size);
const here = new URL('.', import.meta.url).pathname;
const node = process.execPath;
const builds = (values.build.length ? values.build : [`this=${join(here, '../..')}`]).map((spec) => {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`--build ${spec}: expected name=<tree>`);
  return { name: spec.slice(0, eq), tree: spec.slice(eq + 1) };
});
mkdirSync(values.out, { recursive: true });

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface HeapNode {
  readonly callFrame: CallFrame;
  readonly selfSize: number;
  readonly children: HeapNode[];
}

const isOwned = (url: string) => /core\/build\/src\/|\/plugins\/[^/]+\/build\/|node_modules\/undici\//.test(url);
/** A site by function and file (no line: a site keeps its key across builds whose lines moved). */
const short = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${f.url.replace(/.*\/(node_modules|build)\//, '')}`;
const AREAS: ReadonlyArray<readonly [string, RegExp]> = [
  ['tunnel: HTTP/2 session, stream, HPACK', /core\/build\/src\/tunnel\/h2\//],
  ['tunnel: exchange, connection, serialization', /core\/build\/src\/tunnel\//],
  ['pipeline: proxy, routes, plugins', /core\/build\/src\/(proxy|routes|plugin-api)\/|\/plugins\/[^/]+\/build\//],
  ['undici', /node_modules\/undici\//],
  ['other Warren code', /core\/build\/src\//],
];

/** Bytes by site (innermost owned frame, else the leaf) and by area of the path. */
function attribute(profile: { head: HeapNode }): { total: number; sites: Map<string, number>; areas: Map<string, number> } {
  const sites = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode, stack: CallFrame[]): void => {
    stack.push(node.callFrame);
    if (node.selfSize > 0) {
      total += node.selfSize;
      let owner: CallFrame | undefined;
      for (let i = stack.length - 1; i >= 0 && !owner; i--) if (isOwned(stack[i]!.url)) owner = stack[i];
      const site = owner ? short(owner) : `${short(node.callFrame)} (no Warren or undici frame)`;
      sites.set(site, (sites.get(site) ?? 0) + node.selfSize);
      const area = owner ? (AREAS.find(([, re]) => re.test(owner.url))?.[0] ?? 'other') : 'Node only (no Warren or undici frame)';
      areas.set(area, (areas.get(area) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, stack);
    stack.pop();
  };
  walk(profile.head, []);
  return { total, sites, areas };
}

interface Cell {
  build: string;
  concurrency: number;
  requests: number;
  errors: number;
  bytes: ReturnType<typeof attribute>;
  gc: { minor: number; major: number; ms: number };
}

const env = { ...process.env, ...imageMallocEnv() };
const origin = spawnJsonChild(node, [...imageNodeFlags(), `${here}lib/origin-server.js`]);
const children: JsonChild[] = [origin];
const cells: Cell[] = [];
try {
  const { listening: originUrl } = await origin.next<{ listening: string }>((m) => typeof m.listening === 'string');
  const running = [];
  for (const build of builds) {
    const sim = spawnJsonChild(node, [...imageNodeFlags(), `${here}lib/simulator-process.js`], { input: true });
    children.push(sim);
    const info = await sim.next<{ edge: string; caFile: string; tokenFile: string }>((m) => typeof m.edge === 'string');
    const args = [
      ...imageNodeFlags(),
      CHART_DEFAULT_OLD_SPACE,
      ...values['node-flags'].split(' ').filter(Boolean),
      `${here}lib/warren-pipeline.js`,
      '--edge',
      info.edge,
      '--ca',
      info.caFile,
    ];
    args.push('--token-file', info.tokenFile, '--origin', originUrl, '--ha', '1', '--core', `${build.tree}/core/build/src`, '--alloc-window');
    const proc = spawnJsonChild(node, args, { input: true, env });
    children.push(proc);
    await Promise.race([sim.next((m) => typeof m.registered === 'number' && m.registered >= 1, 30_000), proc.next(() => false, 30_000)]);
    running.push({ build, sim, proc });
  }
  const load = (sim: JsonChild, concurrency: number, maxRequests: number) =>
    streamLoadIn(sim, { authority: 'bench.example.com', path: `/bytes/${size}`, concurrency, durationMs: 600_000, maxRequests });
  for (const concurrency of levels) {
    for (const { build, sim, proc } of running) {
      await load(sim, concurrency, warmup);
      const started = proc.nextNew((m) => m.allocStarted === true);
      proc.send({ allocStart: Number(values.interval), survivors: values.survivors });
      await started;
      const result = await load(sim, concurrency, requests);
      const file = join(values.out, `${build.name}-c${concurrency}.heapprofile`);
      const stopped = proc.nextNew<{ allocStopped: { gc: Cell['gc'] } }>((m) => typeof m.allocStopped === 'object', 120_000);
      proc.send({ allocStop: file });
      const { gc } = (await stopped).allocStopped;
      const cell = { build: build.name, concurrency, requests: result.requests, errors: result.errors, gc, bytes: attribute(JSON.parse(readFileSync(file, 'utf8'))) };
      cells.push(cell);
      process.stderr.write(
        `${build.name} c=${concurrency}: ${cell.requests} requests, ${cell.errors} errors, ${Math.round(cell.bytes.total / cell.requests)} B/request, ${gc.minor} scavenges\n`,
      );
    }
  }
} finally {
  for (const child of children.reverse()) await child.stop();
}

const perRequest = (bytes: number, cell: Cell) => Math.round(bytes / cell.requests).toLocaleString('en');
const per10k = (n: number, cell: Cell) => ((n * 10_000) / cell.requests).toFixed(1);
const header = (first: string) => `| ${first} | ${cells.map((c) => `${c.build} c=${c.concurrency}`).join(' | ')} |\n|---|${cells.map(() => '---:').join('|')}|\n`;
let text = `Node ${process.version}; ${size} B responses; ${requests} requests per cell after ${warmup} of warm-up; sampling interval ${values.interval} B; the image's heap flags${values.survivors ? '; only objects that outlived the young generation (promoted, or live at the end)' : ''}.\n\n`;
text += header('per request');
text += `| requests (errors) | ${cells.map((c) => `${c.requests} (${c.errors})`).join(' | ')} |\n`;
text += `| ${values.survivors ? 'bytes promoted' : 'bytes allocated'} | ${cells.map((c) => perRequest(c.bytes.total, c)).join(' | ')} |\n`;
text += `| scavenges per 10,000 requests | ${cells.map((c) => per10k(c.gc.minor, c)).join(' | ')} |\n`;
text += `| mark-compacts per 10,000 requests | ${cells.map((c) => per10k(c.gc.major, c)).join(' | ')} |\n`;
text += `| GC ms per 1,000 requests | ${cells.map((c) => ((c.gc.ms * 1000) / c.requests).toFixed(1)).join(' | ')} |\n\n`;
const rows = (pick: (c: Cell) => Map<string, number>, limit: number) => {
  const keys = new Map<string, number>();
  for (const c of cells) for (const [k, v] of pick(c)) keys.set(k, Math.max(keys.get(k) ?? 0, v / c.requests));
  return [...keys]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([k]) => `| ${k} | ${cells.map((c) => perRequest(pick(c).get(k) ?? 0, c)).join(' | ')} |\n`)
    .join('');
};
text += `${header('bytes per request, by area')}${rows((c) => c.bytes.areas, 100)}\n`;
text += `${header('bytes per request, by site')}${rows((c) => c.bytes.sites, Number(values.top))}`;
process.stdout.write(text);
