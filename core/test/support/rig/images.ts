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

/**
 * The Gateway API conformance echo backend, any tag: runs the echo-basic binary that scripts/test-binaries.sh builds
 * (the version pinned in tools/echo-basic), in a network namespace of its own (see pod-network.ts).
 */
/** Warren itself, as the chart names its image by default (`warren:<appVersion>`): the built controller. */
export const WARREN_IMAGE = 'warren';

export const ECHO_BASIC_IMAGES: readonly string[] = ['registry.k8s.io/gateway-api/echo-basic', 'gcr.io/k8s-staging-gateway-api/echo-basic'];

export const NODE_BIN = fileURLToPath(new URL('../../../../../node_modules/.bin/node', import.meta.url));
const DEMO_ORIGIN_MAIN = fileURLToPath(new URL('./demo-origin-container.js', import.meta.url));
const WARREN_MAIN = fileURLToPath(new URL('../../../src/main.js', import.meta.url));
const POD_NETWORK_MAIN = fileURLToPath(new URL('./pod-network.js', import.meta.url));

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
    const env = (name: string, fallback: string) => container.env?.find((e) => e.name === name)?.value ?? fallback;
    // echo-basic listens on HTTP_PORT and H2C_PORT (and HTTPS_PORT with a certificate, which needs volumes the
    // rig does not have); declared container ports are relayed too.
    const ports = new Set([Number(env('HTTP_PORT', '3000')), Number(env('H2C_PORT', '3001')), ...(container.ports ?? []).map((p) => p.containerPort)]);
    return { command: NODE_BIN, args: [POD_NETWORK_MAIN, 'outer', podIp, [...ports].join(','), '--', binary], env: {} };
  }
  return undefined;
}

/** Known image repositories, for messages. */
export const KNOWN_IMAGES: readonly string[] = [DEMO_ORIGIN_IMAGE, WARREN_IMAGE, ...ECHO_BASIC_IMAGES];
