/**
 * The images the rig's node can "run": each maps a container spec to a local program started as a process on
 * the pod's address. Any other image fails the pod visibly (ErrImagePull, a Warning event), never silently.
 */
import type { V1Container } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTestBinaries } from '../apiserver.js';

/** Warren's demo origin (examples/local/origin); any tag. Reports `DEMO_SERVICE` (else `demo`) as its service. */
export const DEMO_ORIGIN_IMAGE = 'warren.dev/demo-origin';

/** Warren itself, as the chart names its image by default (`warren:<appVersion>`): the built controller. */
export const WARREN_IMAGE = 'warren';

/**
 * The Gateway API conformance echo backend, any tag: runs the echo-basic binary that scripts/test-binaries.sh builds
 * (the version pinned in tools/echo-basic), in a network namespace of its own (see pod-network.ts).
 */
export const ECHO_BASIC_IMAGES: readonly string[] = ['registry.k8s.io/gateway-api/echo-basic', 'gcr.io/k8s-staging-gateway-api/echo-basic'];

/**
 * CoreDNS, as the Gateway API conformance base manifests deploy it for UDPRoute tests: NOT run. A placeholder
 * (dns-placeholder.ts) holds UDP port 53 on the pod address and answers every query REFUSED, so the pod can be
 * Ready like the rest of the suite's namespace; nothing resolves through it.
 */
export const COREDNS_IMAGE = 'registry.k8s.io/coredns/coredns';

export const NODE_BIN = fileURLToPath(new URL('../../../../../node_modules/.bin/node', import.meta.url));
const DEMO_ORIGIN_MAIN = fileURLToPath(new URL('./demo-origin-container.js', import.meta.url));
const WARREN_MAIN = fileURLToPath(new URL('../../../src/main.js', import.meta.url));
const POD_NETWORK_MAIN = fileURLToPath(new URL('./pod-network.js', import.meta.url));
const DNS_PLACEHOLDER_MAIN = fileURLToPath(new URL('./dns-placeholder.js', import.meta.url));

/** How to start one container: command, arguments and the environment the image adds. */
export interface ContainerProcess {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** The repository part of an image reference: `a.io/b/c:tag` and `a.io/b/c@sha256:…` → `a.io/b/c`. */
export function imageRepository(image: string): string {
  const noDigest = image.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/**
 * The process for `container` on `podIp`, or undefined when the image is not known. Throws when the image is known
 * but its program is missing (the message says how to get it).
 */
export function containerProcess(container: V1Container, podIp: string): ContainerProcess | undefined {
  const repository = imageRepository(container.image ?? '');
  if (repository === DEMO_ORIGIN_IMAGE) {
    const ports = container.ports ?? [];
    const http = ports.find((p) => p.name !== 'health') ?? { containerPort: 8080 };
    const health = ports.find((p) => p.name === 'health');
    return {
      command: NODE_BIN,
      args: [DEMO_ORIGIN_MAIN],
      env: {
        POD_IP: podIp,
        HTTP_PORT: String(http.containerPort),
        ...(health ? { HEALTH_PORT: String(health.containerPort) } : {}),
      },
    };
  }
  if (repository === WARREN_IMAGE) {
    if (container.command?.length) throw new Error(`image "${container.image}": a command override is not supported by the rig's node`);
    return { command: NODE_BIN, args: [WARREN_MAIN, ...(container.args ?? [])], env: {} };
  }
  if (ECHO_BASIC_IMAGES.includes(repository)) {
    const binary = join(dirname(findTestBinaries().apiserver), 'echo-basic');
    if (!existsSync(binary)) throw new Error(`echo-basic not found at ${binary}; run "bash scripts/test-binaries.sh"`);
    const ports = new Set([...echoBasicPorts(container), ...(container.ports ?? []).map((p) => p.containerPort)]);
    return { command: NODE_BIN, args: [POD_NETWORK_MAIN, 'outer', podIp, [...ports].join(','), '--', binary], env: {} };
  }
  if (repository === COREDNS_IMAGE) {
    return { command: NODE_BIN, args: [DNS_PLACEHOLDER_MAIN], env: { POD_IP: podIp } };
  }
  return undefined;
}

/**
 * The TCP ports echo-basic listens on in the mode the container's env selects (read from echo-basic's sources at
 * the pinned version): HTTP on HTTP_PORT (3000) and h2c on H2C_PORT (3001), plus HTTPS on HTTPS_PORT (8443) when
 * TLS_SERVER_CERT and TLS_SERVER_PRIVKEY are set; with GRPC_ECHO_SERVER gRPC over h2c on HTTP_PORT (and TLS on
 * HTTPS_PORT with TLS_SERVER_CERT and TLS_SERVER_PRIV_KEY); with TCP_ECHO_SERVER a TCP echo on TCP_PORT (3000)
 * and TLS on TLS_PORT (8443). UDP mode is not relayed (the relay is TCP only).
 */
export function echoBasicPorts(container: V1Container): number[] {
  const env = (name: string) => container.env?.find((e) => e.name === name)?.value;
  const port = (name: string, fallback: number) => Number(env(name) || fallback);
  if (env('GRPC_ECHO_SERVER')) {
    return [port('HTTP_PORT', 3000), ...(env('TLS_SERVER_CERT') && env('TLS_SERVER_PRIV_KEY') ? [port('HTTPS_PORT', 8443)] : [])];
  }
  if (env('TCP_ECHO_SERVER')) return [port('TCP_PORT', 3000), port('TLS_PORT', 8443)];
  const tls = env('TLS_SERVER_CERT') && env('TLS_SERVER_PRIVKEY');
  return [port('HTTP_PORT', 3000), port('H2C_PORT', 3001), ...(tls ? [port('HTTPS_PORT', 8443)] : [])];
}

/** Known image repositories, for messages. */
export const KNOWN_IMAGES: readonly string[] = [DEMO_ORIGIN_IMAGE, WARREN_IMAGE, ...ECHO_BASIC_IMAGES, COREDNS_IMAGE];
