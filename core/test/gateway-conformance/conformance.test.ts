/**
 * The upstream Gateway API conformance suite (the version pinned in tools/gateway-conformance) against Warren:
 *
 *   suite binary ──admin──▶ kube-apiserver (rig) ◀──ServiceAccount token (deploy/rbac.yaml + the chart's
 *                                                    management-mode rights)── Warren process ──▶ fake Cloudflare API
 *   suite binary ──HTTP, h2c gRPC, HTTPS──▶ <tunnel-id>.cfargotunnel.com:80/443 = that tunnel's edge simulator entrance
 *        ══that tunnel══▶ Warren ──▶ echo-basic pods on the rig
 *
 * Warren runs in management mode against the fake Cloudflare API and publishes each Gateway's tunnel hostname in
 * its status, as in production. The edge simulator accepts the account's live tunnels and opens an entrance per
 * tunnel (an address of ENTRANCE_HOSTS) that reaches only that tunnel; the suite runs in a mount namespace of its
 * own whose /etc/hosts maps each tunnel hostname to its entrance, rewritten as entrances open. Entrances present the
 * Gateway listeners' certificates for HTTPS as Cloudflare's edge would. The suite runs the GATEWAY-HTTP and
 * GATEWAY-GRPC profiles with the features declared below, once, within RUN_BUDGET_MS; then each suite test the
 * declared features select is one ava test here, passing or failing with the suite's own verdict and output. The
 * suite's conformance report is copied to docs/conformance/.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/index.js';
import { startFakeCloudflare, type FakeCloudflare } from '../../src/testing/index.js';
import { describeExit, tempDir } from '../e2e/support/children.js';
import { REPO_ROOT } from '../e2e/support/paths.js';
import { controllerKubeconfig, startWarren, type WarrenProcess } from '../e2e/support/warren.js';
import { useRig } from '../support/rig/index.js';
import { createGatewayClass, installCrds, listenerCertificates } from './support/gateway-objects.js';
import { runSuite, type SuiteRun, type TestOutcome } from './support/run-suite.js';
import { standardCrds, suiteModule, suiteTests, testsFor, type SuiteModule, type SuiteTest } from './support/suite-module.js';
import { CORE_FEATURES, EXTENDED_FEATURES } from '../../src/gateway/types.js';
import { ENTRANCE_HOSTS, grantManagementModeRbac, liveTunnelsOf, TunnelHostsFile } from './support/tunnel-edge.js';

const GATEWAY_CLASS = 'warren';
/** The Cloudflare account and tunnel name of management mode, in the fake API; the API token Warren gets. */
const CLOUDFLARE = { accountId: 'c0'.repeat(16), tunnelName: 'warren-conformance', apiToken: 'conformance-api-token' };
const PROFILES = ['GATEWAY-HTTP', 'GATEWAY-GRPC'];
/**
 * Core tests Warren is known to fail, not run (`-skip-tests`) so that the test command stays green, each with why.
 * The README's test section names them; the conformance report lists them as skipped. Remove an entry as soon as
 * Warren passes it.
 */
const KNOWN_FAILURES: Readonly<Record<string, string>> = {};
const IMPLEMENTATION = {
  organization: 'warren.dev',
  project: 'warren',
  url: 'https://warren.dev',
  version: (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version,
  contact: ['Warren maintainers'],
};
/**
 * The suite's waits, shortened from its defaults (60–300 s) so that a run where Warren fails every test still ends
 * inside RUN_BUDGET_MS; each is far above what a working implementation needs on the rig. MaxTimeToConsistency
 * keeps the suite's maximum for conformance (30 s).
 */
const TIMEOUTS = {
  GWCMustBeAccepted: 60,
  NamespacesMustBeReady: 240,
  GatewayMustHaveAddress: 30,
  GatewayMustHaveCondition: 30,
  GatewayStatusMustHaveListeners: 30,
  GatewayListenersMustHaveConditions: 30,
  HTTPRouteMustHaveCondition: 30,
  HTTPRouteMustNotHaveParents: 30,
  RouteMustHaveParents: 30,
  LatestObservedGenerationSet: 30,
  MaxTimeToConsistency: 30,
};
/** The whole suite run (the binary's -test.timeout); rig, CRDs and Warren come on top (about a minute). */
const RUN_BUDGET_MS = 15 * 60_000;

const rig = useRig(test);
let module: SuiteModule | undefined;
let moduleError: string | undefined;
let selected: SuiteTest[] = [];
try {
  module = suiteModule();
  selected = testsFor(suiteTests(module), new Set([...CORE_FEATURES, ...EXTENDED_FEATURES])).filter((st) => !Object.hasOwn(KNOWN_FAILURES, st.name));
} catch (err) {
  moduleError = (err as Error).message;
}

let run: SuiteRun | undefined;
let runError: string | undefined;
let fake: FakeCloudflare | undefined;
let edge: EdgeSimulator | undefined;
let hosts: TunnelHostsFile | undefined;
let warren: WarrenProcess | undefined;

test.after.always(async () => {
  await warren?.stop();
  hosts?.close();
  await edge?.close();
  await fake?.close();
});

/** The last lines of a failed test's output, for its ava failure message. */
const excerpt = (outcome: TestOutcome, lines = 40) => outcome.output.slice(-lines).join('\n');

test.serial(`the Gateway API conformance suite (${PROFILES.join(', ')}) runs against Warren on the rig to its end`, async (t) => {
  t.timeout(RUN_BUDGET_MS + 5 * 60_000);
  if (!module) return void t.fail(moduleError);
  try {
    const server = rig().server;
    const admin = server.adminConfig();
    await installCrds(admin, standardCrds(module));
    await createGatewayClass(admin, GATEWAY_CLASS);
    fake = await startFakeCloudflare({ tokens: [{ value: CLOUDFLARE.apiToken }] });
    edge = await startEdgeSimulator({
      edgeListeners: 2,
      authorize: liveTunnelsOf(fake, CLOUDFLARE.accountId),
      eyeball: false,
      // Cloudflare's edge serves HTTP on 8080 too (among other ports), which listeners on port 8080 are reached by.
      tunnelEntrances: { hosts: ENTRANCE_HOSTS, port: 80, extraPorts: [8080], tls: { port: 443, certificate: listenerCertificates(admin, GATEWAY_CLASS, 443) } },
    });
    const dir = tempDir('conformance-run');
    hosts = new TunnelHostsFile(dir, edge);
    const controllerKubeconfigFile = await controllerKubeconfig(server);
    const granted = await grantManagementModeRbac(admin, CLOUDFLARE);
    t.log(`management mode: ${granted.join(', ')} from the chart, for the controller's ServiceAccount`);
    warren = await startWarren({
      podName: 'warren-gateway',
      kubeconfigFile: controllerKubeconfigFile,
      edge,
      managed: { ...CLOUDFLARE, apiBaseUrl: fake.baseUrl },
    });
    const kubeconfigFile = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigFile, admin.exportConfig(), { mode: 0o600 });
    const reportFile = join(dir, 'report.yaml');
    run = await runSuite({
      binary: module.binary,
      kubeconfigFile,
      gatewayClass: GATEWAY_CLASS,
      profiles: PROFILES,
      supportedFeatures: EXTENDED_FEATURES,
      skipTests: Object.keys(KNOWN_FAILURES),
      implementation: IMPLEMENTATION,
      reportFile,
      timeouts: TIMEOUTS,
      budgetMs: RUN_BUDGET_MS,
      hostsFile: hosts.path,
    });
    const byAction = (action: TestOutcome['action']) => selected.filter((st) => run!.outcomes.get(st.name)?.action === action).map((st) => st.name);
    t.log(`suite run: ${Math.round(run.ms / 1_000)} s, ${run.outcomes.size} tests reported, go test -json in ${run.logFile}`);
    t.log(`passed (${byAction('pass').length}): ${byAction('pass').join(', ') || '-'}`);
    t.log(`failed (${byAction('fail').length}): ${byAction('fail').join(', ') || '-'}`);
    t.log(`tunnel entrances (${edge.entrances.length}): ${TunnelHostsFile.lines(edge.entrances).join(', ')}`);
    if (existsSync(reportFile) && run.outcomes.size > 0) {
      // Only a real run that got past the suite's setup writes a report worth keeping: with the suite version and
      // the date of the run.
      const kept = join(REPO_ROOT, 'docs', 'conformance', `gateway-api-${module.version}-${new Date().toISOString().slice(0, 10)}.yaml`);
      mkdirSync(join(REPO_ROOT, 'docs', 'conformance'), { recursive: true });
      copyFileSync(reportFile, kept);
      t.log(`conformance report: ${kept}`);
    }
  } catch (err) {
    runError = `${(err as Error).message}\n${warren?.child.tail(30) ?? ''}`;
    return void t.fail(runError);
  }
  // Unsupported tests are skipped, but parallel ones only once the sequential ones are done: name the selected ones.
  const cutOff = run.unfinished.filter((name) => selected.some((st) => st.name === name));
  t.deepEqual(cutOff, [], `tests cut off by the ${RUN_BUDGET_MS / 60_000} min bound (${describeExit(run.exit)})`);
  t.truthy(run.top, 'the suite reported the end of TestConformance');
  const setupFailed = run.top?.action === 'fail' && run.outcomes.size === 0;
  t.false(setupFailed, `the suite failed before its first test (setup: GatewayClass, base manifests, Gateways ready):\n${run.top ? excerpt(run.top, 60) : ''}`);
  t.deepEqual(edge?.entranceFailures ?? [], [], `every tunnel got an entrance (${ENTRANCE_HOSTS.length} hosts)`);
});

const extraFeatures = (st: SuiteTest) => st.features.filter((f) => !CORE_FEATURES.includes(f));

for (const st of selected) {
  const extra = extraFeatures(st);
  test.serial(`conformance: ${st.name}${extra.length ? ` [${extra.join(', ')}]` : ''}`, (t) => {
    if (!run) return void t.fail(`the suite did not run: ${runError ?? moduleError ?? 'see the first test'}`);
    const outcome = run.outcomes.get(st.name);
    if (!outcome) {
      const bound = `the ${RUN_BUDGET_MS / 60_000} min run bound`;
      return void t.fail(run.unfinished.includes(st.name) ? `cut off by ${bound}` : run.top ? 'not run by the suite (see the first test)' : `not reached within ${bound}`);
    }
    if (outcome.action === 'skip') return void t.fail(`skipped by the suite although its features are declared:\n${excerpt(outcome, 10)}`);
    t.is(outcome.action, 'pass', `failed:\n${excerpt(outcome)}`);
  });
}

test('every known failure names a test of the suite that the declared features select', (t) => {
  if (!module) return void t.fail(moduleError);
  const selectable = new Set(testsFor(suiteTests(module), new Set([...CORE_FEATURES, ...EXTENDED_FEATURES])).map((st) => st.name));
  const stale = Object.entries(KNOWN_FAILURES).filter(([name]) => !selectable.has(name));
  t.deepEqual(stale, [], 'known failures that are not selected tests of the suite');
});

test.serial('the suite ran exactly the tests the declared features select', (t) => {
  if (!run || run.outcomes.size === 0) return void t.fail('no suite test ran');
  const ran = [...run.outcomes].filter(([, o]) => o.action !== 'skip').map(([name]) => name);
  t.deepEqual(ran.sort(), selected.map((s) => s.name).sort());
});
