/**
 * The controller process as the chart's Deployment runs it, off-cluster: the rendered container's arguments
 * (with its config path pointed at a local copy), a kubeconfig holding a token of the chart's ServiceAccount,
 * and a free loopback port for the health server.
 */
import { spawnLogged, waitUntil, type LoggedChild } from './children.js';
import { send } from './http.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from './paths.js';

export interface ChartController {
  readonly child: LoggedChild;
  /** `http://127.0.0.1:<port>` of its health and metrics server. */
  readonly healthUrl: string;
}

/** Starts the controller with `args` and waits for /readyz 200 (the log tail is in the error otherwise). */
export async function startChartController(args: readonly string[], pod: { readonly name: string; readonly namespace: string }): Promise<ChartController> {
  const child = spawnLogged('chart-controller', NODE_BIN, [MAIN_JS, ...args, '--set', 'server.listen=127.0.0.1:0'], {
    cwd: REPO_ROOT,
    env: baseEnv({ POD_NAME: pod.name, POD_NAMESPACE: pod.namespace }),
  });
  const [, address] = await child.waitForOutput(/"address":"([^"]+)","msg":"health and metrics server listening"/, 30_000, 'the health server address');
  const healthUrl = `http://${address}`;
  await waitUntil(
    'the controller /readyz 200',
    async () => (await send(healthUrl, '/readyz', { timeoutMs: 3_000 }).catch(() => ({ status: 0 }))).status === 200,
    60_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${child.tail()}`);
  });
  return { child, healthUrl };
}

/** Log lines in which the API server refused the controller something. */
export function refusedRequests(child: LoggedChild): string[] {
  return child
    .stdout()
    .split('\n')
    .filter((l) => /forbidden|HTTP 403|"status":403|"code":403/i.test(l));
}
