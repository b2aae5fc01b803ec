import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import { GATEWAY_API_VERSION } from '../../src/gateway/types.js';
import type { KubeClient } from '../../src/k8s/api/client.js';

/**
 * The Gateway API's standard-channel CRDs, read from the Go module cache at test time (they are not copied into
 * the repository): `$(go env GOMODCACHE)/sigs.k8s.io/gateway-api@<version>/config/crd/standard`, falling back to
 * `$GOMODCACHE`, then `~/go/pkg/mod`, when `go` is not on PATH.
 */
export function gatewayCrdDir(): string {
  let cache = process.env.GOMODCACHE;
  if (!cache) {
    try {
      cache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8', timeout: 10_000 }).trim();
    } catch {
      cache = join(homedir(), 'go', 'pkg', 'mod');
    }
  }
  const dir = join(cache, 'sigs.k8s.io', `gateway-api@${GATEWAY_API_VERSION}`, 'config', 'crd', 'standard');
  if (!existsSync(dir)) throw new Error(`Gateway API CRDs not found in ${dir}; fetch the module: go mod download sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}`);
  return dir;
}

interface Crd {
  kind?: string;
  metadata?: { name?: string };
  status?: { conditions?: Array<{ type?: string; status?: string }> };
}

/** Creates the standard CRDs (CustomResourceDefinitions only) and waits until each is Established. */
export async function installGatewayCrds(admin: KubeClient, timeoutMs = 30_000): Promise<string[]> {
  const dir = gatewayCrdDir();
  const names: string[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const crd = doc.toJS() as Crd;
      if (crd?.kind !== 'CustomResourceDefinition') continue;
      await admin.post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
      names.push(crd.metadata!.name!);
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await admin.get<Crd>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established within ${timeoutMs} ms`);
      await sleep(100);
    }
  }
  return names;
}
