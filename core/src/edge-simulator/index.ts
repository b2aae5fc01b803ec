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
export { startEdgeSimulator, EdgeSimulator, EdgeFaults, collectReply } from './simulator.js';
export type { EdgeSimulatorOptions, SimulatorCredentials, TunnelRequestOptions, TunnelReply } from './simulator.js';
export { SimulatedConnection } from './edge-connection.js';
export { decodeTunnelResponse, HOP_BY_HOP } from './tunnel-response.js';
export type { TunnelResponseHead } from './tunnel-response.js';
export type { Eyeball } from './eyeball.js';
export { createOriginForwarder } from './origin-forwarder.js';
export type { OriginForwarderOptions } from './origin-forwarder.js';
