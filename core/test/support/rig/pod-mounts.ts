/**
 * A container's volume mounts, for the rig: run inside a private mount namespace (`unshare -m --propagation
 * private`, started by the node), so nothing here is visible outside the container's processes.
 *
 *   node pod-mounts.js <mounts.json> -- <program> <args…>
 *
 * mounts.json: `[{ "source": "/host/folder", "target": "/etc/app/config", "readOnly": true }, …]`. Each source
 * folder is bind-mounted on its target. A target that does not exist is created on an overlay of its deepest
 * existing ancestor (layers in the container's folder), so the host's own folders are never written; a target
 * whose only existing ancestor is `/` is refused.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { followChild } from './follow.js';

interface Mount {
  readonly source: string;
  readonly target: string;
  readonly readOnly?: boolean;
}

const args = process.argv.slice(2);
const dashes = args.indexOf('--');
if (dashes !== 1 || args.length < 3) {
  process.stderr.write('usage: pod-mounts.js <mounts.json> -- <program> <args…>\n');
  process.exit(2);
}
const all = JSON.parse(readFileSync(args[0]!, 'utf8')) as Mount[];
// Parents before children; a target that would hide a source folder (an emptyDir on /tmp, say) goes last.
const hidesSource = (m: Mount) => all.some((o) => o.source.startsWith(`${m.target}/`));
const mounts = [...all].sort((a, b) => Number(hidesSource(a)) - Number(hidesSource(b)) || a.target.length - b.target.length);
const [program, ...programArgs] = args.slice(2) as [string, ...string[]];
// Overlay layers live next to mounts.json, in the container's folder, which the node removes with the pod.
const layers = mkdtempSync(join(dirname(args[0]!), 'layers-'));
const overlaid: string[] = [];

const mount = (...argv: string[]) => execFileSync('mount', argv, { stdio: ['ignore', 'ignore', 'inherit'] });

// The repository the container's program runs from (node, Warren's build, their modules). A mount that would hide
// it (an emptyDir on /tmp while the repository lives under /tmp, as a fresh CI clone may) gets it bound back at
// the same path, from a descriptor opened before the mount covered it.
const repository = realpathSync(fileURLToPath(new URL('../../../../../', import.meta.url)));

function keepRepository(covered: number): void {
  mkdirSync(repository, { recursive: true });
  // The descriptor is the child's fd 3; --no-canonicalize keeps mount(8) from resolving the path in this namespace.
  execFileSync('mount', ['--no-canonicalize', '--bind', '/proc/self/fd/3', repository], { stdio: ['ignore', 'ignore', 'inherit', covered] });
  closeSync(covered);
}

function deepestExisting(path: string): string {
  let dir = path;
  while (!existsSync(dir)) dir = dirname(dir);
  return realpathSync(dir);
}

for (const m of mounts) {
  if (!existsSync(m.target)) {
    const ancestor = deepestExisting(m.target);
    if (ancestor === '/') throw new Error(`cannot create ${m.target}: only / exists above it`);
    if (!overlaid.some((o) => ancestor === o || ancestor.startsWith(`${o}/`))) {
      const upper = join(layers, `${overlaid.length}-upper`);
      const work = join(layers, `${overlaid.length}-work`);
      mkdirSync(upper);
      mkdirSync(work);
      mount('-t', 'overlay', 'overlay', '-o', `lowerdir=${ancestor},upperdir=${upper},workdir=${work}`, ancestor);
      overlaid.push(ancestor);
    }
    mkdirSync(m.target, { recursive: true });
  }
  const hides = repository.startsWith(`${realpathSync(m.target)}/`);
  const covered = hides ? openSync(repository, 'r') : undefined;
  mount('--bind', m.source, m.target);
  if (m.readOnly) mount('-o', 'remount,bind,ro', m.target);
  if (covered !== undefined) keepRepository(covered);
}

followChild(program, programArgs, () => undefined);
