/**
 * Control-stream Cap'n Proto RPC of the Cloudflare Tunnel connector:
 * {@link RegistrationClient} is the connector's half, {@link serveRegistration} the edge's (used by the edge
 * simulator). Both run over any `Duplex` carrying the control stream's bytes.
 */
export type { ClientInfo, ConnectionDetails, RegistrationRequest, RegistrationResult } from './types.js';
export { RegistrationClient } from './client.js';
export {
  serveRegistration,
  type RegistrationHandler,
  type RegistrationServerSession,
  type RpcFaults,
} from './server.js';
export { msToNs, nsToMs } from './registration-codec.js';
