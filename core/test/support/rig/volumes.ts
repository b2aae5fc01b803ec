/**
 * A pod's volumes, materialised by the rig's node as folders in the pod's own folder (the mount wrapper,
 * pod-mounts.ts, puts them where the containers expect them):
 *
 *  - emptyDir: an empty folder;
 *  - configMap, secret: one file per key (or per `items` entry), `defaultMode` applied;
 *  - projected: serviceAccountToken (a TokenRequest bound to the pod, as the kubelet asks for), configMap, secret
 *    and downwardAPI (metadata.name, metadata.namespace, metadata.uid, metadata.labels/annotations) sources. The
 *    apiserver's ServiceAccount admission adds such a volume (`kube-api-access-…`) to every pod.
 *
 * Any other kind throws an error naming the volume, which the node reports on the pod. Files are written once:
 * later changes to a ConfigMap or Secret, and token rotation, are not followed.
 */
import type { CoreV1Api, V1Pod, V1Volume } from '@kubernetes/client-node';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

type KeyToPath = { key: string; path: string; mode?: number };

function writeKeys(dir: string, data: Record<string, Buffer>, items: readonly KeyToPath[] | undefined, mode: number, what: string): void {
  const entries = items ? items.map((i) => [i.path, i.key, i.mode] as const) : Object.keys(data).map((k) => [k, k, undefined] as const);
  for (const [path, key, itemMode] of entries) {
    const value = data[key];
    if (value === undefined) throw new Error(`${what} has no key "${key}"`);
    const file = join(dir, normalize(path));
    if (!file.startsWith(`${dir}/`)) throw new Error(`${what}: path "${path}" leaves the volume`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, value);
    chmodSync(file, itemMode ?? mode);
  }
}

const utf8 = (data: Record<string, string> | undefined) => Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v)]));
const base64 = (data: Record<string, string> | undefined) => Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));

const notFound = (err: unknown) => (err as { code?: number }).code === 404;

/** The data of a ConfigMap or Secret as bytes; undefined when it is missing and `optional`. */
async function objectData(
  kind: 'ConfigMap' | 'Secret',
  read: () => Promise<Record<string, Buffer>>,
  name: string,
  optional: boolean | undefined,
  what: string,
): Promise<Record<string, Buffer> | undefined> {
  try {
    return await read();
  } catch (err) {
    if (notFound(err) && optional) return undefined;
    throw new Error(`${what}: ${kind} "${name}" ${notFound(err) ? 'not found' : `unreadable: ${(err as Error).message}`}`);
  }
}

const configMapData = (core: CoreV1Api, namespace: string, name: string, optional: boolean | undefined, what: string) =>
  objectData(
    'ConfigMap',
    async () => {
      const cm = await core.readNamespacedConfigMap({ namespace, name });
      return { ...utf8(cm.data), ...base64(cm.binaryData) };
    },
    name,
    optional,
    what,
  );

const secretData = (core: CoreV1Api, namespace: string, name: string, optional: boolean | undefined, what: string) =>
  objectData(
    'Secret',
    async () => {
      const secret = await core.readNamespacedSecret({ namespace, name });
      return { ...base64(secret.data), ...utf8(secret.stringData) };
    },
    name,
    optional,
    what,
  );

function fieldValue(pod: V1Pod, fieldPath: string, what: string): string {
  const m = pod.metadata!;
  const labels = (o: Record<string, string> | undefined) =>
    Object.entries(o ?? {})
      .map(([k, v]) => `${k}="${v}"`)
      .join('\n');
  switch (fieldPath) {
    case 'metadata.name':
      return m.name ?? '';
    case 'metadata.namespace':
      return m.namespace ?? '';
    case 'metadata.uid':
      return m.uid ?? '';
    case 'metadata.labels':
      return labels(m.labels);
    case 'metadata.annotations':
      return labels(m.annotations);
    default:
      throw new Error(`${what}: field "${fieldPath}" is not supported by the rig's node`);
  }
}

/** Writes every volume of `pod` under `root` (one folder per volume) and returns volume name → folder. */
export async function prepareVolumes(pod: V1Pod, core: CoreV1Api, root: string): Promise<Map<string, string>> {
  const namespace = pod.metadata!.namespace!;
  const folders = new Map<string, string>();
  for (const volume of pod.spec?.volumes ?? []) {
    const dir = join(root, volume.name);
    mkdirSync(dir, { recursive: true });
    await fill(volume, dir);
    folders.set(volume.name, dir);
  }
  return folders;

  async function fill(volume: V1Volume, dir: string): Promise<void> {
    const what = `volume "${volume.name}"`;
    if (volume.emptyDir) return;
    if (volume.configMap) {
      const data = await configMapData(core, namespace, volume.configMap.name!, volume.configMap.optional, what);
      if (data) writeKeys(dir, data, volume.configMap.items, volume.configMap.defaultMode ?? 0o644, what);
      return;
    }
    if (volume.secret) {
      const data = await secretData(core, namespace, volume.secret.secretName!, volume.secret.optional, what);
      if (data) writeKeys(dir, data, volume.secret.items, volume.secret.defaultMode ?? 0o644, what);
      return;
    }
    if (volume.projected) {
      const mode = volume.projected.defaultMode ?? 0o644;
      for (const source of volume.projected.sources ?? []) {
        if (source.serviceAccountToken) {
          const t = source.serviceAccountToken;
          const res = await core.createNamespacedServiceAccountToken({
            namespace,
            name: pod.spec?.serviceAccountName || 'default',
            body: {
              spec: {
                audiences: t.audience ? [t.audience] : [],
                expirationSeconds: t.expirationSeconds ?? 3607,
                boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name, uid: pod.metadata!.uid },
              },
            },
          });
          writeKeys(dir, { token: Buffer.from(res.status?.token ?? '') }, [{ key: 'token', path: t.path }], mode, what);
        } else if (source.configMap) {
          const data = await configMapData(core, namespace, source.configMap.name!, source.configMap.optional, what);
          if (data) writeKeys(dir, data, source.configMap.items, mode, what);
        } else if (source.secret) {
          const data = await secretData(core, namespace, source.secret.name!, source.secret.optional, what);
          if (data) writeKeys(dir, data, source.secret.items, mode, what);
        } else if (source.downwardAPI) {
          for (const item of source.downwardAPI.items ?? []) {
            if (!item.fieldRef) throw new Error(`${what}: downwardAPI item "${item.path}" needs a fieldRef (resourceFieldRef is not supported)`);
            writeKeys(dir, { v: Buffer.from(fieldValue(pod, item.fieldRef.fieldPath, what)) }, [{ key: 'v', path: item.path, mode: item.mode }], mode, what);
          }
        } else {
          throw new Error(`${what}: a projected source other than serviceAccountToken, configMap, secret or downwardAPI is not supported by the rig's node`);
        }
      }
      return;
    }
    const kind = Object.keys(volume).find((k) => k !== 'name') ?? 'unknown';
    throw new Error(`${what}: ${kind} volumes are not supported by the rig's node (emptyDir, configMap, secret, projected)`);
  }
}
