import type { Config } from './config/schema.js';
import { ErrorCode, WarrenError } from './errors.js';

export interface RunOptions {
  local: boolean;
}

/**
 * Wires the root container and runs the manager until SIGTERM/SIGINT. Resolves with the exit code.
 * (Filled in as the control plane, connector and pipeline land.)
 */
export async function run(_config: Readonly<Config>, _options: RunOptions): Promise<number> {
  throw new WarrenError(ErrorCode.ConfigInvalid, 'the controller runtime is not assembled yet', { terminal: true });
}
