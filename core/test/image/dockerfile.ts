/**
 * The Dockerfile as the image tests read it: its stages, and its own "assemble /out" step run against this checkout.
 * There is no container engine here, so this is how the tests get at the image's runtime tree.
 */
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file compiles to core/build/test/image/dockerfile.js). */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

export interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  /** `--platform=` of the FROM line, unexpanded; undefined: the target platform. */
  readonly platform: string | undefined;
  readonly instructions: Array<{ op: string; args: string }>;
}

/** Parses a Dockerfile into stages (continuation lines joined, comments dropped, global ARG defaults applied). */
export function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const argText = rest.join(' ');
    const upper = op!.toUpperCase();
    if (upper === 'ARG' && stages.length === 0) {
      const [key, value] = argText.split('=', 2);
      args.set(key!, value ?? '');
      continue;
    }
    if (upper === 'FROM') {
      const platform = /^--platform=(\S+)\s+/.exec(argText);
      const image = platform ? argText.slice(platform[0].length) : argText;
      const expanded = image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args.get(a ?? b) ?? '');
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(expanded);
      stages.push({ from: m![1]!, name: m![2], platform: platform?.[1], instructions: [] });
      continue;
    }
    stages.at(-1)?.instructions.push({ op: upper, args: argText });
  }
  return stages;
}

export const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
export const stages = parseDockerfile(dockerfile);
export const final = stages.at(-1)!;

/** `ENV` pairs of a stage (`KEY=VALUE …` form). */
export const envOf = (stage: Stage) =>
  new Map(
    stage.instructions
      .filter((i) => i.op === 'ENV')
      .flatMap((i) => i.args.split(/\s+/))
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)] as const),
  );

/**
 * Runs the Dockerfile's own "assemble /out" step against this checkout, writing into a temp folder removed when the
 * test ends. The step's `node` is this Node 24 (the machine's own may be older).
 */
export function assembleRuntimeTree(t: ExecutionContext): string {
  const build = stages.find((s) => s.name === 'build')!;
  const step = build.instructions.find((i) => i.op === 'RUN' && i.args.includes('/out'))!;
  const out = mkdtempSync(join(tmpdir(), 'warren-image-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
  execFileSync('sh', ['-c', step.args.replaceAll('/out', out)], { cwd: ROOT, stdio: 'pipe', env });
  return out;
}

/** Every file under `dir`, as paths relative to it. */
export function walk(dir: string, prefix = ''): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, name)).isDirectory()) files.push(...walk(join(dir, name), rel));
    else files.push(rel);
  }
  return files;
}
