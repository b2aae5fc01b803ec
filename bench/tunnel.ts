/**
 * Tunnel connector benchmark: eyeball load → edge simulator → connector → origin, against the same load
 * straight to the origin (the ceiling). Every process is separate (load generator, simulator, connector,
 * origin) so the connector's CPU time and RSS can be read from /proc.
 *
 *   npx tsc -b bench && npx node bench/build/tunnel.js [--duration 3000] [--sizes 1024,1048576]
 *     [--concurrency 1,16,256] [--ha 4] [--connector 'name=command …'] [--no-warren] [--upload]
 *
 * `--upload` sends each size as a request body (POST, the origin answers with no body) instead of
 * downloading it.
 *
 * `--connector` (repeatable) benchmarks any other connector in the same run. The command runs through
 * `sh -c "exec …"` with these placeholders replaced: {edge} (host:port of the simulated edge), {caFile}
 * (PEM of the edge's CA), {token} and {tokenFile} (tunnel token), {origin} (origin URL), {ha}. It must
 * register with the edge; the benchmark waits for {ha} registered connections (30 s at most).
 *
 * Each cell runs a 500 ms warm-up, then `--duration` ms of closed-loop load (at most 200 000 requests).
 */
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { spawnJsonChild, type JsonChild } from './lib/child.js';
import { percentile, runLoad, type LoadResult } from './lib/load.js';
import { cpuTimeMs, peakRss } from './lib/proc-stats.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3000' },
    sizes: { type: 'string', default: '1024,1048576' },
    concurrency: { type: 'string', default: '1,16,256' },
    ha: { type: 'string', default: '4' },
    connector: { type: 'string', multiple: true, default: [] },
    'no-warren': { type: 'boolean', default: false },
    upload: { type: 'boolean', default: false },
  },
});
const durationMs = Number(values.duration);
const sizes = values.sizes.split(',').map(Number);
const levels = values.concurrency.split(',').map(Number);
const ha = Number(values.ha);
const upload = values.upload;
const uploadBodies = new Map(upload ? sizes.map((size) => [size, Buffer.alloc(size, 'u')]) : []);
const node = process.execPath;
const here = new URL('.', import.meta.url).pathname;

const connectors: Array<{ name: string; command: string }> = [];
if (!values['no-warren']) {
  connectors.push({
    name: 'warren',
    command: `${node} ${here}lib/warren-connector.js --edge {edge} --ca {caFile} --token-file {tokenFile} --origin {origin} --ha {ha}`,
  });
}
for (const spec of values.connector) {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`--connector "${spec}": expected name=command`);
  connectors.push({ name: spec.slice(0, eq), command: spec.slice(eq + 1) });
}

interface Row {
  target: string;
  size: number;
  concurrency: number;
  result: LoadResult;
  cpuPerRequestMs?: number;
  peakRssMiB?: number;
}

const label = (size: number) => (size >= 1048576 ? `${size / 1048576} MiB` : `${size / 1024} KiB`);
const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '–');

async function cell(target: string, url: string, size: number, concurrency: number, pid?: number): Promise<Row> {
  const load = upload
    ? { url, path: '/bytes/0', concurrency, headers: { host: 'bench.example.com' }, body: uploadBodies.get(size)! }
    : { url, path: `/bytes/${size}`, concurrency, headers: { host: 'bench.example.com' } };
  await runLoad({ ...load, durationMs: 500, maxRequests: 20_000 });
  const cpu0 = pid ? cpuTimeMs(pid) : 0;
  const rss = pid ? peakRss(pid) : undefined;
  const result = await runLoad({ ...load, durationMs, maxRequests: 200_000 });
  const row: Row = { target, size, concurrency, result };
  if (pid) {
    row.cpuPerRequestMs = (cpuTimeMs(pid) - cpu0) / Math.max(1, result.requests);
    row.peakRssMiB = rss!.stop() / 1048576;
  }
  process.stderr.write(`${target} ${label(size)} c=${concurrency}: ${Math.round((result.requests * 1000) / result.elapsedMs)} req/s, ${result.errors} errors\n`);
  return row;
}

const origin = spawnJsonChild(node, [`${here}lib/origin-server.js`]);
const children: JsonChild[] = [origin];
const rows: Row[] = [];
try {
  const { listening: originUrl } = await origin.next<{ listening: string }>((m) => typeof m.listening === 'string');
  for (const size of sizes) for (const c of levels) rows.push(await cell('origin (ceiling)', originUrl, size, c));

  for (const connector of connectors) {
    const sim = spawnJsonChild(node, [`${here}lib/simulator-process.js`]);
    children.push(sim);
    const info = await sim.next<{ edge: string; caFile: string; token: string; tokenFile: string; eyeball: string }>((m) => typeof m.edge === 'string');
    const command = connector.command
      .replaceAll('{edge}', info.edge)
      .replaceAll('{caFile}', info.caFile)
      .replaceAll('{token}', info.token)
      .replaceAll('{tokenFile}', info.tokenFile)
      .replaceAll('{origin}', originUrl)
      .replaceAll('{ha}', String(ha));
    const proc = spawnJsonChild('sh', ['-c', `exec ${command}`], { quiet: false });
    children.push(proc);
    await sim.next((m) => typeof m.registered === 'number' && m.registered >= ha, 30_000);
    for (const size of sizes) for (const c of levels) rows.push(await cell(connector.name, info.eyeball, size, c, proc.pid));
    await proc.stop();
    await sim.stop();
  }
} finally {
  for (const child of children) await child.stop();
}

const ceiling = new Map(rows.filter((r) => r.target === 'origin (ceiling)').map((r) => [`${r.size}/${r.concurrency}`, r.result]));
const lines = [
  `Node ${process.version}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; ${durationMs} ms per cell after a 500 ms warm-up; ${ha} HA connections.`,
  '',
  `| target | ${upload ? 'request body' : 'response'} | concurrency | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | connector CPU ms/req | connector peak RSS MiB | errors |`,
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
for (const r of rows) {
  const base = ceiling.get(`${r.size}/${r.concurrency}`)!;
  const p50 = percentile(r.result.latencies, 50);
  const p99 = percentile(r.result.latencies, 99);
  const isCeiling = r.target === 'origin (ceiling)';
  lines.push(
    `| ${r.target} | ${label(r.size)} | ${r.concurrency} | ${Math.round((r.result.requests * 1000) / r.result.elapsedMs)} | ${fmt(p50)} | ${fmt(p99)} | ${isCeiling ? '–' : fmt(p50 - percentile(base.latencies, 50))} | ${isCeiling ? '–' : fmt(p99 - percentile(base.latencies, 99))} | ${r.cpuPerRequestMs === undefined ? '–' : fmt(r.cpuPerRequestMs, 3)} | ${r.peakRssMiB === undefined ? '–' : fmt(r.peakRssMiB, 0)} | ${r.result.errors} |`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
