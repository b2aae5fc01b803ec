/**
 * Control-stream Cap'n Proto RPC of the Cloudflare Tunnel connector (cloudflared-http2-protocol.md §5):
 * {@link RegistrationClient} is the connector's half, {@link serveRegistration} the edge's (used by the edge
 * simulator). Both run over any `Duplex` carrying the control stream's bytes.
 */
export type { ClientInfo, ConnectionDetails, ConnectionErrorInfo, ConnectionOptions, RegistrationRequest, RegistrationResult, TunnelAuth } from './types.js';
export { RegistrationClient, SHUTDOWN_REASON, type RegistrationClientOptions } from './client.js';
export {
  REGISTRATION_EXPORT_ID,
  serveRegistration,
  type RegistrationHandler,
  type RegistrationServerSession,
  type RpcFaults,
  type ServeRegistrationOptions,
} from './server.js';
export { RpcEventLog, type RpcEvent, type RpcEventType } from './events.js';
export type { RpcLimits } from './transport.js';
export { REGISTRATION_SERVER_INTERFACE_ID, RegistrationMethod, type RegistrationMethodName } from './schema.js';
export { msToNs, nsToMs } from './registration-codec.js';
