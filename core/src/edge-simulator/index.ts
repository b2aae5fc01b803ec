/**
 * Warren's edge simulator: the edge half of Cloudflare Tunnel over HTTP/2, for tests, benchmarks and local
 * mode. See {@link startEdgeSimulator}.
 *
 * @example
 * const sim = await startEdgeSimulator();
 * // connector settings: tunnel.edgeAddresses = [sim.edgeAddress], tunnel.edgeCaFile = sim.caFile,
 * // env TUNNEL_TOKEN = sim.token
 * await sim.waitForRegistrations(1);
 * await fetch(`${sim.eyeballUrl}/hello`, { headers: { host: 'app.example.com' } });
 * await sim.close();
 */
export { startEdgeSimulator, EdgeSimulator } from './simulator.js';
export type { EdgeSimulatorOptions, TunnelReply } from './simulator.js';
export type { EyeballCertificate, EyeballTls } from './eyeball.js';
export { tunnelHostname } from './tunnel-entrances.js';
export type { TunnelEntrance, TunnelEntrancesOptions } from './tunnel-entrances.js';
export { runStreamLoad } from './stream-load.js';
export type { StreamLoadOptions, StreamLoadResult } from './stream-load.js';
export { ClosedLoopTally, ClosedLoopWorker, declaredLength, runClosedLoop } from './closed-loop.js';
export type { ClosedLoopBounds, ClosedLoopResult } from './closed-loop.js';
