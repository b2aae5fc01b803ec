import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { tunnelMode } from '../cloudflare/tunnel-lifecycle.js';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { EdgeSimulator } from '../edge-simulator/index.js';
import { ErrorCode, isWarrenError, WarrenError } from '../errors.js';
import { componentLogger } from '../observability/logger.js';
import { describeCredentials, type TunnelCredentials } from '../tunnel/credentials.js';
import { listenError, splitListen } from './listen.js';
import { toTunnelCredentials } from './tunnel.js';

/**
 * What carries requests into a folder-mode Warren: the tunnel the settings supply (token or credentials file,
 * exactly as in Kubernetes mode), nothing (`tunnel.enabled` false), or — when no tunnel is configured — the
 * built-in edge simulator (the demo). A managed tunnel needs a cluster Secret to keep its credentials in, so folder
 * mode refuses it.
 */
export type FolderModeEdge = 'tunnel' | 'simulator' | 'none';

export function folderModeEdge(config: Readonly<Config>, env: NodeJS.ProcessEnv): FolderModeEdge {
  let mode: ReturnType<typeof tunnelMode>;
  try {
    mode = tunnelMode(config, env);
  } catch (err) {
    // No tunnel at all is the demo; a half-configured managed tunnel is refused below, never silently simulated.
    if (!isWarrenError(err, ErrorCode.ConfigInvalid)) throw err;
    if (config.cloudflare.tunnelName) throw refuseManagedTunnel();
    return 'simulator';
  }
  if (mode === 'disabled') return 'none';
  if (mode === 'supplied') return 'tunnel';
  throw refuseManagedTunnel();
}

function refuseManagedTunnel(): WarrenError {
  return new WarrenError(
    ErrorCode.ConfigInvalid,
    "folder mode cannot run a managed tunnel (cloudflare.tunnelName): its credentials are kept in a cluster Secret. Give the tunnel's token (env TUNNEL_TOKEN or tunnel.tokenFile) or tunnel.credentialsFile instead",
    { terminal: true },
  );
}

/** Folder mode's settings: no leader election (one process leads), and health on loopback unless chosen. */
export function folderModeConfig(config: Readonly<Config>, tunnel: Partial<Config['tunnel']> = {}): Readonly<Config> {
  return parseConfig({
    ...config,
    tunnel: { ...config.tunnel, ...tunnel },
    kubernetes: { ...config.kubernetes, leaderElection: { ...config.kubernetes.leaderElection, enabled: false } },
    // A laptop run keeps its health and metrics endpoint on loopback unless the user chose an address.
    server: { ...config.server, listen: config.server.listen === DEFAULT_SERVER_LISTEN ? '127.0.0.1:10254' : config.server.listen },
  });
}

/**
 * The demo's edge: the built-in edge simulator on loopback with fresh credentials and its own CA, its eyeball
 * entrance on `local.eyeballListen`, and the connector pointed at it (one edge listener per HA connection).
 */
export async function startLocalEdge(
  config: Readonly<Config>,
  logger: Logger,
): Promise<{ simulator: EdgeSimulator; config: Readonly<Config>; credentials: TunnelCredentials }> {
  const [host, portText] = splitListen(config.local.eyeballListen);
  // Loaded only for the demo: a supplied tunnel or Kubernetes mode never runs the simulator.
  const { EdgeSimulator } = await import('../edge-simulator/index.js');
  const simulator = new EdgeSimulator({
    edgeListeners: config.tunnel.haConnections,
    eyeball: { host, port: Number(portText) },
    logger: componentLogger(logger, 'edge-simulator'),
  });
  try {
    await simulator.start();
  } catch (err) {
    await closeLocalEdge(simulator);
    throw listenError(err, 'local.eyeballListen', config.local.eyeballListen);
  }
  const effective = folderModeConfig(config, { enabled: true, edgeAddresses: [...simulator.edgeAddresses], edgeCaFile: simulator.caFile });
  return { simulator, config: effective, credentials: toTunnelCredentials(simulator.credentials) };
}

/** Stops the demo's simulator and removes its files (CA key, tunnel token): nothing of a run stays in the temp folder. */
export async function closeLocalEdge(simulator: EdgeSimulator): Promise<void> {
  await simulator.close();
  await rm(simulator.ca.dir, { recursive: true, force: true });
}

/** The startup line that says what carries requests in folder mode. */
export function logFolderModeEdge(
  logger: Logger,
  edge: FolderModeEdge,
  config: Readonly<Config>,
  simulator: EdgeSimulator | undefined,
  credentials: TunnelCredentials | undefined,
): void {
  const folder = config.source.folder;
  if (edge === 'simulator') {
    logger.info(
      { edge: 'simulator', folder, eyeball: simulator!.eyeballUrl },
      'folder mode with the built-in edge simulator (demo): no tunnel is configured, so requests enter the simulator and cross a simulated tunnel',
    );
  } else if (edge === 'tunnel') {
    const t = config.tunnel;
    logger.info(
      {
        edge: 'cloudflare',
        folder,
        ...(credentials ? describeCredentials(credentials) : {}),
        edgeAddresses: t.edgeAddresses.length ? t.edgeAddresses : 'discovered by DNS',
        haConnections: t.haConnections,
      },
      'folder mode on the configured tunnel: connecting to the edge; no edge simulator',
    );
  } else {
    logger.info(
      { edge: 'none', folder, proxyListen: config.server.proxyListen },
      'folder mode without a tunnel (tunnel.enabled is false): requests enter only through server.proxyListen',
    );
  }
}

const DEFAULT_SERVER_LISTEN = '0.0.0.0:10254';
