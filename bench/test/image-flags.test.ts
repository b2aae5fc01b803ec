import test from 'ava';
import { imageMallocEnv, imageMallocEnvWords } from '../lib/image-flags.js';

test("the allocator environment is the final stage's MALLOC_* variables, not a build stage's nor other variables", (t) => {
  const dockerfile = [
    'FROM node AS build',
    'ENV MALLOC_ARENA_MAX=8 npm_config_fund=false',
    'FROM distroless',
    'ENV NODE_ENV=production \\',
    '    MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=131072',
    'ENTRYPOINT ["/nodejs/bin/node", "main.js"]',
  ].join('\n');
  t.deepEqual(imageMallocEnv(dockerfile), { MALLOC_ARENA_MAX: '1', MALLOC_TRIM_THRESHOLD_: '131072' });
  t.deepEqual(imageMallocEnv('FROM a\nENV MALLOC_ARENA_MAX=2\nFROM b\nENV NODE_ENV=production\n'), {});
  t.deepEqual(imageMallocEnv('FROM a\nENV MALLOC_ARENA_MAX=2\n'), { MALLOC_ARENA_MAX: '2' }, 'a single stage is the final one');
});

test("the repository's image sets one malloc arena, and the benches' command-line words say so", (t) => {
  t.is(imageMallocEnv().MALLOC_ARENA_MAX, '1');
  t.true(imageMallocEnvWords().includes('MALLOC_ARENA_MAX=1'));
});
