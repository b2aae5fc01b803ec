/**
 * Runs the real `helm` binary against chart/ (no cluster: `helm template` and `helm lint` only).
 *
 * The binary comes from `$WARREN_TEST_BIN/helm` (set by scripts/test.sh), else from the newest folder under
 * `${WARREN_TOOLS_DIR:-~/.cache/warren-tools}` that has one. Helm's own config, cache and data folders point at a
 * temp folder, so tests never read or write the user's Helm setup.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const CHART_DIR = join(REPO_ROOT, 'chart');

/** A rendered Kubernetes object. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export function findHelm(): string {
  const candidates: string[] = [];
  if (process.env.WARREN_TEST_BIN) candidates.push(process.env.WARREN_TEST_BIN);
  const root = process.env.WARREN_TOOLS_DIR ?? join(homedir(), '.cache', 'warren-tools');
  if (existsSync(root)) {
    candidates.push(
      ...readdirSync(root)
        .map((d) => join(root, d))
        .filter((d) => statSync(d).isDirectory())
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs),
    );
  }
  for (const dir of candidates) if (existsSync(join(dir, 'helm'))) return join(dir, 'helm');
  throw new Error(`helm not found (looked in ${candidates.join(', ') || root}); run "bash scripts/test-binaries.sh" or "npm test"`);
}

const home = mkdtempSync(join(tmpdir(), 'warren-helm-'));
process.once('exit', () => rmSync(home, { recursive: true, force: true }));
const helmEnv = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: home,
  HELM_CONFIG_HOME: join(home, 'config'),
  HELM_CACHE_HOME: join(home, 'cache'),
  HELM_DATA_HOME: join(home, 'data'),
  // No cluster is ever contacted; point any accidental lookup at nothing.
  KUBECONFIG: join(home, 'no-kubeconfig'),
};

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm with arguments; never throws for a non-zero exit. */
export function helm(args: readonly string[]): Promise<HelmResult> {
  return new Promise((resolve, reject) => {
    execFile(findHelm(), [...args], { env: helmEnv, maxBuffer: 16 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') return reject(err);
      resolve({ code: err ? ((err as { code: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let counter = 0;
function valuesFile(values: unknown): string {
  // JSON, so that strings like "yes" stay strings (helm reads YAML 1.1, where yes is a boolean).
  const file = join(home, `values-${process.pid}-${++counter}.json`);
  writeFileSync(file, JSON.stringify(values));
  return file;
}

export interface RenderOptions {
  readonly release?: string;
  readonly namespace?: string;
}

/** `helm template` with `values` (merged over values.yaml); resolves with the result, success or not. */
export function template(values: unknown, options: RenderOptions = {}): Promise<HelmResult> {
  return helm(['template', options.release ?? 'warren', CHART_DIR, '--namespace', options.namespace ?? 'warren-system', '--values', valuesFile(values)]);
}

/** `helm template` that must succeed; returns the rendered objects. */
export async function render(values: unknown, options: RenderOptions = {}): Promise<Rendered> {
  const result = await template(values, options);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  const objects = parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
  return new Rendered(objects, result.stdout);
}

/** `helm lint --strict` with values. */
export function lint(values: unknown): Promise<HelmResult> {
  return helm(['lint', '--strict', CHART_DIR, '--values', valuesFile(values)]);
}

/** The objects of one `helm template` run, with lookups. */
export class Rendered {
  constructor(
    readonly objects: readonly K8sObject[],
    readonly text: string,
  ) {}

  kinds(): string[] {
    return this.objects.map((o) => o.kind).sort();
  }

  find(kind: string, name?: string): K8sObject | undefined {
    return this.objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  }

  get(kind: string, name?: string): K8sObject {
    const found = this.find(kind, name);
    if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ''} rendered (got ${this.kinds().join(', ')})`);
    return found;
  }

  /** The controller's config file from the ConfigMap, as text. */
  configText(): string {
    return (this.get('ConfigMap') as unknown as { data: Record<string, string> }).data['config.yaml']!;
  }

  deployment(): Deployment {
    return this.get('Deployment') as unknown as Deployment;
  }
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  ports?: Array<{ name: string; containerPort: number }>;
  securityContext?: Record<string, unknown>;
  livenessProbe?: { httpGet: { path: string; port: string | number } };
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  startupProbe?: { httpGet: { path: string; port: string | number } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  resources?: Record<string, unknown>;
}

export interface Deployment {
  metadata: K8sObject['metadata'];
  spec: {
    replicas: number;
    template: {
      metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
      spec: {
        serviceAccountName: string;
        securityContext?: Record<string, unknown>;
        containers: Container[];
        volumes?: Array<{ name: string; secret?: { secretName: string; items?: Array<{ key: string; path: string }> }; configMap?: { name: string } }>;
        [key: string]: unknown;
      };
    };
  };
}
