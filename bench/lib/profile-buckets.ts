/**
 * Where a data-path process spends its CPU or allocates, by part of the path: reads a CPU profile
 * (`--cpu-prof`) or an allocation profile (`warren-pipeline.js --alloc-prof`) and puts every sample in the bucket
 * of the nearest frame on its stack that belongs to one (GC, idle and V8's own work by their pseudo-frames).
 *
 *   node bench/build/lib/profile-buckets.js <file.cpuprofile | file.heapprofile> [--requests N] [--top N]
 *
 * CPU: samples are counted (each one sampling interval of busy time), from the first sample inside the pipeline's
 * `handle` on, so start-up is left out. Allocations: bytes of every sample, start-up included (it is not per
 * request and lands in "Node, other"). With `--requests`, also per request.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

const BUCKETS: ReadonlyArray<readonly [string, (f: CallFrame) => boolean]> = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['V8 (program)', (f) => f.functionName === '(program)'],
  ['undici (upstream HTTP/1.1 client)', (f) => f.url.includes('node_modules/undici/')],
  ['metrics (prom-client)', (f) => f.url.includes('node_modules/prom-client/')],
  ['pipeline (core proxy, routes, plugins)', (f) => /core\/build\/src\/(proxy|routes|plugin-api)\/|\/plugins\/[^/]+\/build\//.test(f.url)],
  ['tunnel (Warren)', (f) => f.url.includes('core/build/src/tunnel/')],
  ['tunnel (node:http2, TLS, JS stream layer)', (f) => /^node:(internal\/(http2|tls|js_stream_socket|stream_base_commons)|_tls)/.test(f.url)],
];
const OTHER = 'Node, other (event loop, streams, timers)';

function bucketOf(stack: readonly CallFrame[]): string {
  for (const frame of stack) for (const [name, test] of BUCKETS) if (test(frame)) return name;
  return OTHER;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { requests: { type: 'string' }, top: { type: 'string', default: '0' } } });
const file = positionals[0];
if (!file) throw new Error('usage: profile-buckets.js <file.cpuprofile | file.heapprofile> [--requests N] [--top N]');
const requests = values.requests ? Number(values.requests) : undefined;
const totals = new Map<string, number>();
const leaves = new Map<string, number>();
let unit: string;

const add = (stack: readonly CallFrame[], amount: number): void => {
  const bucket = bucketOf(stack);
  totals.set(bucket, (totals.get(bucket) ?? 0) + amount);
  const leaf = stack[0]!;
  const key = `${leaf.functionName || '(anonymous)'} ${leaf.url.replace(/.*\/(node_modules|build)\//, '')}:${leaf.lineNumber}`;
  if (bucket !== 'idle') leaves.set(key, (leaves.get(key) ?? 0) + amount);
};

const profile = JSON.parse(readFileSync(file, 'utf8'));
if (Array.isArray(profile.samples) && Array.isArray(profile.nodes)) {
  // CPU profile: a node list with parent links by children, and the sampled node of each tick.
  interface Node {
    readonly id: number;
    readonly callFrame: CallFrame;
    readonly children?: number[];
  }
  const nodes = new Map<number, Node>((profile.nodes as Node[]).map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of nodes.values()) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackOf = (id: number): CallFrame[] => {
    const stack: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(nodes.get(at)!.callFrame);
    return stack;
  };
  const intervalMs = (profile.endTime - profile.startTime) / profile.samples.length / 1000;
  unit = 'ms';
  const first = (profile.samples as number[]).findIndex((id) => stackOf(id).some((f) => f.functionName === 'handle' && f.url.endsWith('proxy/pipeline.js')));
  for (const id of (profile.samples as number[]).slice(Math.max(0, first))) add(stackOf(id), intervalMs);
} else {
  // Sampling heap profile: a call tree whose nodes carry the bytes allocated there.
  interface HeapNode {
    readonly callFrame: CallFrame;
    readonly selfSize: number;
    readonly children: HeapNode[];
  }
  unit = 'B';
  const walk = (node: HeapNode, stack: CallFrame[]): void => {
    const here = [node.callFrame, ...stack];
    if (node.selfSize > 0) add(here, node.selfSize);
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head as HeapNode, []);
}

const busy = [...totals].filter(([name]) => name !== 'idle').reduce((sum, [, v]) => sum + v, 0);
const fmt = (v: number) => (unit === 'ms' ? v.toFixed(0) : (v / 2 ** 20).toFixed(1));
const perRequest = (v: number) => (requests ? ` | ${unit === 'ms' ? (v / requests).toFixed(4) : (v / requests).toFixed(0)}` : '');
process.stdout.write(`| bucket | ${unit === 'ms' ? 'ms' : 'MiB'} | share |${requests ? ` per request (${unit}) |` : ''}\n|---|---:|---:|${requests ? '---:|' : ''}\n`);
for (const [name, v] of [...totals].filter(([n]) => n !== 'idle').sort((a, b) => b[1] - a[1])) {
  process.stdout.write(`| ${name} | ${fmt(v)} | ${((100 * v) / busy).toFixed(1)} % |${perRequest(v).replace(/^ \| /, ' ')}${requests ? ' |' : ''}\n`);
}
process.stdout.write(`| total${unit === 'ms' ? ' (busy)' : ''} | ${fmt(busy)} | |${perRequest(busy).replace(/^ \| /, ' ')}${requests ? ' |' : ''}\n`);
for (const [key, v] of [...leaves].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  process.stdout.write(`${((100 * v) / busy).toFixed(1).padStart(5)} % ${key}\n`);
}
