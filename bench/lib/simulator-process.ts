/**
 * The edge simulator in its own process, for benchmarks. Prints one JSON line with the edge address, CA file,
 * token, token file and eyeball URL, then a `{"registered": n}` line whenever the number of registered
 * connections changes. Exits on SIGTERM.
 *
 * On stdin it takes `{"streamLoad": StreamLoadCommand}` lines: it runs that closed loop of tunnel streams inside
 * this process and prints `{"streamLoadResult": …}` with the latencies as base64 of their Float64Array
 * (`streamLoadIn` in stream-load-client.ts is the other end). One load at a time.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type * as Simulator from '../../core/src/edge-simulator/index.js';
import { startBenchOrigin } from './origin.js';
import type { StreamLoadCommand } from './stream-load-client.js';

const { startEdgeSimulator, runStreamLoad } = (await import(new URL('../../../core/build/src/edge-simulator/index.js', import.meta.url).href)) as typeof Simulator;

const { values } = parseArgs({ options: { origin: { type: 'boolean', default: false } } });
const sim = await startEdgeSimulator({ eyeballWaitMs: 10_000 });
const origin = values.origin ? await startBenchOrigin() : undefined;
const say = (message: unknown) => process.stdout.write(`${JSON.stringify(message)}\n`);
say({ edge: sim.edgeAddress, caFile: sim.caFile, token: sim.token, tokenFile: sim.tokenFile, eyeball: sim.eyeballUrl, ...(origin ? { origin: origin.url } : {}) });
let last = -1;
sim.on('change', () => {
  const n = sim.registeredConnections().length;
  if (n !== last) say({ registered: (last = n) });
});

/** Request bodies by size, built once. */
const bodies = new Map<number, Buffer>();
createInterface({ input: process.stdin }).on('line', (line) => {
  let command: { streamLoad?: StreamLoadCommand };
  try {
    command = JSON.parse(line) as typeof command;
  } catch {
    return;
  }
  const spec = command.streamLoad;
  if (!spec) return;
  const { bodySize, ...options } = spec;
  let body: Buffer | undefined;
  if (bodySize !== undefined) {
    body = bodies.get(bodySize);
    if (!body) bodies.set(bodySize, (body = Buffer.alloc(bodySize, 'u')));
  }
  void runStreamLoad(sim, { ...options, ...(body ? { body } : {}) }).then((r) =>
    say({
      streamLoadResult: {
        requests: r.requests,
        errors: r.errors,
        bytes: r.bytes,
        elapsedMs: r.elapsedMs,
        statuses: [...r.statuses],
        latencies: Buffer.from(r.latencies.buffer, r.latencies.byteOffset, r.latencies.byteLength).toString('base64'),
      },
    }),
  );
});
process.on('SIGTERM', () => void Promise.all([sim.close(), origin?.close()]).then(() => process.exit(0)));
