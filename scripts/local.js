// `npm run local`: Warren's local mode on examples/local, together with the example's demo origin.
// Runs both as child processes on the same Node that runs this script (Node 24 through npm), forwards Ctrl-C and
// SIGTERM, and exits when Warren exits. Arguments after `--` go to Warren (e.g. `npm run local -- --log-level debug`).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const origin = spawn(process.execPath, ['examples/local/origin/server.js'], { cwd: root, stdio: 'inherit' });
const warren = spawn(process.execPath, ['core/build/src/main.js', '--local', 'examples/local', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
// Ctrl-C in a terminal sends SIGINT to the whole foreground process group, children included: forwarding it too
// would be a second stop signal, which makes Warren exit at once instead of draining. SIGTERM (from npm, a
// supervisor or `kill`) reaches only this process, so it is passed on.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {
  warren.kill('SIGTERM');
  origin.kill('SIGTERM');
});
warren.on('exit', (code, signal) => {
  origin.kill('SIGTERM');
  process.exitCode = code ?? (signal ? 1 : 0);
});
