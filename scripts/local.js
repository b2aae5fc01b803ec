// `npm run local`: Warren's local mode on examples/local, together with the example's demo origin.
// Runs both as child processes on the same Node that runs this script (Node 24 through npm), forwards Ctrl-C and
// SIGTERM, and exits when Warren exits. Arguments after `--` go to Warren (e.g. `npm run local -- --log-level debug`).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// Children get their own process groups so that Ctrl-C in a terminal reaches them once, through this script,
// and Warren drains instead of seeing a second stop signal.
const origin = spawn(process.execPath, ['examples/local/origin/server.js'], { cwd: root, stdio: 'inherit', detached: true });
const warren = spawn(process.execPath, ['core/build/src/main.js', '--local', 'examples/local', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  detached: true,
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    warren.kill('SIGTERM');
    origin.kill('SIGTERM');
  });
}
warren.on('exit', (code, signal) => {
  origin.kill('SIGTERM');
  process.exitCode = code ?? (signal ? 1 : 0);
});
