/**
 * Pod addresses for the rig: 198.18.1.2–198.18.1.61, which scripts/test.sh puts on the test network namespace's
 * dummy device next to the shared test hosts (198.18.0.2–41). They are a separate block so that pods listening on
 * fixed container ports never collide with echo servers that other test files bind on the shared hosts.
 *
 * Test files run in parallel workers inside the same namespace, so an address is claimed with an exclusive lock
 * file in a folder named after the namespace (its inode): claims are shared by every worker of one test run and
 * never by runs in other namespaces. A claim left by a dead process is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIRST = 2;
const LAST = 61;

/** `podAddress(2)` → `198.18.1.2`. */
export function podAddress(n: number): string {
  if (n < FIRST || n > LAST) throw new RangeError(`pod address ${n} is outside 198.18.1.${FIRST}–198.18.1.${LAST}`);
  return `198.18.1.${n}`;
}

function claimsDir(): string {
  let ns = 'no-netns';
  try {
    ns = readlinkSync('/proc/self/ns/net').replace(/\D/g, '');
  } catch {
    // No /proc: claims are then per machine, which is still safe.
  }
  const dir = join(tmpdir(), `warren-rig-addresses-${ns}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Hands out pod addresses, one per running pod, and takes them back. */
export class AddressPool {
  readonly #dir = claimsDir();
  readonly #mine = new Set<string>();

  /** Claims a free address; throws when all 60 are in use. */
  claim(): string {
    mkdirSync(this.#dir, { recursive: true });
    for (let n = FIRST; n <= LAST; n++) {
      const address = podAddress(n);
      if (this.#tryClaim(address)) {
        this.#mine.add(address);
        return address;
      }
    }
    throw new Error(`no free pod address left in 198.18.1.${FIRST}–198.18.1.${LAST} (claims in ${this.#dir})`);
  }

  release(address: string): void {
    if (!this.#mine.delete(address)) return;
    rmSync(join(this.#dir, address), { force: true });
  }

  /** Releases every claim of this pool, and the claims folder once no worker holds a claim in it. */
  releaseAll(): void {
    for (const address of [...this.#mine]) this.release(address);
    try {
      rmdirSync(this.#dir);
    } catch {
      // Another worker still holds claims.
    }
  }

  #tryClaim(address: string): boolean {
    const file = join(this.#dir, address);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(file, 'utf8'));
      } catch {
        continue; // released meanwhile: try again
      }
      if (Number.isInteger(owner) && owner > 0 && alive(owner)) return false;
      rmSync(file, { force: true }); // stale claim of a dead worker
    }
    return false;
  }
}
