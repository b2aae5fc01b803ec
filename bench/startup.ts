/**
 * Start-up cost of the whole Warren process: CPU time (utime + stime) from exec until its first
 * "Registered tunnel connection" log line, and RSS after it has sat idle (no traffic) for a while.
 *
 *   npx node bench/build/startup.js [--runs 5] [--idle-ms 10000] [--cpu 1] [--node-args='--cpu-prof …'] [--entry='[VAR=VALUE…] [NODE-OPTION…] FILE']…
 *
 * Warren runs exactly as a user starts it (`node <entry>`: by default the image's bundled entry with the image's
 * Node flags (read from the Dockerfile's ENTRYPOINT) and allocator environment (its final stage's `MALLOC_*`),
 * core/build/bundle/main.js from `node scripts/bundle.js`), in folder mode on a folder holding
 * one Ingress, with a supplied tunnel token, connecting to the edge simulator in a separate process (so the
 * simulator's own TLS and key generation are not counted). Folder mode is Kubernetes mode minus the object
 * source: the same config loading, plugins, pipeline, metrics, health server and connector. Warren is pinned to
 * core `--cpu` with taskset, the simulator to the other cores. Prints one row per run and the median with the
 * spread (min–max); CPU both as utime + stime (10 ms ticks) and on the scheduler's clock (schedstat, finer). With `--entry` given more than once (e.g. the bundle and the compiled tree,
 * core/build/src/main.js), the entries take turns run by run, for an A/B in the same minutes, one table each. Node
 * options may precede an entry's file, to compare flags the same way (`--entry='--max-semi-space-size=8 FILE'`), and
 * so may environment variables (`--entry='NODE_COMPILE_CACHE=DIR FILE'`: the image's compile cache, made beforehand
 * with `NODE_COMPILE_CACHE=DIR node <the same Node options> core/build/bundle/warm-compile-cache.js`, as the Dockerfile
 * does: V8 rejects code cached under other flags, and the entry then compiles everything).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnJsonChild } from './lib/child.js';
import { imageMallocEnvWords, imageNodeFlags } from './lib/image-flags.js';
import { cpuTimeMs, rssBytes } from './lib/proc-stats.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'idle-ms': { type: 'string', default: '10000' },
    cpu: { type: 'string', default: '1' },
    'node-args': { type: 'string', default: '' },
    entry: { type: 'string', multiple: true, default: [[...imageMallocEnvWords(), ...imageNodeFlags(), 'core/build/bundle/main.js'].join(' ')] },
  },
});
const runs = Math.min(Number(values.runs), 50);
const idleMs = Number(values['idle-ms']);
const warrenCpu = Number(values.cpu);
const otherCpus = cpus()
  .map((_, i) => i)
  .filter((i) => i !== warrenCpu);
const nodeArgs = values['node-args'].split(' ').filter(Boolean);
const node = process.execPath;
const here = new URL('.', import.meta.url).pathname;
const repo = new URL('../../', import.meta.url).pathname;
const entries = values.entry.map((e) => {
  const words = e.split(' ').filter(Boolean);
  const env = words.filter((w) => /^[A-Z_][A-Z0-9_]*=/.test(w));
  return {
    label: e,
    path: join(repo, words.at(-1) ?? ''),
    nodeArgs: words.slice(0, -1).filter((w) => !env.includes(w)),
    env: Object.fromEntries(env.map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)])),
  };
});
for (const { label, path } of entries) {
  if (!existsSync(path)) throw new Error(`${label} does not exist: build it (npx tsc -b, then node scripts/bundle.js for the bundle)`);
}

const MANIFESTS = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: cloudflare-tunnel}
spec: {controller: warren.dev/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: bench}
spec:
  ingressClassName: cloudflare-tunnel
  rules:
    - host: bench.example.com
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}]}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: bench}
spec: {ports: [{name: http, port: 80, targetPort: 3000}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-1, namespace: bench, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
ports: [{name: http, port: 3000}]
`;

interface Run {
  entry: string;
  cpuMs: number;
  scheduledMs: number;
  wallMs: number;
  idleRssMiB: number;
}

/**
 * CPU time of `pid`'s threads on the scheduler's nanosecond clock (the first field of each thread's
 * /proc/<pid>/task/<tid>/schedstat), where utime + stime count 10 ms ticks: the finer figure to compare builds by.
 * Threads that already ended are not counted (Node's threads live as long as the process).
 */
const scheduledCpuMs = (pid: number) =>
  readdirSync(`/proc/${pid}/task`).reduce((sum, tid) => sum + Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6, 0);

const pin = (cores: readonly number[], command: string, args: readonly string[]) => ['taskset', ['-c', cores.join(','), command, ...args]] as const;
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// The settings file sits next to the manifests folder, not in it: folder mode would read it as a manifest.
const root = mkdtempSync(join(tmpdir(), 'warren-bench-startup-'));
const dir = join(root, 'manifests');
mkdirSync(dir);
const sim = spawnJsonChild(...pin(otherCpus.length ? otherCpus : [warrenCpu], node, [`${here}lib/simulator-process.js`]));
const results: Run[] = [];
try {
  const info = await sim.next<{ edge: string; caFile: string; tokenFile: string }>((m) => typeof m.edge === 'string');
  writeFileSync(join(dir, 'app.yaml'), MANIFESTS);
  const configFile = join(root, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      logLevel: 'info',
      tunnel: { tokenFile: info.tokenFile, edgeCaFile: info.caFile, edgeAddresses: [info.edge] },
      server: { listen: '127.0.0.1:0' },
    }),
  );
  for (let i = 0; i < runs * entries.length; i++) {
    const entry = entries[i % entries.length]!;
    const started = performance.now();
    const [command, args] = pin([warrenCpu], node, [...nodeArgs, ...entry.nodeArgs, entry.path, '--local', dir, '--config', configFile]);
    const { TUNNEL_TOKEN: _, ...env } = process.env;
    const warren = spawnJsonChild(command, args, { env: { ...env, ...entry.env } });
    try {
      await warren.next((m) => m.msg === 'Registered tunnel connection', 30_000);
      const cpuMs = cpuTimeMs(warren.pid);
      const scheduledMs = scheduledCpuMs(warren.pid);
      const wallMs = performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, idleMs));
      const idleRssMiB = rssBytes(warren.pid) / 2 ** 20;
      results.push({ entry: entry.label, cpuMs, scheduledMs, wallMs, idleRssMiB });
      process.stderr.write(
        `run ${i + 1} (${entry.label}): ${cpuMs} ms CPU (${scheduledMs.toFixed(0)} ms scheduled), ${wallMs.toFixed(0)} ms wall, ${idleRssMiB.toFixed(1)} MiB idle RSS\n`,
      );
    } finally {
      await warren.stop();
    }
  }
} finally {
  await sim.stop();
  rmSync(root, { recursive: true, force: true });
}

const row = (runsOf: readonly Run[], label: string, pick: (r: Run) => number, digits: number) => {
  const xs = runsOf.map(pick);
  return `| ${label} | ${median(xs).toFixed(digits)} | ${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)} | ${xs.map((x) => x.toFixed(digits)).join(', ')} |`;
};
const table = (label: string) => {
  const runsOf = results.filter((r) => r.entry === label);
  return [
    `\`${label.replace(/^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)/, '$1node ')}\`: ${runsOf.length} runs`,
    '',
    '| measure | median | spread | runs |',
    '|---|---:|---:|---|',
    row(runsOf, 'CPU from exec to the first registration, ms', (r) => r.cpuMs, 0),
    row(runsOf, 'the same on the scheduler clock (schedstat), ms', (r) => r.scheduledMs, 0),
    row(runsOf, 'wall time from spawn to the first registration, ms', (r) => r.wallMs, 0),
    row(runsOf, `RSS ${idleMs / 1000} s after it, idle, MiB`, (r) => r.idleRssMiB, 1),
    '',
  ];
};
process.stdout.write(
  [
    `Node ${process.version}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end; Warren pinned to core ${warrenCpu}; idle ${idleMs} ms${nodeArgs.length ? `; node ${nodeArgs.join(' ')}` : ''}.`,
    '',
    ...entries.flatMap((e) => table(e.label)),
  ].join('\n'),
);
