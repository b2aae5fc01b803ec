import { readFileSync } from 'node:fs';

/**
 * The Node options the image's entry point runs Warren with: the Dockerfile's exec-form ENTRYPOINT, between
 * `node` and the script. Benchmarks default to them, so that a figure is the image's and a change of the flags
 * is measured where it is made.
 */
export function imageNodeFlags(): string[] {
  const dockerfile = readFileSync(new URL('../../../Dockerfile', import.meta.url), 'utf8');
  const line = dockerfile.split('\n').findLast((l) => l.startsWith('ENTRYPOINT '));
  if (!line) throw new Error('Dockerfile: no ENTRYPOINT');
  const argv = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
  return argv.slice(1, -1);
}

/** The old-generation limit the Helm chart gives Node by default (`oldSpaceLimitPercent` 50 % of the 512Mi limit). */
export const CHART_DEFAULT_OLD_SPACE = '--max-old-space-size=256';
