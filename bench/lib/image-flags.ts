import { readFileSync } from 'node:fs';

/**
 * The Node options the image's entry point runs Warren with: the Dockerfile's exec-form ENTRYPOINT, between
 * `node` and the script. Benchmarks default to them, so that a figure is the image's and a change of the flags
 * is measured where it is made.
 */
export function imageNodeFlags(): string[] {
  const line = dockerfile()
    .split('\n')
    .findLast((l) => l.startsWith('ENTRYPOINT '));
  if (!line) throw new Error('Dockerfile: no ENTRYPOINT');
  const argv = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
  return argv.slice(1, -1);
}

/**
 * The allocator settings of the image's final stage (`MALLOC_*` in its ENV lines, e.g. `MALLOC_ARENA_MAX`), which
 * change a process's RSS as much as its flags do; benchmarks run their Warren processes under them.
 */
export function imageMallocEnv(dockerfileText = dockerfile()): Record<string, string> {
  const text = dockerfileText.replace(/\\\n/g, ' ');
  const finalStage = text.split(/\n(?=FROM\s)/).at(-1) ?? '';
  const env: Record<string, string> = {};
  for (const line of finalStage.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const [, key, value] of line.matchAll(/(?:^|\s)(MALLOC_[A-Z0-9_]+)=(\S+)/g)) env[key!] = value!;
  }
  return env;
}

/** `KEY=VALUE` words of {@link imageMallocEnv}, for a command line (`env …`, or a start-up bench entry). */
export function imageMallocEnvWords(): string[] {
  return Object.entries(imageMallocEnv()).map(([key, value]) => `${key}=${value}`);
}

function dockerfile(): string {
  return readFileSync(new URL('../../../Dockerfile', import.meta.url), 'utf8');
}

/** The old-generation limit the Helm chart gives Node by default (`oldSpaceLimitPercent` 50 % of the 512Mi limit). */
export const CHART_DEFAULT_OLD_SPACE = '--max-old-space-size=256';
