/**
 * Child processes for end-to-end tests: each child's stdout and stderr go straight to files in a temp folder
 * (the child writes them itself, so nothing is lost when a test fails mid-way), tests wait for lines in that
 * output with bounded timeouts, and every child still alive when the test worker exits is SIGKILLed.
 *
 * Children are started in their own process group (`detached`), so a test can signal a whole tree the way a
 * terminal does (`signalGroup`) and can list what is left of it afterwards (`groupMembers`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';

/** How a child ended: its exit code, or the signal that killed it. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  readonly cwd?: string;
  /** The child's whole environment (nothing is inherited implicitly). */
  readonly env: NodeJS.ProcessEnv;
  /** Folder for the output files (default: a fresh {@link tempDir}). */
  readonly dir?: string;
}

/** A spawned child whose output is captured in files. */
export interface LoggedChild {
  /** Short name used in messages and file names. */
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  readonly stdoutFile: string;
  readonly stderrFile: string;
  /** Resolves when the child has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  /** The exit once known, else undefined. */
  readonly exit: ChildExit | undefined;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stdout+stderr; rejects after `timeoutMs` or when the child exits first. */
  waitForOutput(pattern: RegExp, timeoutMs: number, what?: string): Promise<RegExpMatchArray>;
  /** Sends `signal` to the child only. */
  signal(signal: NodeJS.Signals): void;
  /** Sends `signal` to the child's whole process group. */
  signalGroup(signal: NodeJS.Signals): void;
  /** PIDs of processes still alive in the child's process group (the child included). */
  groupMembers(): number[];
  /** SIGTERM to the group, then SIGKILL to whatever is left after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<ChildExit>;
  /** The last lines of both outputs, for failure messages. */
  tail(lines?: number): string;
}

const live = new Set<LoggedChild>();
const dirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a worker ends without running hooks: never leave a controller or origin behind. Temp
  // folders (logs, settings, kubeconfigs) go too, unless WARREN_KEEP_TEST_DIRS asks to keep them.
  process.once('exit', () => {
    for (const c of live) c.signalGroup('SIGKILL');
    if (!process.env.WARREN_KEEP_TEST_DIRS) for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A fresh temp folder, removed when the test worker exits (kept with WARREN_KEEP_TEST_DIRS=1). */
export function tempDir(prefix: string): string {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), `warren-e2e-${prefix}-`));
  dirs.add(dir);
  return dir;
}

/** Starts `command args` with output captured; see {@link LoggedChild}. */
export function spawnLogged(name: string, command: string, args: readonly string[], options: SpawnOptions): LoggedChild {
  const dir = options.dir ?? tempDir(name);
  const stdoutFile = join(dir, 'stdout.log');
  const stderrFile = join(dir, 'stderr.log');
  const out = openSync(stdoutFile, 'a');
  const err = openSync(stderrFile, 'a');
  const child = spawn(command, [...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', out, err], detached: true });
  closeSync(out);
  closeSync(err);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const pid = child.pid;
  let exit: ChildExit | undefined;
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
    child.once('error', () => {
      exit ??= { code: null, signal: null };
      resolve(exit);
    });
  });
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  let stopping: Promise<ChildExit> | undefined;
  const handle: LoggedChild = {
    name,
    pid,
    process: child,
    stdoutFile,
    stderrFile,
    exited,
    get exit() {
      return exit;
    },
    stdout: () => read(stdoutFile),
    stderr: () => read(stderrFile),
    async waitForOutput(pattern, timeoutMs, what = String(pattern)) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = (read(stdoutFile) + read(stderrFile)).match(pattern);
        if (match) return match;
        if (exit) throw new Error(`${name} exited (${describeExit(exit)}) before ${what}\n${handle.tail()}`);
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${name}: ${what}\n${handle.tail()}`);
        await sleep(50);
      }
    },
    signal(signal) {
      if (!exit) child.kill(signal);
    },
    signalGroup,
    groupMembers: () => processGroupMembers(pid),
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        signalGroup('SIGTERM');
        const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
        const result = await exited;
        clearTimeout(timer);
        // Whatever else the child left in its group (e.g. grandchildren) goes too, ports and all.
        if (processGroupMembers(pid).length) {
          signalGroup('SIGKILL');
          await waitUntil(`the process group of ${name} to end`, () => processGroupMembers(pid).length === 0, 10_000).catch(() => undefined);
        }
        return result;
      })();
      return stopping;
    },
    tail(lines = 40) {
      const last = (text: string) => text.split('\n').slice(-lines).join('\n');
      return `--- ${name} stdout (${stdoutFile}) ---\n${last(read(stdoutFile))}\n--- ${name} stderr (${stderrFile}) ---\n${last(read(stderrFile))}`;
    },
  };
  live.add(handle);
  void exited.then(() => {
    if (!processGroupMembers(pid).length) live.delete(handle);
  });
  installExitHook();
  return handle;
}

/** `code 0`, `signal SIGKILL`, … */
export function describeExit(exit: ChildExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** PIDs in process group `pgid` that are still running (zombies excluded), read from /proc. */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return members;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the parenthesised command: state ppid pgrp …
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry));
  }
  return members;
}

/** Polls `check` every 50 ms until it holds; throws after `timeoutMs` naming `what`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Stops `children` when the test ends, and prints their output when it failed. Call right after starting them.
 */
export function cleanUpAfter(t: ExecutionContext, ...children: LoggedChild[]): void {
  t.teardown(async () => {
    if (!t.passed) for (const c of children) t.log(c.tail());
    await Promise.all(children.map((c) => c.stop()));
  });
}
