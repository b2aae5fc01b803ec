import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** One import that crosses folders: `from` and `to` are folders relative to the source root. */
export interface FolderEdge {
  from: string;
  to: string;
  /** A file and specifier that make this edge, for the failure message. */
  example: string;
}

// Static imports and re-exports (type-only ones included: a type import is a dependency of the design too),
// side-effect imports and dynamic imports of relative specifiers. Anchored at a line start, so prose in
// comments does not count.
const IMPORT = /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"](\.[^'"]+)['"]|^\s*import\s*['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/gm;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/**
 * The node a file belongs to: its folder relative to `root`. A file directly in `root` is a node of its own
 * (the entry points and the shared leaves such as errors.ts live there, and they are not one unit).
 */
function nodeOf(root: string, file: string): string {
  const folder = relative(root, dirname(file)).split(sep).join('/');
  return folder === '' ? relative(root, file).replace(/\.js$/, '.ts') : folder;
}

/** Every folder-to-folder import under `root`, one edge per ordered pair of folders. */
export function folderEdges(root: string): FolderEdge[] {
  const edges = new Map<string, FolderEdge>();
  for (const file of sourceFiles(root)) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const specifier = (match[1] ?? match[2] ?? match[3])!;
      const from = nodeOf(root, file);
      const to = nodeOf(root, resolve(dirname(file), specifier));
      const key = `${from} -> ${to}`;
      if (from !== to && !edges.has(key)) edges.set(key, { from, to, example: `${relative(root, file).split(sep).join('/')} imports ${specifier}` });
    }
  }
  return [...edges.values()];
}

/** Folders that import each other in a cycle, and one way round through the first of them. */
export interface FolderCycle {
  /** Every folder of the strongly connected group, sorted. */
  folders: string[];
  /** The imports of one cycle through `folders[0]`, each with a file that makes it. */
  path: FolderEdge[];
}

/** The import cycles between folders: one per strongly connected group of folders. */
export function folderCycles(edges: readonly FolderEdge[]): FolderCycle[] {
  const out = new Map<string, FolderEdge[]>();
  for (const edge of edges) out.set(edge.from, [...(out.get(edge.from) ?? []), edge]);
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const groups: string[][] = [];
  const visit = (node: string): void => {
    order.set(node, order.size);
    low.set(node, order.get(node)!);
    stack.push(node);
    for (const { to } of out.get(node) ?? []) {
      if (!order.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (stack.includes(to)) low.set(node, Math.min(low.get(node)!, order.get(to)!));
    }
    if (low.get(node) !== order.get(node)) return;
    const group: string[] = [];
    for (let member = stack.pop()!; ; member = stack.pop()!) {
      group.push(member);
      if (member === node) break;
    }
    if (group.length > 1) groups.push(group);
  };
  for (const node of [...out.keys()].sort()) if (!order.has(node)) visit(node);
  return groups.map((group) => ({ folders: group.sort(), path: cycleThrough(group, out) }));
}

/** A shortest way round from the group's first folder back to itself, staying inside the group. */
function cycleThrough(group: readonly string[], out: ReadonlyMap<string, FolderEdge[]>): FolderEdge[] {
  const start = group[0]!;
  const via = new Map<string, FolderEdge>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    for (const edge of out.get(queue[i]!) ?? []) {
      if (!group.includes(edge.to) || via.has(edge.to)) continue;
      via.set(edge.to, edge);
      if (edge.to === start) {
        const path: FolderEdge[] = [];
        for (let e = edge; ; e = via.get(e.from)!) {
          path.unshift(e);
          if (e.from === start) return path;
        }
      }
      queue.push(edge.to);
    }
  }
  throw new Error(`no cycle through ${start}`);
}

/** "a, b: a -> b (a/x.ts imports ../b/y.js) -> a (…)" */
export function describeCycle(cycle: FolderCycle): string {
  return `${cycle.folders.join(', ')}: ${[cycle.path[0]!.from, ...cycle.path.map((e) => `-> ${e.to} (${e.example})`)].join(' ')}`;
}
