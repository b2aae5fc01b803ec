/**
 * Values exchanged through the tunnel RPC's `RegistrationServer` interface, in TypeScript form.
 * Byte fields are raw bytes, never text encodings of them.
 */

/** What authenticates a connection: the account tag and the tunnel secret. */
interface TunnelAuth {
  accountTag: string;
  /** Raw secret bytes (the credentials file holds them base64-encoded; decode before use). Never log these. */
  tunnelSecret: Buffer;
}

/** Describes the connector process; identical for every connection of one process. */
export interface ClientInfo {
  /** 16 raw bytes of the connector UUID (generated once per process). */
  clientId: Buffer;
  /** Advertised features (e.g. `serialized_headers`, `allow_remote_config`). */
  features: string[];
  /** Connector version string. */
  version: string;
  /** `os_arch`, e.g. `linux_amd64`. */
  arch: string;
}

interface ConnectionOptions {
  client: ClientInfo;
  /** Local IP of the socket to the edge: 16 bytes, IPv4 as `::ffff:a.b.c.d` (4-byte IPv4 is mapped on encode). */
  originLocalIp?: Buffer;
  replaceExisting: boolean;
  /** 0–255. */
  compressionQuality: number;
  /** Backoff retries this connection slot has used so far (saturates at 255 on the wire). */
  numPreviousAttempts: number;
}

/** The parameters of `registerConnection`. */
export interface RegistrationRequest {
  auth: TunnelAuth;
  /** 16 raw bytes of the tunnel UUID. */
  tunnelId: Buffer;
  /** HA slot, 0–255. */
  connIndex: number;
  options: ConnectionOptions;
}

/** The edge's answer when registration succeeded. */
export interface ConnectionDetails {
  /** 16 raw bytes of the connection UUID (the client rejects any other length). */
  uuid: Buffer;
  /** Edge location (colo code, e.g. "LIS"). */
  locationName: string;
  /** True when the tunnel's configuration is managed remotely (then no local configuration is pushed). */
  tunnelIsRemotelyManaged: boolean;
}

/** The edge's answer when it refused registration. */
export interface ConnectionErrorInfo {
  /** Error text; `EDUPCONN` means "already connected to this edge server, try another address". */
  cause: string;
  /** Minimum delay before retrying, in whole milliseconds (nanoseconds on the wire). */
  retryAfterMs: number;
  shouldRetry: boolean;
}

export type RegistrationResult = { ok: true; details: ConnectionDetails } | { ok: false; error: ConnectionErrorInfo };
