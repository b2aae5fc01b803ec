import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, getCACertificates, type SecureContext, type TLSSocket } from 'node:tls';
import { ErrorCode, WarrenError } from '../errors.js';
import { CLOUDFLARE_EDGE_ROOTS } from './cloudflare-roots.js';
import type { EdgeAddress } from './discovery.js';
import { TunnelConnectionError } from './errors.js';
import { EDGE_SERVER_NAME } from './protocol.js';

/**
 * TLS to the edge: server name and verified name `h2.cftunnel.com`, no ALPN offered, TLS 1.2
 * minimum, no client certificate. Trusted roots: the system roots plus the three Cloudflare CAs, or exactly
 * the PEM file of `tunnel.edgeCaFile` when set (it replaces, never extends, the roots).
 */

/** Key exchange groups: post-quantum first (X25519MLKEM768), then P-256, plus classic X25519. */
const EDGE_GROUPS = 'X25519MLKEM768:P-256:X25519';

/** TCP connect and TLS handshake each get this long. */
const EDGE_DIAL_TIMEOUT_MS = 15_000;

/** Root certificates for the edge: `edgeCaPem` alone when given, else system roots + Cloudflare CAs. */
export function edgeTrustRoots(edgeCaPem?: string): string[] {
  if (edgeCaPem !== undefined) return [edgeCaPem];
  const roots = new Set<string>();
  for (const kind of ['default', 'system'] as const) {
    try {
      for (const pem of getCACertificates(kind)) roots.add(pem);
    } catch {
      // A platform without a readable system store still has the bundled roots.
    }
  }
  for (const root of CLOUDFLARE_EDGE_ROOTS) roots.add(`${root.pem.trim()}\n`);
  return [...roots];
}

/**
 * Builds the TLS context for edge connections once (parsing a few hundred roots per dial would be
 * wasteful). `edgeCaFile` is read here; a missing or certificate-less file is a clear configuration error.
 */
export function createEdgeSecureContext(edgeCaFile?: string, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): SecureContext {
  let custom: string | undefined;
  if (edgeCaFile !== undefined) {
    try {
      custom = readFile(edgeCaFile);
    } catch (err) {
      throw new WarrenError(ErrorCode.ConfigInvalid, `tunnel.edgeCaFile "${edgeCaFile}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
        terminal: true,
        cause: err,
      });
    }
    if (!custom.includes('-----BEGIN CERTIFICATE-----')) {
      throw new WarrenError(ErrorCode.ConfigInvalid, `tunnel.edgeCaFile "${edgeCaFile}" holds no PEM certificate`, { terminal: true });
    }
  }
  try {
    return createSecureContext({ ca: edgeTrustRoots(custom), minVersion: 'TLSv1.2', ecdhCurve: EDGE_GROUPS });
  } catch (err) {
    throw new WarrenError(ErrorCode.ConfigInvalid, `tunnel.edgeCaFile "${edgeCaFile ?? '(system roots)'}" is not a usable CA bundle: ${(err as Error).message}`, {
      terminal: true,
      cause: err,
    });
  }
}

export interface DialOptions {
  readonly secureContext: SecureContext;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Dials one edge address: TCP (bounded), then the TLS handshake (bounded separately), verifying the
 * certificate for `h2.cftunnel.com`. Rejects with a retryable `TunnelConnectionError` of kind `dial`.
 */
export async function dialEdge(address: EdgeAddress, options: DialOptions): Promise<TLSSocket> {
  const timeoutMs = options.timeoutMs ?? EDGE_DIAL_TIMEOUT_MS;
  const tcp = await step<Socket>(address, 'TCP connect', timeoutMs, options.signal, (done) => {
    const socket = netConnect({ host: address.host, port: address.port, noDelay: true });
    socket.once('connect', () => {
      socket.setNoDelay(true);
      done(undefined, socket);
    });
    socket.once('error', (err) => done(err));
    return () => socket.destroy();
  });
  return step<TLSSocket>(address, 'TLS handshake', timeoutMs, options.signal, (done) => {
    const socket = tlsConnect({
      socket: tcp,
      servername: EDGE_SERVER_NAME,
      secureContext: options.secureContext,
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    });
    socket.once('secureConnect', () => done(undefined, socket));
    socket.once('error', (err) => done(err));
    return () => {
      socket.destroy();
      tcp.destroy();
    };
  });
}

function step<T>(
  address: EdgeAddress,
  what: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  start: (done: (err: Error | undefined, value?: T) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, value?: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        cancel();
        reject(new TunnelConnectionError('dial', `${what} to edge ${address.label} failed: ${err.message}`, { cause: err, retryable: true }));
      } else resolve(value as T);
    };
    const onAbort = () => finish(new Error('aborted'));
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    const cancel = start(finish);
    if (signal?.aborted) onAbort();
  });
}
