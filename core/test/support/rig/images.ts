/**
 * The images the rig's node can "run": each maps a container spec to a local program started as a process on
 * the pod's address. Any other image fails the pod visibly (ErrImagePull, a Warning event), never silently.
 */
import type { V1Container } from '@kubernetes/client-node';
import { fileURLToPath } from 'node:url';

/** Warren's demo origin (examples/local/origin); any tag. Reports `DEMO_SERVICE` (else `demo`) as its service. */
export const DEMO_ORIGIN_IMAGE = 'warren.dev/demo-origin';

const NODE_BIN = fileURLToPath(new URL('../../../../../node_modules/.bin/node', import.meta.url));
const DEMO_ORIGIN_MAIN = fileURLToPath(new URL('./demo-origin-container.js', import.meta.url));

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

/** The process for `container` on `podIp`, or undefined when the image is not known. */
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
  return undefined;
}

/** Known image repositories, for messages. */
export const KNOWN_IMAGES: readonly string[] = [DEMO_ORIGIN_IMAGE];
