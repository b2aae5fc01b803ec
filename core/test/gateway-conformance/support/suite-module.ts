/**
 * The Gateway API conformance suite as pinned in tools/gateway-conformance/go.mod, read from the Go module cache
 * (scripts/test-binaries.sh downloads it when it builds the suite's test binary): its version, the standard-channel
 * CRDs, the base manifests, and the list of its tests with the features each needs (from the suite's Go sources,
 * so the list follows the pinned version without a copy of it here).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { findTestBinaries } from '../../support/apiserver.js';
import { REPO_ROOT } from '../../e2e/support/paths.js';

const SUITE_MODULE = 'sigs.k8s.io/gateway-api/conformance';
const GO_MOD = join(REPO_ROOT, 'tools', 'gateway-conformance', 'go.mod');

/** The pinned suite version (`v1.6.3`), from the wrapper module's go.mod. */
export function suiteVersion(): string {
  const match = new RegExp(`^\\s*(?:require\\s+)?${SUITE_MODULE.replaceAll('.', '\\.')}\\s+(v\\S+)`, 'm').exec(readFileSync(GO_MOD, 'utf8'));
  if (!match) throw new Error(`${GO_MOD} does not require ${SUITE_MODULE}`);
  return match[1]!;
}

export interface SuiteModule {
  readonly version: string;
  /** `…/sigs.k8s.io/gateway-api@<version>`: API types, CRDs, feature names. */
  readonly apiDir: string;
  /** `…/sigs.k8s.io/gateway-api/conformance@<version>`: tests and base manifests. */
  readonly conformanceDir: string;
  /** The suite's test binary built by scripts/test-binaries.sh. */
  readonly binary: string;
}

/** Finds the pinned modules in the Go module cache and the suite binary; throws saying how to get what is missing. */
export function suiteModule(): SuiteModule {
  const version = suiteVersion();
  const cache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8', env: { ...process.env, GOTOOLCHAIN: 'local', GOWORK: 'off' } }).trim();
  const apiDir = join(cache, 'sigs.k8s.io', `gateway-api@${version}`);
  const conformanceDir = join(cache, 'sigs.k8s.io', 'gateway-api', `conformance@${version}`);
  const binary = join(dirname(findTestBinaries().apiserver), 'gateway-conformance');
  for (const path of [apiDir, conformanceDir, binary]) {
    if (!existsSync(path)) throw new Error(`${path} not found; run "bash scripts/test-binaries.sh" (it downloads the suite's modules and builds its binary)`);
  }
  return { version, apiDir, conformanceDir, binary };
}

/** Every object in a multi-document YAML text. */
function parseObjects(text: string): KubernetesObject[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as KubernetesObject | null)
    .filter((obj): obj is KubernetesObject => obj !== null && typeof obj === 'object');
}

/** The standard-channel CRD bundle: the CRDs (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant, BackendTLSPolicy…) and its admission policy. */
export function standardCrds(module: SuiteModule): KubernetesObject[] {
  const dir = join(module.apiDir, 'config', 'crd', 'standard');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseObjects(readFileSync(join(dir, f), 'utf8')));
}

/** The suite's base manifests, with the GatewayClass name put in as the suite does. */
export function baseManifests(module: SuiteModule, gatewayClass: string): KubernetesObject[] {
  return parseObjects(readFileSync(join(module.conformanceDir, 'base', 'manifests.yaml'), 'utf8').replaceAll('{GATEWAY_CLASS_NAME}', gatewayClass));
}

/** One test of the suite: its name as `go test` reports it (`TestConformance/<name>`) and the features it needs. */
export interface SuiteTest {
  readonly name: string;
  readonly features: readonly string[];
}

/** Feature constant → feature name (`SupportHTTPRoute` → `HTTPRoute`), from the API module's pkg/features. */
function featureNames(module: SuiteModule): Map<string, string> {
  const dir = join(module.apiDir, 'pkg', 'features');
  const names = new Map<string, string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.go'))) {
    for (const m of readFileSync(join(dir, file), 'utf8').matchAll(/\b(Support\w+)\s*(?:FeatureName\s*)?=\s*"(\w+)"/g)) names.set(m[1]!, m[2]!);
  }
  return names;
}

/** Every test the suite defines, with its features, read from its tests/*.go. */
export function suiteTests(module: SuiteModule): SuiteTest[] {
  const names = featureNames(module);
  const dir = join(module.conformanceDir, 'tests');
  const tests: SuiteTest[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.go') && !f.endsWith('_test.go'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const m of source.matchAll(/ShortName:\s*"(\w+)"[\s\S]*?Features:\s*\[\]features\.FeatureName\{([^}]*)\}/g)) {
      const features = [...m[2]!.matchAll(/features\.(\w+)/g)].map((f) => {
        const name = names.get(f[1]!);
        if (!name) throw new Error(`${file}: test ${m[1]} names feature ${f[1]}, which ${module.apiDir}/pkg/features does not define`);
        return name;
      });
      tests.push({ name: m[1]!, features });
    }
  }
  return tests.sort((a, b) => a.name.localeCompare(b.name));
}

/** The tests the suite runs for these supported features: those whose every feature is supported. */
export function testsFor(tests: readonly SuiteTest[], supported: ReadonlySet<string>): SuiteTest[] {
  return tests.filter((t) => t.features.every((f) => supported.has(f)));
}
