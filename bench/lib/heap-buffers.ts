/**
 * What holds a process's ArrayBuffers: reads a heap snapshot (`v8.writeHeapSnapshot()`, or DevTools) and groups
 * every backing store of at least 1 KiB by its shortest retainer path from the GC roots (weak edges left out),
 * the first `--depth` steps of it, element indexes folded so that the chunks of one queue make one line.
 * A snapshot holds only what is reachable (taking one collects first), so the total is the live bytes, whatever
 * `process.memoryUsage().arrayBuffers` said before it.
 *
 *   node bench/build/lib/heap-buffers.js <file.heapsnapshot> [--depth 8] [--top 25]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface HeapSnapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: readonly string[];
      readonly node_types: readonly [readonly string[], ...unknown[]];
      readonly edge_fields: readonly string[];
      readonly edge_types: readonly [readonly string[], ...unknown[]];
    };
  };
  readonly nodes: readonly number[];
  readonly edges: readonly number[];
  readonly strings: readonly string[];
}

export interface RetainerGroup {
  /** Retainer path from the buffer up, `Holder.edge` per step. */
  readonly path: string;
  readonly bytes: number;
  readonly count: number;
}

const MIN_BYTES = 1024;

/** Live ArrayBuffer bytes of the snapshot grouped by retainer path, largest first. */
export function buffersByRetainer(heap: HeapSnapshot, depth: number): { total: number; groups: RetainerGroup[] } {
  const meta = heap.snapshot.meta;
  const nodeFields = meta.node_fields.length;
  const edgeFields = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSize = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = heap;
  const count = nodes.length / nodeFields;
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += nodes[i * nodeFields + nEdges]! * edgeFields;
    firstEdge[i + 1] = e;
  }
  const name = (i: number) => strings[nodes[i * nodeFields + nName]!]!;
  // Breadth first from the root (node 0): each node's parent on a shortest strong path.
  const parent = new Int32Array(count).fill(-1);
  const parentEdge = new Int32Array(count).fill(-1);
  parent[0] = 0;
  let level = [0];
  while (level.length > 0) {
    const next: number[] = [];
    for (const i of level) {
      for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += edgeFields) {
        const type = edgeTypes[edges[e + eType]!];
        if (type === 'weak' || type === 'shortcut') continue;
        const to = edges[e + eTo]! / nodeFields;
        if (parent[to] !== -1) continue;
        parent[to] = i;
        parentEdge[to] = e;
        next.push(to);
      }
    }
    level = next;
  }
  const edgeLabel = (e: number) => {
    const type = edgeTypes[edges[e + eType]!];
    return type === 'element' || type === 'hidden' ? '[n]' : strings[edges[e + eName]!]!.replace(/\[\d+\]/g, '[n]');
  };
  const groups = new Map<string, { bytes: number; count: number }>();
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (nodeTypes[nodes[i * nodeFields + nType]!] !== 'native' || !name(i).includes('JSArrayBufferData')) continue;
    const size = nodes[i * nodeFields + nSize]!;
    if (size < MIN_BYTES || parent[i] === -1) continue;
    total += size;
    const steps: string[] = [];
    for (let j = i; j !== 0 && steps.length < depth; j = parent[j]!) steps.push(`${name(parent[j]!).slice(0, 40)}.${edgeLabel(parentEdge[j]!)}`);
    const path = steps.join(' <- ');
    const group = groups.get(path) ?? { bytes: 0, count: 0 };
    group.bytes += size;
    group.count++;
    groups.set(path, group);
  }
  return { total, groups: [...groups].map(([path, g]) => ({ path, ...g })).sort((a, b) => b.bytes - a.bytes) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { depth: { type: 'string', default: '8' }, top: { type: 'string', default: '25' } } });
  if (positionals.length !== 1) throw new Error('usage: heap-buffers.js <file.heapsnapshot> [--depth 8] [--top 25]');
  const { total, groups } = buffersByRetainer(JSON.parse(readFileSync(positionals[0]!, 'utf8')) as HeapSnapshot, Number(values.depth));
  const mib = (bytes: number) => (bytes / 1048576).toFixed(2);
  process.stdout.write(`live ArrayBuffers of ${MIN_BYTES} bytes or more: ${mib(total)} MiB\n`);
  for (const g of groups.slice(0, Number(values.top))) process.stdout.write(`${mib(g.bytes)} MiB ${g.count}x  ${g.path}\n`);
}
