import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A child process that reports to its parent with JSON lines on stdout. `next(predicate)` waits (bounded)
 * for a matching message; stderr is passed through so failures are visible. With `input`, `send` writes JSON
 * lines to its stdin.
 */
export interface JsonChild {
  readonly process: ChildProcess;
  readonly pid: number;
  next<T = Record<string, unknown>>(predicate: (message: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<T>;
  /** Like `next`, but only for messages that arrive after the call (answers to a request just made). */
  nextNew<T = Record<string, unknown>>(predicate: (message: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<T>;
  /** Writes one JSON line to the child's stdin (needs the `input` option). */
  send(message: unknown): void;
  stop(): Promise<void>;
}

export function spawnJsonChild(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; shell?: boolean; quiet?: boolean; input?: boolean } = {},
): JsonChild {
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    stdio: [options.input ? 'pipe' : 'ignore', 'pipe', options.quiet ? 'ignore' : 'inherit'],
    shell: options.shell ?? false,
  });
  const messages: Array<Record<string, unknown>> = [];
  const waiters = new Set<(m: Record<string, unknown>) => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    messages.push(message);
    for (const w of [...waiters]) w(message);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    process: child,
    pid: child.pid!,
    next<T>(predicate: (m: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<T> {
      const found = messages.find(predicate);
      if (found) return Promise.resolve(found as T);
      return this.nextNew<T>(predicate, timeoutMs);
    },
    nextNew<T>(predicate: (m: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${command}: no expected message within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (m: Record<string, unknown>) => {
          if (!predicate(m)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(m as T);
        };
        waiters.add(waiter);
        void exited.then(() => {
          if (!waiters.has(waiter)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          reject(new Error(`${command} exited (code ${child.exitCode}) before the expected message`));
        });
      });
    },
    send(message: unknown) {
      if (!child.stdin) throw new Error(`${command}: started without input`);
      child.stdin.write(`${JSON.stringify(message)}\n`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
