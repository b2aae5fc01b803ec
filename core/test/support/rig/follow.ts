/**
 * For the rig's wrapper processes (pod-network.ts, pod-mounts.ts): start the program, ignore SIGTERM (the node
 * signals the whole process group, and the program alone decides when to exit), and exit as the program does.
 */
import { spawn } from 'node:child_process';

export function followChild(command: string, args: readonly string[], cleanup: () => void): void {
  process.on('SIGTERM', () => undefined);
  const child = spawn(command, [...args], { stdio: 'inherit', env: process.env });
  child.on('error', (err) => {
    process.stderr.write(`could not start ${command}: ${err.message}\n`);
    cleanup();
    process.exit(127);
  });
  child.on('exit', (code, signal) => {
    cleanup();
    process.exit(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15));
  });
}
