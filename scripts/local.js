// `npm run local`: Warren's local mode on examples/local, together with the example's demo origin.
// Builds first (saying so: the first build takes a while), starts the demo origin and waits until it listens,
// then starts Warren; both run on the same Node that runs this script (Node 24 through npm). Arguments go to
// Warren (e.g. `npm run local -- --log-level debug` or `npm run local -- --set local.eyeballListen=127.0.0.1:8081`).
//
// Stopping: Ctrl-C or SIGTERM stops Warren, which drains in-flight requests while the origin still serves them;
// the origin is stopped only after Warren exited. If either fails to start, or the origin dies, everything stops
// and the exit status is non-zero.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (line) => process.stderr.write(`npm run local: ${line}\n`);

const USAGE = `Usage: npm run local [-- WARREN_OPTIONS]

Builds Warren, starts the demo origin (examples/local/origin: web on 127.0.0.1:3001, api on 127.0.0.1:3002;
WEB_PORT and API_PORT move them, together with the EndpointSlice ports in examples/local/services.yaml), then
Warren in local mode on examples/local with its edge simulator on http://127.0.0.1:8080.
Arguments after -- go to Warren, e.g. --set local.eyeballListen=127.0.0.1:8081 --log-level debug.
Ctrl-C or SIGTERM stops Warren, which drains; the origin stops after it. See examples/local/README.md.

Warren's options:
`;

const started = Date.now();
say('building Warren (tsc -b); the first build takes about half a minute, later ones a few seconds');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const build = spawnSync(process.execPath, [tsc, '-b'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  say(`the build failed (${build.error?.message ?? `exit status ${build.status ?? build.signal}`})`);
  process.exit(build.status || 1);
}
if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
  // Help only: nothing is started, so it works while the demo's ports are taken.
  process.stdout.write(USAGE);
  const help = spawnSync(process.execPath, ['core/build/src/main.js', '--help'], { cwd: root, stdio: 'inherit' });
  process.exit(help.status ?? 1);
}
say(`built in ${((Date.now() - started) / 1000).toFixed(1)} s; starting the demo origin, then Warren`);

const origin = spawn(process.execPath, ['examples/local/origin/server.js'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
// Ctrl-C in a terminal sends SIGINT to the whole foreground process group. Warren gets it directly and drains;
// this launcher ignores it, and the origin (supervised through the IPC channel) ignores it too, so it keeps
// serving what Warren drains. SIGTERM (from npm, a supervisor or `kill`) reaches only this process: it is
// passed on to Warren alone.
let warren;
let stopping = false;
process.on('SIGINT', () => {
  stopping = true;
});
process.on('SIGTERM', () => {
  stopping = true;
  if (warren) warren.kill('SIGTERM');
  else origin.kill('SIGTERM');
});

const originReady = new Promise((resolve) => {
  origin.once('message', () => resolve(true));
  origin.once('exit', () => resolve(false));
});
if (!(await originReady)) {
  // The origin printed why (e.g. a port in use); Warren never started.
  process.exitCode = origin.exitCode || 1;
} else if (stopping) {
  origin.kill('SIGTERM');
} else {
  origin.on('exit', (code, signal) => {
    if (!warren || warren.exitCode !== null || warren.signalCode !== null) return;
    say(`the demo origin stopped unexpectedly (${signal ?? `exit status ${code}`}); stopping Warren`);
    process.exitCode = 1;
    warren.kill('SIGTERM');
  });
  warren = spawn(process.execPath, ['core/build/src/main.js', '--local', 'examples/local', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
  warren.on('exit', (code, signal) => {
    if (origin.exitCode === null && origin.signalCode === null) origin.kill('SIGTERM');
    if (!process.exitCode) process.exitCode = code ?? (signal ? 1 : 0);
  });
}
