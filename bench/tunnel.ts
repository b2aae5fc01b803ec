/**
 * Tunnel connector benchmark: load → edge simulator → connector → origin, against the same load straight to
 * the origin (the ceiling). Every process is separate (simulator, connector, origin, and this process) so the
 * connector's CPU time and RSS can be read from /proc.
 *
 *   npx tsc -b bench && npx node bench/build/tunnel.js [--duration 3000] [--sizes 1024,1048576]
 *     [--concurrency 1,16,256] [--ha 4] [--repeat 1] [--no-pin] [--forwarder] [--no-warren]
 *     [--build 'name=<tree>'] [--connector 'name=command …'] [--node-flags '…'] [--node-env '…'] [--upload]
 *     [--load edge|eyeball|edge,eyeball] [--load-node-flags='…'] [--origin-in-simulator]
 *
 * `--load` picks where the load comes from (the table's first line says which ran):
 * - `edge` (default): each simulator opens the tunnel streams itself (`runStreamLoad`), the streams its eyeball
 *   entrance would open for the same HTTP/1.1 request — the edge's headers, a fresh `cf-ray` each — so the
 *   connector receives what a real edge sends; a latency runs from the stream's opening to its last body byte.
 *   No eyeball client and no eyeball HTTP/1.1 hop share the load side's core, which in `eyeball` mode bounded
 *   the 1 MiB cells and 1 KiB at high concurrency (docs/benchmarks.md, "The load side: tunnel streams from
 *   inside the simulator").
 * - `eyeball`: this process sends HTTP/1.1 (undici, closed loop, keep-alive) to each simulator's eyeball
 *   entrance, which turns every request into a tunnel stream and the answer back into HTTP/1.1: end to end,
 *   as a browser's request travels, but the load side costs 2–3 times the connector per MiB.
 * Both at once (`edge,eyeball`) give each target a row per mode, interleaved within each round. The ceiling is
 * always this process's HTTP/1.1 generator straight to the origin, so "added p99" is what the tunnel path adds
 * to an origin request in either mode.
 *
 * Targets: `warren` is Warren's data path (connector + proxy pipeline with every built-in plugin,
 * `lib/warren-pipeline.js`) run with the image's V8 flags and the old-space limit the chart derives from its
 * default 512Mi memory limit (`--node-flags` replaces them), under the image's allocator environment (`MALLOC_ARENA_MAX`;
 * `--node-env 'KEY=VALUE …'` replaces it, `--node-env ''` drops it); `--forwarder` adds the connector alone with a minimal
 * forwarder to the origin (`lib/warren-connector.js`); `--no-warren` leaves Warren out.
 *
 * `--build name=<tree>` (repeatable) adds the data path of another build: the same harness loading the core
 * of `<tree>` (a checkout with `npm ci` and `npx tsc -b core plugins/*` done). Before/after in one run:
 *   node bench/build/tunnel.js --no-warren --build before=/tmp/base --build after=$PWD --repeat 5
 *
 * `--connector` (repeatable) benchmarks any other connector in the same run. The command runs through
 * `sh -c "exec …"` with these placeholders replaced: {edge} (host:port of the simulated edge), {caFile}
 * (PEM of the edge's CA), {token} and {tokenFile} (tunnel token), {origin} (origin URL), {ha}. It must
 * register with the edge; the benchmark waits for {ha} registered connections (30 s at most).
 *
 * Pinning (default when `taskset` exists and the machine has at least two cores; `--no-pin` turns it off):
 * every connector runs on core 0, this load generator, the simulators and the origin on core 1, so the
 * connector's CPU time is not shared with the load it serves. The load side is Node too, and runs under the image's
 * heap flags by default, for the connector's reason: a large young generation makes 10–27 ms scavenges, which
 * become the load side's tail, not the connector's (docs/benchmarks.md, "Added latency at 1 KiB"). This process
 * (the generator of the ceiling and of eyeball load) restarts itself under the image's heap flags when started
 * without them, so the ceiling's p99 is taken under the same heap as the rest of the load side. `--load-node-flags`
 * (written with `=`, e.g. `--load-node-flags='--cpu-prof --cpu-prof-dir=/tmp/p'`) replace the simulators' and the
 * origin's flags.
 *
 * `--origin-in-simulator` gives each target an origin inside its simulator's process (`simulator-process.js
 * --origin`), so a target's whole load side is one event loop on core 1 and none of its hops waits for another
 * load-side process to give up that core; the ceiling keeps its own origin process. It separates the load side's
 * scheduling from the connector's tail (docs/benchmarks.md, "What a finished request leaves in the old generation").
 *
 * `--repeat N` runs every cell N times, the targets interleaved within each round (their order reversed every
 * other round), all targets registered for the whole run; the table gives the median with [min–max]. Each cell
 * runs a 500 ms warm-up (at most 20 000 requests), then `--duration` ms of closed-loop load (at most 200 000
 * requests). `--upload` sends each size as a request body (POST, the origin answers with no body) instead.
 *
 * Per cell, for connectors that report it (the Warren targets, and `--connector` commands that run
 * `lib/warren-pipeline.js`), "GC ms/req" is the connector's garbage-collection
 * pause time divided by the requests of the cell (V8's `gc` performance entries, read on SIGUSR2).
 *
 * "Load side" is everything but the connector: this process (the generator in `eyeball` mode), the target's
 * simulator (the generator in `edge` mode) and the origin (all on core 1 when pinned). Its CPU per request (from
 * /proc, and this process's own) and its busy share (CPU time over the cell's wall time; 100 % is one core) tell
 * whether a cell measured the connector: at 85 % or more the cell is marked †, its req/s and latencies bounded by
 * the load side. stderr gives the split per process for every cell.
 *
 * "Waited for CPU" is the run-queue wait of the connector's main thread, then of the load side's processes' main
 * threads summed, over the cell's wall time (`/proc/<pid>/task/<pid>/schedstat`): time an event loop had work
 * while other threads held its core. On a shared machine that wait, not the connector, makes most of a tail
 * (docs/benchmarks.md, "Added latency at 1 KiB"); compare latencies only between cells whose waits are alike.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { spawnJsonChild, type JsonChild } from './lib/child.js';
import { percentile, runLoad, type LoadResult } from './lib/load.js';
import { CHART_DEFAULT_OLD_SPACE, imageMallocEnvWords, imageNodeFlags } from './lib/image-flags.js';
import { cpuTimeMs, peakRss, runQueueWaitMs } from './lib/proc-stats.js';
import { streamLoadIn } from './lib/stream-load-client.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3000' },
    sizes: { type: 'string', default: '1024,1048576' },
    concurrency: { type: 'string', default: '1,16,256' },
    ha: { type: 'string', default: '4' },
    repeat: { type: 'string', default: '1' },
    connector: { type: 'string', multiple: true, default: [] },
    build: { type: 'string', multiple: true, default: [] },
    'node-flags': { type: 'string', default: [...imageNodeFlags(), CHART_DEFAULT_OLD_SPACE].join(' ') },
    'no-warren': { type: 'boolean', default: false },
    forwarder: { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    upload: { type: 'boolean', default: false },
    load: { type: 'string', default: 'edge' },
    'load-node-flags': { type: 'string', default: imageNodeFlags().join(' ') },
    'node-env': { type: 'string', default: imageMallocEnvWords().join(' ') },
    'origin-in-simulator': { type: 'boolean', default: false },
  },
});
// The ceiling's and eyeball mode's generator is this process: the same heap as the rest of the load side.
if (!imageNodeFlags().every((flag) => process.execArgv.includes(flag))) {
  const run = spawnSync(process.execPath, [...process.execArgv, ...imageNodeFlags(), ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}
const durationMs = Number(values.duration);
const sizes = values.sizes.split(',').map(Number);
const levels = values.concurrency.split(',').map(Number);
const ha = Number(values.ha);
const repeat = Math.max(1, Math.min(50, Number(values.repeat)));
const upload = values.upload;
const LOAD_MODES = {
  edge: 'edge (closed-loop tunnel streams opened inside each simulator, latency from stream open to last byte; the ceiling is the HTTP/1.1 generator straight to the origin)',
  eyeball: "eyeball (closed-loop HTTP/1.1 from this process through each simulator's eyeball entrance; the ceiling is the same generator straight to the origin)",
} as const;
type LoadMode = keyof typeof LOAD_MODES;
const loadModes = values.load.split(',').map((mode) => {
  if (!(mode in LOAD_MODES)) throw new Error(`--load ${mode}: expected ${Object.keys(LOAD_MODES).join(' or ')}`);
  return mode as LoadMode;
});
for (const mode of loadModes) process.stderr.write(`load: ${LOAD_MODES[mode]}\n`);
/** A target's row: its name, with the load mode when the run has more than one. */
const rowName = (target: string, mode: LoadMode) => (loadModes.length > 1 ? `${target} [${mode}]` : target);
/** The Host (`:authority`) of every request. */
const BENCH_HOST = 'bench.example.com';
const uploadBodies = new Map(upload ? sizes.map((size) => [size, Buffer.alloc(size, 'u')]) : []);
const node = process.execPath;
const here = new URL('.', import.meta.url).pathname;
const args = '--edge {edge} --ca {caFile} --token-file {tokenFile} --origin {origin} --ha {ha}';

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
/** Each target's origin in its simulator's process (`simulator-process.js --origin`); the ceiling keeps its own. */
const originInSimulator = values['origin-in-simulator'];
const pin = !values['no-pin'] && cpus().length >= 2 && hasTaskset();
/** Core 0 for connectors, core 1 for everything else (this process's threads included). */
const onConnectorCore = (command: string) => (pin ? `taskset -c 0 ${command}` : command);
/** Node flags for the load side's own processes (simulator, origin), e.g. `--cpu-prof --cpu-prof-dir=…`. */
const loadNodeFlags = values['load-node-flags'].split(' ').filter(Boolean);
const loadSide = (command: string, argv: string[]): [string, string[]] => {
  const full = [...loadNodeFlags, ...argv];
  return pin ? ['taskset', ['-c', '1', command, ...full]] : [command, full];
};
if (pin) execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });

interface Target {
  readonly name: string;
  readonly command: string;
  /** Answers SIGUSR2 with its GC totals (the pipeline harness); other connectors are never sent the signal. */
  readonly reportsGc?: boolean;
}
const targets: Target[] = [];
const nodeEnv = values['node-env'].trim() ? `env ${values['node-env'].trim()} ` : '';
const pipelineCommand = (coreDir?: string) =>
  `${nodeEnv}${node} ${values['node-flags']} ${here}lib/warren-pipeline.js ${args}${coreDir ? ` --core ${coreDir}/core/build/src` : ''}`;
if (!values['no-warren']) targets.push({ name: 'warren', command: pipelineCommand(), reportsGc: true });
if (values.forwarder) targets.push({ name: 'warren (connector + forwarder)', command: `${node} ${here}lib/warren-connector.js ${args}` });
for (const spec of [...values.build.map((b) => ({ b })), ...values.connector.map((c) => ({ c }))]) {
  const text = 'b' in spec ? spec.b : spec.c;
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`"${text}": expected name=${'b' in spec ? 'tree' : 'command'}`);
  const value = text.slice(eq + 1);
  // A connector command that runs the pipeline harness (another build's, other flags) answers SIGUSR2 too.
  targets.push({ name: text.slice(0, eq), command: 'b' in spec ? pipelineCommand(value) : value, reportsGc: 'b' in spec || /warren-pipeline\.js\b/.test(value) });
}

/** CPU time of the load side in one cell, ms per request: this generator, the edge simulator, the origin. */
interface LoadSideCpu {
  generator: number;
  simulator: number;
  origin: number;
}
interface Sample {
  result: LoadResult;
  loadSide: LoadSideCpu;
  /** The load side's CPU time over the cell's wall time: 1 is one core fully busy. */
  loadSideBusy: number;
  /** Run-queue wait of the connector's main thread over the cell's wall time (other work had its core). */
  connectorWaited?: number;
  /** The same for the load side's processes, summed. */
  loadSideWaited: number;
  cpuPerRequestMs?: number;
  peakRssMiB?: number;
  gcMsPerRequest?: number;
  majorGcPerRequest?: number;
}

const label = (size: number) => (size >= 1048576 ? `${size / 1048576} MiB` : `${size / 1024} KiB`);
const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const loadSideMs = (l: LoadSideCpu) => l.generator + l.simulator + l.origin;

interface GcTotals {
  count: number;
  ms: number;
  major: number;
}
/** The connector's GC totals, when it reports them on SIGUSR2 (within 2 s); else undefined. */
async function gcTotals(child: JsonChild): Promise<GcTotals | undefined> {
  const answer = child.nextNew<{ gc: GcTotals }>((msg) => typeof msg.gc === 'object', 2_000);
  child.process.kill('SIGUSR2');
  try {
    return (await answer).gc;
  } catch {
    return undefined;
  }
}

/** Above this share of a core busy, the load side (not the connector) bounds a cell's throughput. */
const LOAD_BOUND_BUSY = 0.85;
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** Requests and latencies of one stretch of closed-loop load, for the ceiling (`running` undefined) or a target. */
async function drive(url: string, size: number, concurrency: number, durationMs: number, maxRequests: number, running?: Running, mode?: LoadMode): Promise<LoadResult> {
  const path = upload ? '/bytes/0' : `/bytes/${size}`;
  if (running && mode === 'edge') {
    return streamLoadIn(running.sim, { authority: BENCH_HOST, path, concurrency, durationMs, maxRequests, ...(upload ? { bodySize: size } : {}) });
  }
  const load = { url, path, concurrency, headers: { host: BENCH_HOST }, ...(upload ? { body: uploadBodies.get(size)! } : {}) };
  return runLoad({ ...load, durationMs, maxRequests });
}

async function cell(url: string, size: number, concurrency: number, running?: Running, mode?: LoadMode): Promise<Sample> {
  const connector = running?.proc;
  await drive(url, size, concurrency, 500, 20_000, running, mode);
  const pid = connector?.pid;
  const gc0 = connector?.reportsGc ? await gcTotals(connector) : undefined;
  const cpu0 = pid ? cpuTimeMs(pid) : 0;
  const rss = pid ? peakRss(pid, 20) : undefined;
  const side0 = { generator: ownCpuMs(), simulator: running ? cpuTimeMs(running.sim.pid) : 0, origin: cpuTimeMs(origin.pid) };
  const sidePids = [process.pid, origin.pid, ...(running ? [running.sim.pid] : [])];
  const sideWait = () => sidePids.reduce((sum, p) => sum + runQueueWaitMs(p), 0);
  const wait0 = { connector: pid ? runQueueWaitMs(pid) : 0, side: sideWait() };
  const result = await drive(url, size, concurrency, durationMs, 200_000, running, mode);
  const requests = Math.max(1, result.requests);
  const side1 = { generator: ownCpuMs(), simulator: running ? cpuTimeMs(running.sim.pid) : 0, origin: cpuTimeMs(origin.pid) };
  const loadSideWaited = (sideWait() - wait0.side) / result.elapsedMs;
  const loadSide = {
    generator: (side1.generator - side0.generator) / requests,
    simulator: (side1.simulator - side0.simulator) / requests,
    origin: (side1.origin - side0.origin) / requests,
  };
  const sample: Sample = { result, loadSide, loadSideBusy: (loadSideMs(loadSide) * requests) / result.elapsedMs, loadSideWaited };
  if (pid) {
    sample.connectorWaited = (runQueueWaitMs(pid) - wait0.connector) / result.elapsedMs;
    sample.cpuPerRequestMs = (cpuTimeMs(pid) - cpu0) / requests;
    sample.peakRssMiB = rss!.stop() / 1048576;
    const gc1 = gc0 ? await gcTotals(connector!) : undefined;
    if (gc0 && gc1) {
      sample.gcMsPerRequest = (gc1.ms - gc0.ms) / requests;
      sample.majorGcPerRequest = (gc1.major - gc0.major) / requests;
    }
  }
  return sample;
}

interface Running {
  readonly target: Target;
  readonly sim: JsonChild;
  readonly proc: JsonChild & { reportsGc?: boolean };
  readonly eyeball: string;
}

const [originCmd, originArgs] = loadSide(node, [`${here}lib/origin-server.js`]);
const origin = spawnJsonChild(originCmd, originArgs);
const children: JsonChild[] = [origin];
const samples = new Map<string, Sample[]>();
const key = (target: string, size: number, c: number) => `${target}\0${size}\0${c}`;
const record = (target: string, size: number, c: number, s: Sample) => {
  const k = key(target, size, c);
  samples.set(k, [...(samples.get(k) ?? []), s]);
  const r = s.result;
  const l = s.loadSide;
  process.stderr.write(
    `${target} ${label(size)} c=${c}: ${Math.round((r.requests * 1000) / r.elapsedMs)} req/s, ${r.errors} errors${s.cpuPerRequestMs === undefined ? '' : `, ${fmt(s.cpuPerRequestMs, 3)} ms CPU/req, ${fmt(s.peakRssMiB!, 0)} MiB peak`}; load side ${fmt(loadSideMs(l), 3)} ms CPU/req (generator ${fmt(l.generator, 3)}, simulator ${fmt(l.simulator, 3)}, origin ${fmt(l.origin, 3)}), ${Math.round(s.loadSideBusy * 100)} % of a core busy; waited for CPU: ${s.connectorWaited === undefined ? '' : `connector ${Math.round(s.connectorWaited * 100)} %, `}load side ${Math.round(s.loadSideWaited * 100)} % of the cell\n`,
  );
};
const loads: number[] = [loadavg()[0]!];
try {
  const { listening: originUrl } = await origin.next<{ listening: string }>((m) => typeof m.listening === 'string');
  const running: Running[] = [];
  for (const target of targets) {
    const [simCmd, simArgs] = loadSide(node, [`${here}lib/simulator-process.js`, ...(originInSimulator ? ['--origin'] : [])]);
    const sim = spawnJsonChild(simCmd, simArgs, { input: true });
    children.push(sim);
    const info = await sim.next<{ edge: string; caFile: string; token: string; tokenFile: string; eyeball: string; origin?: string }>((m) => typeof m.edge === 'string');
    const command = target.command
      .replaceAll('{edge}', info.edge)
      .replaceAll('{caFile}', info.caFile)
      .replaceAll('{token}', info.token)
      .replaceAll('{tokenFile}', info.tokenFile)
      .replaceAll('{origin}', info.origin ?? originUrl)
      .replaceAll('{ha}', String(ha));
    const proc: Running['proc'] = spawnJsonChild('sh', ['-c', `exec ${onConnectorCore(command)}`], { quiet: false });
    children.push(proc);
    // Fails at once if the connector exits instead of registering.
    await Promise.race([sim.next((m) => typeof m.registered === 'number' && m.registered >= ha, 30_000), proc.next(() => false, 30_000)]);
    proc.reportsGc = target.reportsGc === true && (await gcTotals(proc)) !== undefined;
    running.push({ target, sim, proc, eyeball: info.eyeball });
  }
  for (let round = 0; round < repeat; round++) {
    for (const size of sizes) {
      for (const c of levels) {
        record('origin (ceiling)', size, c, await cell(originUrl, size, c));
        const pairs = running.flatMap((r) => loadModes.map((mode) => ({ r, mode })));
        const order = round % 2 === 0 ? pairs : pairs.reverse();
        for (const { r, mode } of order) record(rowName(r.target.name, mode), size, c, await cell(r.eyeball, size, c, r, mode));
      }
    }
    loads.push(loadavg()[0]!);
  }
} finally {
  for (const child of children.reverse()) await child.stop();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** Median, with [min–max] when there is more than one sample. */
const spread = (xs: Array<number | undefined>, digits: number) => {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (v.length === 0) return '–';
  if (v.length === 1) return fmt(v[0]!, digits);
  return `${fmt(median(v), digits)} [${fmt(Math.min(...v), digits)}–${fmt(Math.max(...v), digits)}]`;
};

/** The load side's median busy share in percent, marked † when it bounds the cell. */
function busy(shares: number[]): string {
  const m = median(shares);
  if (!Number.isFinite(m)) return '–';
  const bound = m >= LOAD_BOUND_BUSY;
  loadBound ||= bound;
  return `${Math.round(m * 100)} %${bound ? ' †' : ''}`;
}

/** Median run-queue waits of a cell's samples, in percent of its wall time: the connector's, then the load side's. */
function waited(ss: Sample[]): string {
  const pct = (xs: Array<number | undefined>) => {
    const m = median(xs.filter((x): x is number => x !== undefined));
    return Number.isFinite(m) ? `${Math.round(m * 100)} %` : '–';
  };
  return `${pct(ss.map((s) => s.connectorWaited))} · ${pct(ss.map((s) => s.loadSideWaited))}`;
}

const names = ['origin (ceiling)', ...targets.flatMap((t) => loadModes.map((mode) => rowName(t.name, mode)))];
const lines = [
  ...loadModes.map((mode) => `Load${loadModes.length > 1 ? ` [${mode}]` : ''}: ${LOAD_MODES[mode]}.`),
  '',
  `Node ${process.version}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; ${durationMs} ms per cell after a 500 ms warm-up; ${ha} HA connections; ${repeat} round(s)${repeat > 1 ? ', median [min–max]' : ''}; ${pin ? 'connectors pinned to core 0, load, simulators and origin to core 1' : 'not pinned'}${originInSimulator ? "; each target's origin inside its simulator's process" : ''}; load average ${loads.map((l) => l.toFixed(1)).join(' → ')}.`,
  '',
  `| target | ${upload ? 'request body' : 'response'} | concurrency | req/s | MiB/s | p50 ms | p99 ms | added p99 ms | connector CPU ms/req | GC ms/req | major GCs per 100 req | connector peak RSS MiB | load side CPU ms/req | load side busy | waited for CPU: connector · load side | errors |`,
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
let loadBound = false;
for (const name of names) {
  for (const size of sizes) {
    for (const c of levels) {
      const ss = samples.get(key(name, size, c)) ?? [];
      const base = samples.get(key('origin (ceiling)', size, c)) ?? [];
      const isCeiling = name === 'origin (ceiling)';
      const rate = (s: Sample) => (s.result.requests * 1000) / s.result.elapsedMs;
      // Added p99: each sample against the ceiling's sample of the same round.
      const added = ss.map((s, i) => (base[i] ? percentile(s.result.latencies, 99) - percentile(base[i]!.result.latencies, 99) : NaN));
      lines.push(
        `| ${name} | ${label(size)} | ${c} | ${spread(ss.map(rate), 0)} | ${spread(
          // Body bytes moved: the responses', or with `--upload` the requests'.
          ss.map((s) => ((upload ? s.result.requests * size : s.result.bytes) * 1000) / s.result.elapsedMs / 1048576),
          0,
        )} | ${spread(
          ss.map((s) => percentile(s.result.latencies, 50)),
          2,
        )} | ${spread(
          ss.map((s) => percentile(s.result.latencies, 99)),
          2,
        )} | ${isCeiling ? '–' : spread(added, 2)} | ${spread(
          ss.map((s) => s.cpuPerRequestMs),
          3,
        )} | ${spread(
          ss.map((s) => s.gcMsPerRequest),
          3,
        )} | ${spread(
          ss.map((s) => (s.majorGcPerRequest === undefined ? undefined : s.majorGcPerRequest * 100)),
          1,
        )} | ${spread(
          ss.map((s) => s.peakRssMiB),
          0,
        )} | ${spread(
          ss.map((s) => loadSideMs(s.loadSide)),
          3,
        )} | ${busy(ss.map((s) => s.loadSideBusy))} | ${waited(ss)} | ${ss.reduce((n, s) => n + s.result.errors, 0)} |`,
      );
    }
  }
}
if (loadBound) {
  lines.push(
    '',
    `† The load side (this generator, the simulator and the origin${pin ? ', on core 1' : ''}) was at least ${LOAD_BOUND_BUSY * 100} % of a core busy: that cell's req/s and latencies are bounded by the load side, not by the connector.`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
