/**
 * Control-plane benchmark against a real kube-apiserver + etcd (the test harness, on 127.0.0.1): with 10,000
 * Ingresses loaded, how long from a change written to the apiserver until the route is in the RouteStore, and
 * until the proxy pipeline serves the new generation; plus initial sync time and the controller's memory.
 *
 * Run: `npx tsc -b core bench && npx node bench/build/controller.js [--ingresses 10000] [--services 1000]
 * [--iterations 100] [--paths 2] [--burst 300] [--alternate 6] [--no-traffic] [--route-labels]` (or `npm run bench -- controller`).
 * Needs the test binaries (scripts/test-binaries.sh). Every loop is bounded by a count; every wait by a timeout.
 *
 * With traffic (the default) the endpoints are the test-host addresses 198.18.0.2–4 (and 198.18.0.(4+k) for the
 * k-th EndpointSlice change), where this process runs one origin each: run it inside the test network namespace
 * (`bash scripts/in-test-netns.sh npx node bench/build/controller.js …`). The controller sends one request to every
 * host after the initial sync and again after the changes, and measures requests to unrelated hosts during the
 * burst of `--burst` Ingress changes (5 per second) against the same traffic without changes.
 */
import 'reflect-metadata';
import type { V1EndpointSlice, V1Ingress } from '@kubernetes/client-node';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseArgs } from 'node:util';
import { Writable } from 'node:stream';
import { Session } from 'node:inspector/promises';
import type * as Harness from '../core/test/support/apiserver.js';
import type * as Kubernetes from '../core/src/composition/kubernetes.js';
import type * as Root from '../core/src/composition/root.js';
import type * as Servers from '../core/src/composition/servers.js';
import type * as Parts from '../core/src/composition/parts.js';
import type * as Tokens from '../core/src/di/tokens.js';
import type * as Access from '../core/src/k8s/api/access.js';
import type * as Client from '../core/src/k8s/api/client.js';
import type * as Log from '../core/src/observability/logger.js';
import type * as ConfigLoad from '../core/src/config/load.js';
import type * as ProxyTesting from '../core/src/proxy/testing.js';
import type { RouteTable } from '../core/src/routes/types.js';
import { imageMallocEnv, imageNodeFlags } from './lib/image-flags.js';

const built = (path: string) => new URL(`../../core/build/${path}`, import.meta.url).href;
const { KUBERNETES, provideKubernetes } = (await import(built('src/composition/kubernetes.js'))) as typeof Kubernetes;
const { createRootContainer } = (await import(built('src/composition/root.js'))) as typeof Root;
const { PIPELINE, provideProxy } = (await import(built('src/composition/servers.js'))) as typeof Servers;
const { PARTS } = (await import(built('src/composition/parts.js'))) as typeof Parts;
const { TOKENS } = (await import(built('src/di/tokens.js'))) as typeof Tokens;
// The controller process loads only Warren's own modules (no client-node), so its memory is Warren's alone.
const { parseKubeconfig } = (await import(built('src/k8s/api/access.js'))) as typeof Access;
const { KubeClient, apiPath } = (await import(built('src/k8s/api/client.js'))) as typeof Client;
const { createLogger } = (await import(built('src/observability/logger.js'))) as typeof Log;
const { parseConfig } = (await import(built('src/config/load.js'))) as typeof ConfigLoad;

const { runExchange } = (await import(built('src/proxy/testing.js'))) as typeof ProxyTesting;
const { Registry } = await import('prom-client');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const { values: args } = parseArgs({
  options: {
    ingresses: { type: 'string', default: '10000' },
    services: { type: 'string', default: '1000' },
    iterations: { type: 'string', default: '100' },
    child: { type: 'boolean', default: false },
    /** Node options of the controller process; by default the image entry point's (`''` measures Node's defaults). */
    'node-flags': { type: 'string' },
    /** Leave the proxy pipeline out (isolates the control plane's own cost). */
    'no-pipeline': { type: 'boolean', default: false },
    /** Write a V8 heap snapshot of the controller process to this file once memory has settled. */
    'heap-snapshot': { type: 'string' },
    /** Also report where the controller's resident memory sits (Linux /proc/self/smaps), after the changes and settled. */
    smaps: { type: 'boolean', default: false },
    /** Write a V8 CPU profile of the controller process into this folder (node --cpu-prof). */
    'cpu-prof': { type: 'string' },
    /** Write a sampling heap profile of the burst's allocations, collected garbage included, to this file (.heapprofile). */
    'burst-heap-prof': { type: 'string' },
    /** Paths per Ingress rule (each a route). */
    paths: { type: 'string', default: '2' },
    /** Ingress host changes written at 5 per second after the measured changes (0: none). */
    burst: { type: 'string', default: '0' },
    /**
     * After the burst: this many rounds of 5 s with 25 host changes (5/s) then 5 s without, while the unrelated
     * requests run throughout, so both kinds of window share whatever else loads the machine (0: none).
     */
    alternate: { type: 'string', default: '0' },
    /** No requests: endpoints are 198.18.0.0/15 addresses that are never dialled. */
    'no-traffic': { type: 'boolean', default: false },
    /** Opt in to per-route metric labels (proxy.metrics.routeLabels, no cap): the metric shape before it was opt-in. */
    'route-labels': { type: 'boolean', default: false },
  },
});
const INGRESSES = Number(args.ingresses);
const SERVICES = Number(args.services);
if (INGRESSES < 3 * SERVICES) throw new RangeError('--ingresses must be at least 3 × --services');
const ITERATIONS = Number(args.iterations);
const PATHS = Number(args.paths);
const BURST = Number(args.burst);
const ALTERNATE = Number(args.alternate);
const TRAFFIC = !args['no-traffic'];
/** Port of the loopback origins (set from the parent's input in the controller process). */
let originPort = 0;
const NAMESPACES = 10;
const ns = (i: number) => `bench-${i % NAMESPACES}`;

/** A non-loopback address for endpoint `k` of service `s` (198.18.0.0/15; never dialled by this benchmark). */
const addr = (s: number, k: number) => (TRAFFIC ? `198.18.0.${2 + k}` : `198.18.${1 + Math.floor((s * 3 + k) / 250)}.${1 + ((s * 3 + k) % 250)}`);
/** The address endpoint 0 gets in the `variant`-th EndpointSlice change. */
const variantAddr = (variant: number) => (TRAFFIC ? `198.18.0.${4 + variant}` : `198.19.${Math.floor(variant / 250)}.${1 + (variant % 250)}`);
// With traffic every endpoint is a test-host address (198.18.0.2–41) with an origin behind it.
if (TRAFFIC && ITERATIONS > 37) throw new RangeError('with traffic, --iterations is at most 37 (test-host addresses 198.18.0.5–41)');

function serviceBody(s: number) {
  return { metadata: { name: `svc-${s}`, namespace: ns(s) }, spec: { clusterIP: 'None', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } };
}

function sliceBody(s: number, variant = 0): V1EndpointSlice {
  return {
    metadata: { name: `svc-${s}-a`, namespace: ns(s), labels: { 'kubernetes.io/service-name': `svc-${s}` } },
    addressType: 'IPv4',
    endpoints: [0, 1, 2].map((k) => ({ addresses: [k === 0 && variant > 0 ? variantAddr(variant) : addr(s, k)], conditions: { ready: true } })),
    ports: [{ name: 'http', port: TRAFFIC ? originPort : 8080, protocol: 'TCP' }],
  };
}

function ingressBody(i: number, host = `app-${i}.bench.example`): V1Ingress {
  const s = i % SERVICES;
  // Same namespace as its Service: Ingress i uses Service i mod SERVICES, and NAMESPACES divides SERVICES.
  const backend = { service: { name: `svc-${s}`, port: { name: 'http' } } };
  return {
    metadata: { name: `app-${i}`, namespace: ns(s) },
    spec: {
      ingressClassName: 'cloudflare-tunnel',
      rules: [
        { host, http: { paths: ['/', '/api', '/static', '/v1', '/assets', '/img', '/auth', '/docs'].slice(0, PATHS).map((path) => ({ path, pathType: 'Prefix', backend })) } },
      ],
    },
  };
}

async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(name: string, samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(1);
  return `| ${name} | ${s.length} | ${f(percentile(s, 50))} | ${f(percentile(s, 90))} | ${f(percentile(s, 99))} | ${f(s[s.length - 1]!)} |`;
}

/** Resident MB per kind of mapping: the node binary, other files, glibc's heap, anonymous memory (V8 and malloc arenas). */
function residentByMapping(): Array<[string, number]> {
  const totals = new Map<string, number>();
  let current = 'anonymous';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1]!.trim();
      current = name === '' ? 'anonymous' : name === '[heap]' ? 'brk heap' : name.endsWith('/node') ? 'node binary' : name.startsWith('[') ? name : 'other files';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) totals.set(current, (totals.get(current) ?? 0) + Number(rss[1]) / 1024);
  }
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .filter(([, v]) => v >= 1)
    .map(([k, v]) => [k, Math.round(v)]);
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

/** What the parent hands the child that runs the controller. */
interface ChildInput {
  readonly adminConfig: string;
  readonly controllerConfig: string;
  readonly controllerNamespace: string;
  readonly setupSeconds: number;
  readonly originPort: number;
}

/** One keep-alive origin per address, all on one port. Retries with another port on a clash. */
async function startOrigins(addresses: readonly string[]): Promise<{ port: number; close: () => void }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const servers: http.Server[] = [];
    let port = 0;
    try {
      for (const address of addresses) {
        const server = http.createServer({ keepAliveTimeout: 120_000 }, (_req, res) => res.end('ok'));
        servers.push(server);
        server.listen(port, address);
        await once(server, 'listening');
        port = (server.address() as { port: number }).port;
      }
      return {
        port,
        close: () => {
          for (const x of servers) x.close();
        },
      };
    } catch {
      for (const x of servers) x.close();
    }
  }
  throw new Error('no free port for the loopback origins');
}

if (args.child) {
  const input = await new Promise<ChildInput>((resolve) => process.once('message', (m) => resolve(m as ChildInput)));
  const lines = await runController(input);
  process.send!({ lines }, () => process.exit(0));
} else {
  const harness = (await import(built('test/support/apiserver.js'))) as typeof Harness;
  const server = await harness.startApiServer();
  const origins = TRAFFIC ? await startOrigins([addr(0, 0), addr(0, 1), addr(0, 2), ...Array.from({ length: ITERATIONS }, (_, k) => variantAddr(k + 1))]) : undefined;
  originPort = origins?.port ?? 0;
  try {
    const admin = harness.adminClients(server);
    process.stderr.write(`apiserver up at ${server.url}; creating ${SERVICES} Services + EndpointSlices and ${INGRESSES} Ingresses\n`);
    const setupStarted = performance.now();
    await admin.networking.createIngressClass({ body: { metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } } });
    for (let n = 0; n < NAMESPACES; n++) await admin.core.createNamespace({ body: { metadata: { name: `bench-${n}` } } });
    const serviceIds = Array.from({ length: SERVICES }, (_, s) => s);
    await pool(serviceIds, 16, (s) => admin.core.createNamespacedService({ namespace: ns(s), body: serviceBody(s) }));
    await pool(serviceIds, 16, (s) => admin.discovery.createNamespacedEndpointSlice({ namespace: ns(s), body: sliceBody(s) }));
    await pool(
      Array.from({ length: INGRESSES }, (_, i) => i),
      16,
      (i) => admin.networking.createNamespacedIngress({ namespace: ns(i % SERVICES), body: ingressBody(i) }),
    );
    const setupSeconds = (performance.now() - setupStarted) / 1000;
    // The controller runs in a child process so its memory is measured alone, authenticating with the
    // least-privilege ServiceAccount token of deploy/rbac.yaml, under the image's Node flags (unless --node-flags)
    // and allocator environment.
    const controllerConfig = server.configForToken(await server.controllerToken()).exportConfig();
    const execArgv = [
      ...(args['node-flags'] === undefined ? imageNodeFlags() : args['node-flags'].split(' ').filter(Boolean)),
      ...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`] : []),
    ];
    const child = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--child'], { execArgv, env: { ...process.env, ...imageMallocEnv() } });
    const result = new Promise<{ lines: string[] }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { lines: string[] }));
      child.once('exit', (code) => reject(new Error(`controller process exited with ${code}`)));
    });
    child.send({
      adminConfig: server.adminConfig().exportConfig(),
      controllerConfig,
      controllerNamespace: harness.CONTROLLER_NAMESPACE,
      setupSeconds,
      originPort,
    } satisfies ChildInput);
    const { lines } = await result;
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    origins?.close();
    await server.stop();
  }
}

async function runController(input: ChildInput): Promise<string[]> {
  const admin = new KubeClient(parseKubeconfig([{ path: 'admin.kubeconfig', text: input.adminConfig }]));
  const client = new KubeClient(parseKubeconfig([{ path: 'controller.kubeconfig', text: input.controllerConfig }]));
  const ingressPath = (namespace: string, name?: string) => apiPath('networking.k8s.io/v1', 'ingresses', namespace, name);
  const setupSeconds = input.setupSeconds;
  originPort = input.originPort;
  const config = parseConfig({
    logLevel: 'warn',
    tunnel: { enabled: false },
    proxy: { ...(args['route-labels'] ? { metrics: { routeLabels: true, maxRouteLabelSets: 100_000 } } : {}) },
    kubernetes: { leaderElection: { leaseNamespace: input.controllerNamespace } },
  });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const logger = createLogger({ level: 'warn', destination: sink });
  const registry = new Registry();
  // Assembled the way production is (the same container providers), with the benchmark's API client.
  const root = createRootContainer(parseConfig({ ...config, shutdownGracePeriod: 5_000 }), { logger, registry, env: {} });
  root.register(PARTS.KubeClient, { useValue: client });
  provideKubernetes(root);
  const withPipeline = !args['no-pipeline'];
  if (withPipeline) provideProxy(root);
  root.resolve(PARTS.TunnelState).identify('bench-tunnel');
  const cp = root.resolve(KUBERNETES);
  const store = root.resolve(TOKENS.RouteStore);
  const manager = root.resolve(PARTS.Manager);
  const pipeline = withPipeline ? root.resolve(PIPELINE) : undefined;
  // Subscribed before anything else, so it sees each publish first (listeners run in subscription order).
  const publishedAt = new Map<number, number>();
  store.subscribe((t) => publishedAt.set(t.generation, performance.now()));
  gc();
  const baseline = process.memoryUsage();
  // Resident-memory peaks by phase, sampled every 20 ms (no forced GC: what the pod's limit sees).
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
  const takePeak = (): number => {
    const peak = Math.max(peakRss, process.memoryUsage.rss());
    peakRss = 0;
    return peak;
  };
  const stop = new AbortController();
  const startedAt = performance.now();
  const running = manager.run(stop.signal);
  await cp.informers.waitForSync();
  const syncedMs = performance.now() - startedAt;
  const first = await store.waitFor((t) => t.ownedIngresses.length === INGRESSES, { timeout: 120_000 });
  const firstTableMs = performance.now() - startedAt;
  await cp.routeSync.idle();
  const buildsAtStart = cp.routeSync.builds;
  const buildSeconds = await registry.getSingleMetricAsString('warren_route_table_build_duration_seconds');
  const firstBuildSum = Number(/_sum (\S+)/.exec(buildSeconds)?.[1] ?? NaN) * 1000;
  if (withPipeline) {
    await waitFor(() => (pipeline!.generation ?? 0) >= first.generation, 60_000, 'the pipeline to compile the first table');
    await pipeline!.whenCompiled(); // every route compiled, not only the generation live
  }
  await cp.status.idle();
  const statusesWrittenMs = performance.now() - startedAt;
  const startupPeak = takePeak();
  gc();
  const loaded = process.memoryUsage();

  /** One request to each host (32 at a time); returns how many answered 200 and the /metrics size after. */
  async function everyHost(hosts: readonly string[]): Promise<{ ok: number; seconds: number; metricsBytes: number; scrapeMs: number }> {
    let ok = 0;
    const t0 = performance.now();
    if (TRAFFIC && withPipeline) {
      await pool(hosts, 32, async (authority) => {
        const r = await runExchange(pipeline!, { authority, path: '/' });
        if (r.response?.status === 200) ok++;
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    const s0 = performance.now();
    const metricsBytes = Buffer.byteLength(await registry.metrics());
    return { ok, seconds, metricsBytes, scrapeMs: performance.now() - s0 };
  }
  const hostsAtStart = Array.from({ length: INGRESSES }, (_, i) => `app-${i}.bench.example`);
  const trafficAtStart = await everyHost(hostsAtStart);
  const trafficPeak = takePeak();
  gc();
  const loadedWithTraffic = process.memoryUsage();

  /**
   * Latency of requests to `hosts` (round robin, `concurrency` at a time) until `deadline`, ms; answers other than
   * 200 are counted by status, not sampled (on a starved machine an exchange can time out; the run goes on).
   */
  async function probe(hosts: readonly string[], deadline: number, concurrency = 4): Promise<{ samples: number[]; startedAt: number[]; failed: Map<number, number> }> {
    const samples: number[] = [];
    const startedAt: number[] = [];
    const failed = new Map<number, number>();
    let n = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline && samples.length < 1_000_000) {
          const t = performance.now();
          const r = await runExchange(pipeline!, { authority: hosts[n++ % hosts.length]!, path: '/' });
          const status = r.response?.status ?? r.failure?.status ?? 0;
          if (status === 200) {
            samples.push(performance.now() - t);
            startedAt.push(t);
          } else failed.set(status, (failed.get(status) ?? 0) + 1);
        }
      }),
    );
    return { samples, startedAt, failed };
  }

  /** Time from just before `write` until the watch delivered it, the store, and the pipeline hold it. */
  let lastWatchEvent = 0;
  cp.informers.onChange((kind) => {
    if (kind === 'Ingress' || kind === 'EndpointSlice') lastWatchEvent = performance.now();
  });
  const watchLatency: number[] = [];
  async function measure(write: () => Promise<unknown>, done: (t: RouteTable) => boolean, prepare?: () => Promise<void>): Promise<[number, number]> {
    // Isolated changes: let the coalescing window (kubernetes.resyncBurstWindow) of the previous build pass.
    await new Promise((r) => setTimeout(r, 2 * config.kubernetes.resyncBurstWindow));
    await cp.status.idle();
    await prepare?.();
    const t0 = performance.now();
    const reached = store.waitFor(done, { timeout: 30_000 });
    await write();
    const table = await reached;
    const inStore = (publishedAt.get(table.generation) ?? performance.now()) - t0;
    watchLatency.push(lastWatchEvent - t0);
    if (withPipeline) await waitFor(() => (pipeline!.generation ?? 0) >= table.generation, 30_000, 'the pipeline');
    return [inStore, performance.now() - t0];
  }

  const results: Record<string, [number[], number[]]> = { create: [[], []], update: [[], []], slice: [[], []] };
  const cpuBefore = process.cpuUsage();
  const changesStarted = performance.now();
  for (let k = 0; k < ITERATIONS; k++) {
    const i = INGRESSES + k;
    const host = `new-${k}.bench.example`;
    const [a, b] = await measure(
      () => admin.post(ingressPath(ns(i % SERVICES)), ingressBody(i, host)),
      (t) => t.match(host, '/') !== undefined,
    );
    results.create![0].push(a);
    results.create![1].push(b);

    // Renamed Ingresses come from above 2·SERVICES; the slice probe below uses Ingress s + SERVICES.
    const target = 2 * SERVICES + ((k * 97) % (INGRESSES - 2 * SERVICES));
    const renamed = `moved-${k}.bench.example`;
    let current: V1Ingress | undefined;
    const [c, d] = await measure(
      () => admin.put(ingressPath(ns(target % SERVICES), `app-${target}`), current!),
      (t) => t.match(renamed, '/') !== undefined,
      async () => {
        current = await admin.get<V1Ingress>(ingressPath(ns(target % SERVICES), `app-${target}`));
        current.spec!.rules![0]!.host = renamed;
      },
    );
    results.update![0].push(c);
    results.update![1].push(d);

    const s = (k * 31) % SERVICES;
    const slice = sliceBody(s, k + 1);
    const wanted = slice.endpoints![0]!.addresses[0]!;
    const probeHost = `app-${s + SERVICES}.bench.example`; // Ingress s + SERVICES uses Service s
    const [e, f] = await measure(
      () => admin.put(apiPath('discovery.k8s.io/v1', 'endpointslices', ns(s), `svc-${s}-a`), slice),
      (t) => t.match(probeHost, '/')?.backend.endpoints.some((x) => x.address === wanted) === true,
    );
    results.slice![0].push(e);
    results.slice![1].push(f);
  }
  if (withPipeline) await pipeline!.whenCompiled();
  const cpu = process.cpuUsage(cpuBefore);
  const changesMs = performance.now() - changesStarted;

  // A burst of host changes at 5 per second, with requests to hosts no change touches, against the same
  // requests for as long without changes. Unrelated: Ingresses below SERVICES, which no change above touches.
  const unrelated = Array.from({ length: SERVICES }, (_, i) => `app-${i}.bench.example`);
  let quiet: Awaited<ReturnType<typeof probe>> = { samples: [], startedAt: [], failed: new Map() };
  let during: Awaited<ReturnType<typeof probe>> = { samples: [], startedAt: [], failed: new Map() };
  let burstPeak = 0;
  let burstCpuMs = 0;
  if (BURST > 0) {
    await cp.status.idle();
    await new Promise((r) => setTimeout(r, 2 * config.kubernetes.resyncBurstWindow));
    const burstMs = (BURST / 5) * 1000;
    if (TRAFFIC && withPipeline) quiet = await probe(unrelated, performance.now() + burstMs);
    takePeak();
    const heapProfile = args['burst-heap-prof'] ? new Session() : undefined;
    if (heapProfile) {
      heapProfile.connect();
      await heapProfile.post('HeapProfiler.startSampling', { samplingInterval: 64 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    }
    const burstCpu = process.cpuUsage();
    const t0 = performance.now();
    const probing = TRAFFIC && withPipeline ? probe(unrelated, t0 + burstMs + 1_000) : Promise.resolve(during);
    for (let b = 0; b < BURST; b++) {
      const wait = t0 + b * 200 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const target = 2 * SERVICES + ((b * 193 + 7) % (INGRESSES - 2 * SERVICES));
      const path = ingressPath(ns(target % SERVICES), `app-${target}`);
      const current = await admin.get<V1Ingress>(path);
      current.spec!.rules![0]!.host = `burst-${b}.bench.example`;
      await admin.put(path, current);
    }
    const lastHost = `burst-${BURST - 1}.bench.example`;
    await store.waitFor((t) => t.match(lastHost, '/') !== undefined, { timeout: 60_000 });
    if (withPipeline) await pipeline!.whenCompiled();
    await cp.status.idle();
    during = await probing;
    if (heapProfile) {
      const { profile } = await heapProfile.post('HeapProfiler.stopSampling');
      writeFileSync(args['burst-heap-prof']!, JSON.stringify(profile));
      heapProfile.disconnect();
    }
    burstCpuMs = (() => {
      const u = process.cpuUsage(burstCpu);
      return (u.user + u.system) / 1000;
    })();
    burstPeak = takePeak();
  }
  // Alternating windows with and without changes; requests are classed by the window they started in.
  const WINDOW_MS = 5_000;
  let alternated: { withChanges: number[][]; without: number[][]; failed: typeof quiet.failed } | undefined;
  if (ALTERNATE > 0 && TRAFFIC && withPipeline) {
    await cp.status.idle();
    const t0 = performance.now();
    const probing = probe(unrelated, t0 + 2 * ALTERNATE * WINDOW_MS);
    for (let r = 0; r < ALTERNATE; r++) {
      for (let k = 0; k < 25; k++) {
        const wait = t0 + r * 2 * WINDOW_MS + k * 200 - performance.now();
        if (wait > 0) await new Promise((done) => setTimeout(done, wait));
        const target = 2 * SERVICES + (((r * 25 + k) * 389 + 11) % (INGRESSES - 2 * SERVICES));
        const path = ingressPath(ns(target % SERVICES), `app-${target}`);
        const current = await admin.get<V1Ingress>(path);
        current.spec!.rules![0]!.host = `alternate-${r}-${k}.bench.example`;
        await admin.put(path, current);
      }
    }
    const { samples, startedAt, failed } = await probing;
    alternated = { withChanges: Array.from({ length: ALTERNATE }, () => []), without: Array.from({ length: ALTERNATE }, () => []), failed };
    for (let i = 0; i < samples.length; i++) {
      const w = Math.floor((startedAt[i]! - t0) / WINDOW_MS);
      if (w >= 2 * ALTERNATE) continue;
      (w % 2 === 0 ? alternated.withChanges : alternated.without)[w >> 1]!.push(samples[i]!);
    }
  }
  const p99 = (samples: readonly number[]) =>
    percentile(
      [...samples].sort((a, b) => a - b),
      99,
    );

  const trafficAtEnd = await everyHost([...hostsAtStart, ...Array.from({ length: ITERATIONS }, (_, k) => `new-${k}.bench.example`)]);
  gc();
  const after = process.memoryUsage();
  const smapsAfter = args.smaps ? residentByMapping() : undefined;
  const reservedAfter = { new: space('new_space'), old: space('old_space') };
  // Idle for a while: V8's memory reducer gives pages back once allocation stops.
  await new Promise((r) => setTimeout(r, 15_000));
  gc();
  const settled = process.memoryUsage();
  const smapsSettled = args.smaps ? residentByMapping() : undefined;
  if (args['heap-snapshot']) writeHeapSnapshot(args['heap-snapshot']);
  stop.abort();
  clearInterval(sampler);
  await running;
  const latency = (name: string, samples: number[]) => (samples.length > 0 ? summary(name, samples) : `| ${name} | 0 | | | | |`);
  const failures = (failed: ReadonlyMap<number, number>) => [...failed].map(([status, count]) => `${count} × ${status}`).join(', ') || 'none';

  const lines = [
    `Controller process flags: ${process.execArgv.join(' ') || '(none)'}.`,
    '',
    `Setup: ${INGRESSES.toLocaleString('en')} Ingresses (1 host, ${PATHS} paths each) over ${SERVICES.toLocaleString('en')} headless Services with one 3-endpoint EndpointSlice each, ${NAMESPACES} namespaces; created in ${setupSeconds.toFixed(0)} s.`,
    '',
    '| phase | value |',
    '|---|---|',
    `| start → every cache synced (paginated lists) | ${syncedMs.toFixed(0)} ms |`,
    `| start → first route table published | ${firstTableMs.toFixed(0)} ms |`,
    `| route tables built for the initial lists | ${buildsAtStart} |`,
    `| first build (${INGRESSES.toLocaleString('en')} Ingresses) | ${firstBuildSum.toFixed(0)} ms |`,
    `| process RSS / heap before start (after GC) | ${mb(baseline.rss)} MB / ${mb(baseline.heapUsed)} MB |`,
    `| process RSS / heap with ${INGRESSES.toLocaleString('en')} Ingresses loaded and compiled (after GC) | ${mb(loaded.rss)} MB / ${mb(loaded.heapUsed)} MB |`,
    `| start → every status written | ${statusesWrittenMs.toFixed(0)} ms |`,
    `| peak RSS from start until every status was written | ${mb(startupPeak)} MB |`,
    `| one request to each of the ${INGRESSES.toLocaleString('en')} hosts (32 at a time): answered 200 / time | ${trafficAtStart.ok.toLocaleString('en')} / ${trafficAtStart.seconds.toFixed(1)} s |`,
    `| peak RSS during that traffic; RSS / heap after it (after GC) | ${mb(trafficPeak)} MB; ${mb(loadedWithTraffic.rss)} MB / ${mb(loadedWithTraffic.heapUsed)} MB |`,
    `| /metrics size after that traffic (proxy and control-plane series; process series not registered here) / time to render | ${(trafficAtStart.metricsBytes / 1024).toFixed(0)} KiB / ${trafficAtStart.scrapeMs.toFixed(0)} ms |`,
    `| process RSS / heap after ${ITERATIONS * 3} changes${BURST > 0 ? ` and a burst of ${BURST}` : ''} (after GC) | ${mb(after.rss)} MB / ${mb(after.heapUsed)} MB |`,
    ...(BURST > 0 ? [`| peak RSS during the burst of ${BURST} host changes (5/s); CPU per burst change | ${mb(burstPeak)} MB; ${(burstCpuMs / BURST).toFixed(1)} ms |`] : []),
    `| /metrics size after traffic to every host again (${(INGRESSES + ITERATIONS).toLocaleString('en')} hosts; ${trafficAtEnd.ok.toLocaleString('en')} answered 200) | ${(trafficAtEnd.metricsBytes / 1024).toFixed(0)} KiB |`,
    `| process RSS / heap 15 s after the last change (after GC) | ${mb(settled.rss)} MB / ${mb(settled.heapUsed)} MB |`,
    `| external / arrayBuffers after changes | ${mb(after.external)} MB / ${mb(after.arrayBuffers)} MB |`,
    `| V8 heap reserved right after the changes: total / new space / old space | ${mb(after.heapTotal)} MB / ${mb(reservedAfter.new)} MB / ${mb(reservedAfter.old)} MB |`,
    `| process CPU (user + system) over the ${ITERATIONS * 3} changes, until compiled, incl. the bench's own API writes | ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms in ${(changesMs / 1000).toFixed(1)} s: ${((cpu.user + cpu.system) / 1000 / (ITERATIONS * 3)).toFixed(2)} ms per change |`,
    ...(smapsAfter && smapsSettled
      ? [
          '',
          `Resident memory by mapping, MB (after the changes → settled): ${smapsAfter.map(([k, v]) => `${k} ${v} → ${smapsSettled.find(([n]) => n === k)?.[1] ?? 0}`).join(', ')}`,
        ]
      : []),
    '',
    'Latency from the API write (client side, before the request) to the change being visible, ms:',
    '',
    '| change | n | p50 | p90 | p99 | max |',
    '|---|---:|---:|---:|---:|---:|',
    summary('new Ingress → in RouteStore', results.create![0]),
    summary('new Ingress → compiled in the pipeline', results.create![1]),
    summary('Ingress host changed → in RouteStore', results.update![0]),
    summary('Ingress host changed → compiled in the pipeline', results.update![1]),
    summary('EndpointSlice address changed → in RouteStore', results.slice![0]),
    summary('EndpointSlice address changed → compiled in the pipeline', results.slice![1]),
    summary('(any of the above → watch event received)', watchLatency),
    ...(BURST > 0
      ? [
          '',
          `Requests to unrelated hosts (4 at a time, in-process exchanges to a loopback origin), ms:`,
          '',
          '| phase | n | p50 | p90 | p99 | max |',
          '|---|---:|---:|---:|---:|---:|',
          latency(`${BURST / 5} s without changes`, quiet.samples),
          latency(`during the burst of ${BURST} host changes`, during.samples),
          '',
          `Unrelated requests not answered 200 (not in the latencies above): without changes ${failures(quiet.failed)}; during the burst ${failures(during.failed)}.`,
        ]
      : []),
    ...(alternated
      ? [
          '',
          `Alternating ${WINDOW_MS / 1000} s windows after the burst (${ALTERNATE} rounds: 25 host changes at 5/s, then none), unrelated requests, ms:`,
          '',
          '| windows | n | p50 | p90 | p99 | max |',
          '|---|---:|---:|---:|---:|---:|',
          summary('with changes', alternated.withChanges.flat()),
          summary('without changes', alternated.without.flat()),
          '',
          `p99 per round, with / without changes: ${alternated.withChanges.map((w, r) => `${p99(w).toFixed(1)} / ${p99(alternated!.without[r]!).toFixed(1)}`).join(', ')}; median ratio ${percentile(
            alternated.withChanges.map((w, r) => p99(w) / p99(alternated!.without[r]!)).sort((a, b) => a - b),
            50,
          ).toFixed(2)}. Not answered 200: ${failures(alternated.failed)}.`,
        ]
      : []),
    '',
    `First change after the initial sync (new Ingress): in RouteStore ${results.create![0][0]!.toFixed(1)} ms, compiled in the pipeline ${results.create![1][0]!.toFixed(1)} ms; second: ${results.create![0][1]?.toFixed(1)} / ${results.create![1][1]?.toFixed(1)} ms.`,
    '',
    `Route builds during the changes: ${cp.routeSync.builds - buildsAtStart}, mean ${meanBuildMs(await registry.getSingleMetricAsString('warren_route_table_build_duration_seconds'), buildSeconds).toFixed(2)} ms each.`,
  ];
  return lines;
}

/** Mean of the histogram's observations made between two text snapshots, in ms. */
function meanBuildMs(after: string, before: string): number {
  const read = (text: string, what: string) => Number(new RegExp(`_${what} (\\S+)`).exec(text)?.[1] ?? 0);
  return ((read(after, 'sum') - read(before, 'sum')) / Math.max(1, read(after, 'count') - read(before, 'count'))) * 1000;
}

function space(name: string): number {
  return getHeapSpaceStatistics().find((x) => x.space_name === name)?.space_size ?? 0;
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}
