import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './ports.js';

/**
 * A real PHP-FPM for tests: its own php-fpm.conf in a temp folder, listening on 127.0.0.1 and a free port,
 * `pm = static`, in the foreground as the current user (`-R` when that is root), no php.ini (`-n`). Scripts are
 * written to `<dir>/www`. A missing php-fpm fails the test with what to install: these tests never skip.
 */

const NAMES = ['php-fpm', 'php-fpm8.4', 'php-fpm8.3', 'php-fpm8.2', 'php-fpm8.1'];

/** Path of the php-fpm binary (`WARREN_PHP_FPM`, else the first php-fpm* on PATH or in the sbin folders). */
export function findPhpFpm(): string {
  const explicit = process.env.WARREN_PHP_FPM;
  if (explicit) {
    try {
      accessSync(explicit, constants.X_OK);
      return explicit;
    } catch {
      throw new Error(`WARREN_PHP_FPM=${explicit} is not an executable php-fpm binary`);
    }
  }
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const name of NAMES) {
    for (const dir of dirs) {
      if (!dir) continue;
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  throw new Error(
    'php-fpm is not installed: these tests need a real FastCGI server. Install the Debian package php-fpm ' +
      '(`apt-get install -y php-fpm`, as .ci/run does) or set WARREN_PHP_FPM to a php-fpm binary.',
  );
}

export interface PhpFpm {
  /** `127.0.0.1:port`, usable as an endpoint key. */
  readonly key: string;
  readonly port: number;
  /** Folder holding the scripts (the document root). */
  readonly root: string;
  /** Folder for files scripts write (progress markers). */
  readonly scratch: string;
  /** php-fpm's own log so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface PhpFpmOptions {
  /** File name → PHP source, written under the document root. */
  readonly scripts: Readonly<Record<string, string>>;
  /** Worker processes (`pm.max_children`), default 4. */
  readonly workers?: number;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startPhpFpm(options: PhpFpmOptions): Promise<PhpFpm> {
  const binary = findPhpFpm();
  const dir = await mkdtemp(join(tmpdir(), 'warren-fpm-'));
  const root = join(dir, 'www');
  const scratch = join(dir, 'scratch');
  await mkdir(root);
  await mkdir(scratch);
  for (const [name, source] of Object.entries(options.scripts)) await writeFile(join(root, name), source);
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const conf = [
    '[global]',
    `error_log = ${join(dir, 'fpm.log')}`,
    'daemonize = no',
    '[www]',
    `listen = 127.0.0.1:${port}`,
    'pm = static',
    `pm.max_children = ${options.workers ?? 4}`,
    ...(asRoot ? ['user = root', 'group = root'] : []),
    'catch_workers_output = yes',
    // Uploads are read by the scripts as a stream (php://input), not parsed up front.
    'php_admin_flag[enable_post_data_reading] = off',
    'php_admin_value[post_max_size] = 512M',
    'php_admin_value[output_buffering] = 0',
    'php_admin_value[memory_limit] = 64M',
    `env[SCRATCH] = ${scratch}`,
    '',
  ].join('\n');
  const confPath = join(dir, 'php-fpm.conf');
  await writeFile(confPath, conf);
  const args = ['-F', '-n', '-y', confPath, ...(asRoot ? ['-R'] : [])];
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4096)));
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  child.once('error', (err) => {
    stderr += `${err.message}\n`;
    exited ??= null;
  });
  const log = async (): Promise<string> => readFile(join(dir, 'fpm.log'), 'utf8').catch(() => '');
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (exited !== undefined || Date.now() > deadline) {
      child.kill('SIGKILL');
      const why = `${stderr}\n${await log()}`;
      await rm(dir, { recursive: true, force: true });
      throw new Error(`php-fpm (${binary}) did not start listening on 127.0.0.1:${port}: ${why.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    key: `127.0.0.1:${port}`,
    port,
    root,
    scratch,
    log,
    async stop() {
      if (exited === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exit;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
