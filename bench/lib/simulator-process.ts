/**
 * The edge simulator in its own process, for benchmarks. Prints one JSON line with the edge address, CA file,
 * token, token file and eyeball URL, then a `{"registered": n}` line whenever the number of registered
 * connections changes. Exits on SIGTERM.
 */
import type * as Simulator from '../../core/src/edge-simulator/index.js';

const { startEdgeSimulator } = (await import(new URL('../../../core/build/src/edge-simulator/index.js', import.meta.url).href)) as typeof Simulator;

const sim = await startEdgeSimulator({ eyeballWaitMs: 10_000 });
const say = (message: unknown) => process.stdout.write(`${JSON.stringify(message)}\n`);
say({ edge: sim.edgeAddress, caFile: sim.caFile, token: sim.token, tokenFile: sim.tokenFile, eyeball: sim.eyeballUrl });
let last = -1;
sim.on('change', () => {
  const n = sim.registeredConnections().length;
  if (n !== last) say({ registered: (last = n) });
});
process.on('SIGTERM', () => void sim.close().then(() => process.exit(0)));
