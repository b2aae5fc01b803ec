/**
 * Warren's data path as a standalone process: the tunnel connector handing every exchange to the real proxy
 * pipeline (every built-in plugin, the HTTP/1.1 upstream pool, access log off), with one route for
 * `bench.example.com` to the origin. What a replica runs per request, without a control plane.
 *
 *   node [flags] bench/build/lib/warren-pipeline.js --edge 127.0.0.1:7844 --ca ca.crt --token-file token \
 *     --origin http://127.0.0.1:3000 [--ha 4] [--core <dir>] [--alloc-prof <dir>] [--alloc-window]
 *
 * `--core` loads Warren from another build (a tree's `core/build/src`, beside that tree's node_modules), so two
 * builds run under the same harness in one bench run. On SIGUSR2 it prints one JSON line with the garbage
 * collections so far and `process.memoryUsage()` (`{"gc":{"count":n,"ms":t,"major":m},"memory":{…}}`), which the tunnel bench reads around each cell.
 * `--alloc-prof <dir>` samples allocations for the whole run, collected objects included (what a request allocates,
 * not what stays), and writes `<dir>/alloc-<pid>.heapprofile` at exit (`lib/profile-buckets.js` reads it).
 * `--alloc-window` takes JSON lines on stdin instead, so that a driver samples exactly the requests it sends:
 * `{"allocStart": bytes}` starts sampling (that mean interval) and answers `{"allocStarted": true}`;
 * `{"allocStop": file}` stops it, writes the profile to `file` and answers `{"allocStopped": {gc}}` with the
 * collections between the two (`bench/alloc.js` drives it).
 * Logs go to stderr at `warn`. Stops gracefully on SIGTERM.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type * as Core from '../../core/src/index.js';
import type * as Schema from '../../core/src/config/schema.js';
import type * as Testing from '../../core/src/testing/index.js';
import type * as Tunnel from '../../core/src/tunnel/connector.js';
import { CONNECTOR_OPTIONS, connectorConfig } from './connector-args.js';

// tsyringe (the composition root) needs the metadata polyfill before Warren's modules load.
await import('reflect-metadata');

const { values } = parseArgs({
  options: {
    ...CONNECTOR_OPTIONS,
    core: { type: 'string' },
    'alloc-prof': { type: 'string' },
    'alloc-window': { type: 'boolean', default: false },
  },
});

const gc = { count: 0, ms: 0, major: 0, minor: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.count++;
    gc.ms += entry.duration;
    const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
  }
}).observe({ entryTypes: ['gc'] });

if (values['alloc-prof']) sampleAllocations(values['alloc-prof']);
if (values['alloc-window']) allocationWindows();

/** V8's sampling heap profiler, keeping the samples of objects the GC already collected; written at exit. */
function sampleAllocations(dir: string): void {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  // One sample per 4 KiB allocated on average; collected objects stay in the profile.
  session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  process.on('exit', () => {
    // The main thread's session answers synchronously, so the profile is written before the process ends.
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (err) process.stderr.write(`allocation profile not written: ${err.message}\n`);
      else writeFileSync(join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(result.profile));
    });
  });
}

/** Sampling windows driven on stdin (`--alloc-window`); the GC counts of each window come with its answer. */
function allocationWindows(): void {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  let gc0 = { ...gc };
  const say = (message: unknown) => process.stdout.write(`${JSON.stringify(message)}\n`);
  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line) as { allocStart?: number; survivors?: boolean; allocStop?: string };
    if (command.allocStart !== undefined) {
      gc0 = { ...gc };
      // `survivors`: drop what a scavenge collected, keeping what the young generation promoted (or still holds).
      const options = { samplingInterval: command.allocStart, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: command.survivors !== true };
      session.post('HeapProfiler.startSampling', options, () => say({ allocStarted: true }));
    } else if (command.allocStop !== undefined) {
      const file = command.allocStop;
      session.post('HeapProfiler.stopSampling', (err, result) => {
        if (err) throw err;
        writeFileSync(file, JSON.stringify(result.profile));
        say({ allocStopped: { gc: { count: gc.count - gc0.count, minor: gc.minor - gc0.minor, major: gc.major - gc0.major, ms: gc.ms - gc0.ms } } });
      });
    }
  });
}

const coreDir = values.core ? pathToFileURL(`${resolve(values.core)}/`).href : new URL('../../../core/build/src/', import.meta.url).href;
const load = <T>(path: string): Promise<T> => import(new URL(path, coreDir).href) as Promise<T>;
const core = await load<typeof Core>('index.js');
const { startProxyHarness, testRoute, testRouteTable } = await load<typeof Testing>('testing/index.js');
const { tunnelSchema } = await load<typeof Schema>('config/schema.js');
const { TunnelConnector } = await load<typeof Tunnel>('tunnel/connector.js');
const { pino } = await import('pino');

process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ gc, memory: process.memoryUsage() })}\n`));

const originUrl = new URL(values.origin!);
const logger = pino({ level: 'warn' }, pino.destination(2));
const proxy = await startProxyHarness({
  loadedPlugins: await core.resolvePlugins(core.parseConfig({})),
  logger,
  settings: { proxy: { accessLog: { enabled: false } } },
  table: testRouteTable([testRoute({ host: 'bench.example.com', endpoints: [originUrl.host] })]),
});
const controller = new AbortController();
const connector = new TunnelConnector({
  config: connectorConfig(tunnelSchema, values),
  handler: proxy.pipeline,
  logger,
  env: {},
});
process.on('SIGTERM', () => controller.abort());
await connector.start(controller.signal);
await proxy.close();
