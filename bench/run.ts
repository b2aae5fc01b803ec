/** `npm run bench -- <name>` runs bench/build/<name>.js; without a name it lists the benchmarks. */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.js') && f !== 'run.js')
  .map((f) => f.slice(0, -3));
const name = process.argv[2];
if (!name || !names.includes(name)) {
  process.stdout.write(`benchmarks: ${names.join(', ') || '(none yet)'}\nusage: npm run bench -- <name> [args]\n`);
  process.exitCode = name ? 1 : 0;
} else {
  process.argv.splice(2, 1);
  await import(`./${name}.js`);
}
