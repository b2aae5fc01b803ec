/**
 * Runs the Gateway API conformance suite's test binary once (TestConformance) through `go tool test2json`, bounded
 * in time, and reads its `go test -json` events into one outcome per suite test.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeExit, spawnLogged, tempDir, type ChildExit } from '../../e2e/support/children.js';
import { baseEnv, REPO_ROOT } from '../../e2e/support/paths.js';

/** Who runs the suite, as the conformance report names the implementation. */
export interface Implementation {
  readonly organization: string;
  readonly project: string;
  readonly url: string;
  readonly version: string;
  readonly contact: readonly string[];
}

export interface SuiteRunOptions {
  readonly binary: string;
  /** A kubeconfig with cluster-admin rights (the suite creates namespaces, CRD objects, workloads). */
  readonly kubeconfigFile: string;
  readonly gatewayClass: string;
  readonly profiles: readonly string[];
  /** Features declared as supported (the profiles' core features are implied by the suite). */
  readonly supportedFeatures: readonly string[];
  readonly implementation: Implementation;
  /** Where the suite writes its conformance report (YAML). */
  readonly reportFile: string;
  /** The suite's timeout settings to override, in whole seconds (`-timeout-config-overrides`). */
  readonly timeouts: Readonly<Record<string, number>>;
  /** The whole run's bound: `-test.timeout` (the binary panics naming the running tests), then SIGKILL 30 s later. */
  readonly budgetMs: number;
}

/** How one suite test ended, and the last lines it wrote (its own and its subtests'). */
export interface TestOutcome {
  readonly action: 'pass' | 'fail' | 'skip';
  readonly seconds: number;
  readonly output: readonly string[];
}

export interface SuiteRun {
  /** Suite test name (without `TestConformance/`) → outcome, for every test that ended. */
  readonly outcomes: ReadonlyMap<string, TestOutcome>;
  /** Tests that started but never ended (the run was cut off by its bound). */
  readonly unfinished: readonly string[];
  /** TestConformance itself: its outcome (setup failures end up here) and the lines it wrote outside any test. */
  readonly top: TestOutcome | undefined;
  readonly exit: ChildExit;
  readonly ms: number;
  /** The raw `go test -json` stream. */
  readonly logFile: string;
}

/** Keep this many trailing lines per test for failure messages (the log file has everything). */
const KEEP_LINES = 80;

interface TestEvent {
  readonly Action: string;
  readonly Test?: string;
  readonly Output?: string;
  readonly Elapsed?: number;
}

/** Reads a `go test -json` stream (one JSON event per line; other lines are ignored) into per-test outcomes. */
export function readEvents(text: string): Pick<SuiteRun, 'outcomes' | 'unfinished' | 'top'> {
  const output = new Map<string, string[]>();
  const outcomes = new Map<string, TestOutcome>();
  const started = new Set<string>();
  let top: TestOutcome | undefined;
  const append = (key: string, line: string) => {
    let lines = output.get(key);
    if (!lines) output.set(key, (lines = []));
    lines.push(line.replace(/\n$/, ''));
    if (lines.length > KEEP_LINES) lines.shift();
  };
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let event: TestEvent;
    try {
      event = JSON.parse(line) as TestEvent;
    } catch {
      continue;
    }
    if (!event.Test?.startsWith('TestConformance')) continue;
    const [, name] = /^TestConformance(?:\/([^/]+))?/.exec(event.Test)!;
    const key = name ?? '';
    if (event.Action === 'output' && event.Output !== undefined) append(key, event.Output);
    if (event.Action === 'run' && name && event.Test === `TestConformance/${name}`) started.add(name);
    const ended = event.Action === 'pass' || event.Action === 'fail' || event.Action === 'skip';
    if (!ended) continue;
    const outcome = { action: event.Action as TestOutcome['action'], seconds: event.Elapsed ?? 0, output: output.get(key) ?? [] };
    if (!name) top = outcome;
    else if (event.Test === `TestConformance/${name}`) outcomes.set(name, outcome);
  }
  return { outcomes, unfinished: [...started].filter((n) => !outcomes.has(n)), top };
}

/** The suite binary's flags for these options. */
export function suiteFlags(options: SuiteRunOptions): string[] {
  const i = options.implementation;
  return [
    `-gateway-class=${options.gatewayClass}`,
    `-conformance-profiles=${options.profiles.join(',')}`,
    `-supported-features=${options.supportedFeatures.join(',')}`,
    `-report-output=${options.reportFile}`,
    `-organization=${i.organization}`,
    `-project=${i.project}`,
    `-url=${i.url}`,
    `-version=${i.version}`,
    `-contact=${i.contact.join(',')}`,
    `-timeout-config-overrides=${Object.entries(options.timeouts)
      .map(([name, seconds]) => `${name}:${seconds}`)
      .join(';')}`,
    // The rig is thrown away after the run: deleting the base namespaces would only cost time.
    '-cleanup-base-resources=false',
  ];
}

/** Runs the suite to its end (or its bound) and returns what each test did. */
export async function runSuite(options: SuiteRunOptions): Promise<SuiteRun> {
  const started = Date.now();
  const budgetS = Math.floor(options.budgetMs / 1_000);
  const args = [
    'tool',
    'test2json',
    '-p',
    'conformance',
    options.binary,
    '-test.v=test2json',
    '-test.run=^TestConformance$',
    `-test.timeout=${budgetS}s`,
    ...suiteFlags(options),
  ];
  const child = spawnLogged('gateway-conformance', 'go', args, {
    cwd: REPO_ROOT,
    env: baseEnv({ KUBECONFIG: options.kubeconfigFile, GOTOOLCHAIN: 'local', GOWORK: 'off' }),
    dir: tempDir('gateway-conformance'),
  });
  const cutOff = Symbol('cut off');
  const ended = await Promise.race([child.exited, sleep(options.budgetMs + 30_000, cutOff, { ref: false })]);
  const exit = ended === cutOff ? await child.stop(5_000) : (ended as ChildExit);
  const events = readEvents(readFileSync(child.stdoutFile, 'utf8'));
  if (!events.top && exit.code !== 0) {
    throw new Error(`the suite binary ended (${describeExit(exit)}) without reporting TestConformance:\n${child.tail(40)}`);
  }
  return { ...events, exit, ms: Date.now() - started, logFile: child.stdoutFile };
}
