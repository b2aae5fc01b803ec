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
  /** Suite tests not run (`-skip-tests`): each with its reason in the README's test section. */
  readonly skipTests?: readonly string[] | undefined;
  readonly implementation: Implementation;
  /** Where the suite writes its conformance report (YAML). */
  readonly reportFile: string;
  /** The suite's timeout settings to override, in whole seconds (`-timeout-config-overrides`). */
  readonly timeouts: Readonly<Record<string, number>>;
  /** The whole run's bound: `-test.timeout` (the binary panics naming the running tests), then SIGKILL 30 s later. */
  readonly budgetMs: number;
  /**
   * A hosts file the suite resolves names with instead of /etc/hosts: bind-mounted over it in a mount namespace of
   * the suite's own (`unshare -m`, inside the test network namespace), so that rewrites in place reach the suite;
   * Go's resolver (the binary is built without cgo; GODEBUG=netdns=go says so again) re-reads it within 5 s.
   */
  readonly hostsFile?: string | undefined;
}

/** How one suite test ended, and the last lines it wrote (its own and its subtests'). */
export interface TestOutcome {
  readonly action: 'pass' | 'fail' | 'skip';
  readonly output: readonly string[];
}

export interface SuiteRun {
  /** Suite test name (without `TestConformance/`) → outcome, for every test that ended. */
  readonly outcomes: ReadonlyMap<string, TestOutcome>;
  /**
   * Tests that started but never ended: the run was cut off by its bound. Parallel tests wait for the sequential
   * ones, so they are among them; the test running when the bound struck counts here too (go test reports it
   * failed, with the timeout panic as its output).
   */
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
}

/** How many of the latest lines a repeated line may fold into. */
const FOLD_WINDOW = 4;

/** Timestamps and elapsed times (`after 1.008034844s`) as the suite's log lines carry them: ignored when comparing. */
const TIMESTAMP = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z|\b\d+(?:\.\d+)?(?:ns|µs|ms|s|m)\b/g;

/**
 * The last KEEP_LINES lines a test wrote, with lines that differ only in their times from one of the last few
 * (the suite's polling, ten rounds a second) folded into that one with a count; and whether the timeout panic struck it.
 */
class TestLog {
  readonly #lines: Array<{ text: string; same: string; repeats: number }> = [];
  timedOut = false;

  add(output: string): void {
    const text = output.replace(/\n$/, '');
    if (text.startsWith('panic: test timed out after')) this.timedOut = true;
    const same = text.replace(TIMESTAMP, '');
    // A poll often writes two or three lines per round: fold into any of the last few.
    const earlier = this.#lines.slice(-FOLD_WINDOW).find((l) => l.same === same);
    if (earlier) {
      earlier.repeats++;
      return;
    }
    this.#lines.push({ text, same, repeats: 0 });
    if (this.#lines.length > KEEP_LINES) this.#lines.shift();
  }

  lines(): string[] {
    return this.#lines.map((l) => (l.repeats ? `${l.text}   [and ${l.repeats} more like it]` : l.text));
  }
}

/** Reads a `go test -json` stream (one JSON event per line; other lines are ignored) into per-test outcomes. */
export function readEvents(text: string): Pick<SuiteRun, 'outcomes' | 'unfinished' | 'top'> {
  const logs = new Map<string, TestLog>();
  const outcomes = new Map<string, TestOutcome>();
  const started = new Set<string>();
  let top: TestOutcome | undefined;
  const log = (key: string) => {
    let found = logs.get(key);
    if (!found) logs.set(key, (found = new TestLog()));
    return found;
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
    if (event.Action === 'output' && event.Output !== undefined) log(key).add(event.Output);
    if (event.Action === 'run' && name && event.Test === `TestConformance/${name}`) started.add(name);
    const ended = event.Action === 'pass' || event.Action === 'fail' || event.Action === 'skip';
    if (!ended || (name && event.Test !== `TestConformance/${name}`)) continue;
    // The test the timeout panic struck is reported failed by go test; it was cut off, not judged.
    if (log(key).timedOut) continue;
    const outcome = { action: event.Action as TestOutcome['action'], output: log(key).lines() };
    if (name) outcomes.set(name, outcome);
    else top = outcome;
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
    ...(options.skipTests?.length ? [`-skip-tests=${options.skipTests.join(',')}`] : []),
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

/**
 * The command and arguments that run `command` with `hostsFile` bind-mounted over /etc/hosts in a mount namespace
 * of its own (needs the rights the test network namespace gives): the file is the same inode in there, so it sees
 * every rewrite in place, and nothing outside it sees the file.
 */
export function withHostsFile(hostsFile: string, command: string, args: readonly string[]): [string, string[]] {
  return ['unshare', ['-m', '--', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hostsFile, command, ...args]];
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
  const [command, commandArgs] = options.hostsFile ? withHostsFile(options.hostsFile, 'go', args) : ['go', args];
  const child = spawnLogged('gateway-conformance', command, commandArgs, {
    cwd: REPO_ROOT,
    env: baseEnv({ KUBECONFIG: options.kubeconfigFile, GOTOOLCHAIN: 'local', GOWORK: 'off', GODEBUG: 'netdns=go' }),
    dir: tempDir('gateway-conformance'),
  });
  const cutOff = Symbol('cut off');
  const ended = await Promise.race([child.exited, sleep(options.budgetMs + 30_000, cutOff, { ref: false })]);
  const exit = ended === cutOff ? await child.stop(5_000) : (ended as ChildExit);
  const events = readEvents(readFileSync(child.stdoutFile, 'utf8'));
  if (!events.top && events.outcomes.size === 0 && events.unfinished.length === 0) {
    throw new Error(`the suite binary ended (${describeExit(exit)}) without running a test:\n${child.tail(40)}`);
  }
  return { ...events, exit, ms: Date.now() - started, logFile: child.stdoutFile };
}
