/**
 * Routing-model benchmark: full route-table build time and memory, lookup cost, and incremental rebuilds after
 * one changed Ingress or EndpointSlice, at 1,000 and 10,000 Ingresses (5 paths each, 3 endpoints per backend).
 * Run: `npx tsc -b bench && npx node bench/build/routes.js` (or `npm run bench -- routes`).
 * Every loop is bounded by an iteration count. Full builds report wall time and the main thread's CPU time
 * (`process.threadCpuUsage`), which stays meaningful when other work competes for the cores.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { V1EndpointSlice, V1Ingress } from '@kubernetes/client-node';
import type * as Build from '../core/src/routes/build.js';
import type * as Plugins from '../core/src/routes/plugins.js';
import type * as Snapshot from '../core/src/routes/snapshot.js';

const core = (path: string) => new URL(`../../core/build/src/routes/${path}`, import.meta.url).href;
const { RouteTableBuilder } = (await import(core('build.js'))) as typeof Build;
const { RoutingPlugins } = (await import(core('plugins.js'))) as typeof Plugins;
const { snapshotKey } = (await import(core('snapshot.js'))) as typeof Snapshot;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const settings: Build.RoutingConfig = {
  ingressClass: { name: 'cloudflare-tunnel', controller: 'warren.dev/ingress-controller', watchWithoutClass: false },
  plugins: new RoutingPlugins([]),
};

let version = 0;

/** Ingress i: host app-i.example.com (every 10th a wildcard *.team-i.example.com), 5 paths, one Service. */
function makeIngress(i: number, variant = 0): V1Ingress {
  const backend = { service: { name: `svc-${i}`, port: { name: 'http' } } };
  return {
    kind: 'Ingress',
    metadata: {
      name: `app-${i}`,
      namespace: `ns-${i % 50}`,
      uid: `uid-${i}`,
      resourceVersion: String(++version),
      creationTimestamp: new Date(Date.UTC(2024, 0, 1) + i * 1000),
      annotations: i % 2 === 0 ? { 'warren.dev/connect-timeout': '5s', 'warren.dev/load-balancing': 'round-robin' } : {},
    },
    spec: {
      ingressClassName: 'cloudflare-tunnel',
      rules: [
        {
          host: i % 10 === 0 ? `*.team-${i}.example.com` : `app-${i}.example.com`,
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend },
              { path: variant === 0 ? '/api' : `/api-${variant}`, pathType: 'Prefix', backend },
              { path: '/api/v1', pathType: 'Prefix', backend },
              { path: '/static', pathType: 'ImplementationSpecific', backend },
              { path: '/healthz', pathType: 'Exact', backend },
            ],
          },
        },
      ],
    },
  };
}

function makeSlice(i: number, variant = 0): V1EndpointSlice {
  const base = (i * 3) % 60000;
  const addr = (n: number) => `198.18.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`;
  return {
    kind: 'EndpointSlice',
    metadata: { name: `svc-${i}-abcde`, namespace: `ns-${i % 50}`, resourceVersion: String(++version), labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: [0, 1, 2].map((k) => ({ addresses: [addr(base + k)], conditions: { ready: !(variant === 1 && k === 0) } })),
  };
}

function makeSnapshot(n: number): Snapshot.MutableClusterSnapshot {
  const s: Snapshot.MutableClusterSnapshot = {
    ingresses: new Map(),
    ingressClasses: new Map([['cloudflare-tunnel', { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } }]]),
    services: new Map(),
    endpointSlices: new Map(),
    secrets: new Map(),
  };
  for (let i = 0; i < n; i++) {
    const ns = `ns-${i % 50}`;
    s.ingresses.set(snapshotKey(ns, `app-${i}`), makeIngress(i));
    s.services.set(snapshotKey(ns, `svc-${i}`), {
      kind: 'Service',
      metadata: { name: `svc-${i}`, namespace: ns, resourceVersion: String(++version) },
      spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    s.endpointSlices.set(snapshotKey(ns, `svc-${i}-abcde`), makeSlice(i));
  }
  return s;
}

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const ms = (ns: number) => (ns / 1e6).toFixed(2);
const now = () => Number(process.hrtime.bigint());

interface Row {
  ingresses: number;
  build: string;
  buildCpu: string;
  heap: string;
  rss: string;
  lookupMedian: string;
  lookupP99: string;
  ingressDiff: string;
  ingressHint: string;
  sliceDiff: string;
  sliceHint: string;
}

function run(n: number): Row {
  const snapshot = makeSnapshot(n);
  // Full build: median of 3 fresh builders (the first also measures memory).
  const builds: number[] = [];
  const buildCpu: number[] = [];
  let heap = 0;
  let rss = 0;
  let builder!: Build.RouteTableBuilder;
  let table!: ReturnType<Build.RouteTableBuilder['build']>;
  for (let k = 0; k < 3; k++) {
    builder = undefined as never;
    table = undefined as never;
    gc();
    const before = process.memoryUsage();
    const c0 = process.threadCpuUsage();
    const t0 = now();
    builder = new RouteTableBuilder(settings);
    table = builder.build(snapshot);
    builds.push(now() - t0);
    const cpu = process.threadCpuUsage(c0);
    buildCpu.push((cpu.user + cpu.system) * 1000);
    gc();
    const after = process.memoryUsage();
    heap = after.heapUsed - before.heapUsed;
    rss = after.rss - before.rss;
  }
  if (table.routes.length !== n * 5 || table.diagnostics.length !== 0)
    throw new Error(`unexpected table: ${table.routes.length} routes, ${table.diagnostics.length} diagnostics`);

  // Lookups: a fixed mix of hits on exact hosts, hits under wildcards and misses, in batches of 100.
  const requests: Array<[string, string]> = [];
  const paths = ['/', '/api/v1/users?id=7', '/api/orders', '/static/app.js', '/healthz', '/unknown/deep/path'];
  for (let k = 0; k < 100_000; k++) {
    const i = (k * 7919) % n;
    const host = i % 10 === 0 ? `x${k % 7}.team-${i}.example.com` : k % 17 === 0 ? `missing-${i}.example.org` : `App-${i}.example.com:443`;
    requests.push([host, paths[k % paths.length]!]);
  }
  let sink = 0;
  for (const [h, p] of requests) sink += table.match(h, p) ? 1 : 0; // warm-up
  const batch = 100;
  const perOp: number[] = [];
  for (let b = 0; b + batch <= requests.length; b += batch) {
    const t0 = now();
    for (let k = b; k < b + batch; k++) if (table.match(requests[k]![0], requests[k]![1]) !== undefined) sink++;
    perOp.push((now() - t0) / batch);
  }
  perOp.sort((a, b) => a - b);
  if (sink === 0) throw new Error('no lookup matched');

  // Incremental: one changed Ingress, then one changed EndpointSlice; self-diffed and hinted builds.
  const rounds = 40;
  const ingressDiff: number[] = [];
  const ingressHint: number[] = [];
  const sliceDiff: number[] = [];
  const sliceHint: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const i = (r * 4099) % n;
    const ns = `ns-${i % 50}`;
    const ingressKey = snapshotKey(ns, `app-${i}`);
    const sliceKey = snapshotKey(ns, `svc-${i}-abcde`);
    snapshot.ingresses.set(ingressKey, makeIngress(i, r + 1));
    let t0 = now();
    table = builder.build(snapshot);
    ingressDiff.push(now() - t0);
    snapshot.ingresses.set(ingressKey, makeIngress(i, 0));
    t0 = now();
    table = builder.build(snapshot, { ingresses: [ingressKey] });
    ingressHint.push(now() - t0);
    snapshot.endpointSlices.set(sliceKey, makeSlice(i, 1));
    t0 = now();
    table = builder.build(snapshot);
    sliceDiff.push(now() - t0);
    snapshot.endpointSlices.set(sliceKey, makeSlice(i, 0));
    t0 = now();
    table = builder.build(snapshot, { endpointSlices: [sliceKey] });
    sliceHint.push(now() - t0);
    if (table.match(`App-${i}.example.com`, '/api/x')?.backend.endpoints.length !== 3 && i % 10 !== 0) throw new Error('incremental result wrong');
  }
  const med = (xs: number[]) =>
    ms(
      quantile(
        [...xs].sort((a, b) => a - b),
        0.5,
      ),
    );
  const p99 = (xs: number[]) =>
    ms(
      quantile(
        [...xs].sort((a, b) => a - b),
        0.99,
      ),
    );
  builds.sort((a, b) => a - b);
  buildCpu.sort((a, b) => a - b);
  return {
    ingresses: n,
    build: ms(builds[1]!),
    buildCpu: ms(buildCpu[1]!),
    heap: (heap / 2 ** 20).toFixed(1),
    rss: (rss / 2 ** 20).toFixed(1),
    lookupMedian: quantile(perOp, 0.5).toFixed(0),
    lookupP99: quantile(perOp, 0.99).toFixed(0),
    ingressDiff: `${med(ingressDiff)} / ${p99(ingressDiff)}`,
    ingressHint: `${med(ingressHint)} / ${p99(ingressHint)}`,
    sliceDiff: `${med(sliceDiff)} / ${p99(sliceDiff)}`,
    sliceHint: `${med(sliceHint)} / ${p99(sliceHint)}`,
  };
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
const rows = (sizes.length > 0 ? sizes : [1000, 10_000]).map(run);
process.stdout.write(
  [
    '| Ingresses (routes) | full build, wall (ms) | full build, main-thread CPU (ms) | heap Δ (MiB) | RSS Δ (MiB) | lookup median (ns/op) | lookup p99 (ns/op) | 1 Ingress changed, self-diffed (ms, median / p99) | 1 Ingress changed, hinted | 1 EndpointSlice changed, self-diffed | 1 EndpointSlice changed, hinted |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.ingresses.toLocaleString('en')} (${(r.ingresses * 5).toLocaleString('en')}) | ${r.build} | ${r.buildCpu} | ${r.heap} | ${r.rss} | ${r.lookupMedian} | ${r.lookupP99} | ${r.ingressDiff} | ${r.ingressHint} | ${r.sliceDiff} | ${r.sliceHint} |`,
    ),
    '',
  ].join('\n'),
);
