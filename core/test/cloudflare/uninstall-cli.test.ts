/**
 * `warren --uninstall` as the chart's pre-delete hook runs it: the real process (`core/build/src/main.js`) against
 * the fake Cloudflare API and a real kube-apiserver holding the tunnel credentials Secret. The tunnel is deleted
 * only when `cloudflare.deleteTunnelOnUninstall` is true; otherwise the process says what stays and how to remove
 * it. The API token never appears in its output.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KubernetesCredentialsSecretStore, TunnelLifecycle, createCloudflareClientFactory, credentialsFileJson } from '../../src/cloudflare/index.js';
import { gatewaySecretName, gatewayTunnelName } from '../../src/cloudflare/gateway-tunnels.js';
import { parseConfig } from '../../src/config/load.js';
import { capturingLogger, startFakeCloudflare, type FakeCloudflare } from '../../src/testing/index.js';
import { useApiServer } from '../support/apiserver.js';
import { MAIN_JS, NODE_BIN, baseEnv } from '../e2e/support/paths.js';
import { leadershipFrom } from '../support/leadership.js';

const server = useApiServer(test);
const ACCOUNT = 'e'.repeat(32);
const TOKEN = 'uninstall-cli-api-token-SECRET-0123456789';
const TUNNEL_NAME = 'warren-uninstall';
const DELETES = /^DELETE \/accounts\/:account\/cfd_tunnel\//;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface Env {
  readonly fake: FakeCloudflare;
  readonly namespace: string;
  readonly store: KubernetesCredentialsSecretStore;
  /** Settings for the process, as the chart's ConfigMap would carry them. */
  readonly settings: Record<string, unknown>;
  readonly dir: string;
  /** Creates the tunnel and its Secret the way the leader does, returning the tunnel id. */
  provision(): Promise<string>;
  /** Runs `main.js --config FILE --uninstall ...extra` with POD_NAMESPACE set; never rejects. */
  uninstall(extra?: readonly string[], env?: NodeJS.ProcessEnv, settings?: Record<string, unknown>): Promise<Run>;
}

async function setup(t: import('ava').ExecutionContext, tokenAccounts?: string[]): Promise<Env> {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN, ...(tokenAccounts ? { accounts: tokenAccounts } : {}) }] });
  t.teardown(() => fake.close());
  const dir = mkdtempSync(join(tmpdir(), 'warren-uninstall-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'api-token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, server().adminConfig().exportConfig(), { mode: 0o600 });
  const namespace = await server().createNamespace('uninstall');
  const store = new KubernetesCredentialsSecretStore(server().adminClient(), namespace, 'warren-tunnel-credentials');
  const cloudflare = { accountId: ACCOUNT, tunnelName: TUNNEL_NAME, apiBaseUrl: fake.baseUrl, apiTokenFile: tokenFile };
  const settings = { logLevel: 'info', kubernetes: { kubeconfig }, cloudflare };
  let runs = 0;
  return {
    fake,
    namespace,
    store,
    settings,
    dir,
    async provision() {
      const { logger } = capturingLogger();
      const config = parseConfig({ cloudflare });
      const lifecycle = new TunnelLifecycle({
        config,
        logger,
        clientFactory: createCloudflareClientFactory({ config: config.cloudflare, logger, env: {}, maxRetries: 0 }),
        secretStore: store,
        leadership: leadershipFrom(() => true),
        env: {},
      });
      const resolved = await lifecycle.resolve(AbortSignal.timeout(20_000));
      if (resolved.mode !== 'managed') throw new Error('expected a managed tunnel');
      fake.resetLog();
      return resolved.credentials.tunnelId;
    },
    uninstall(extra = [], env = {}, overrides = {}) {
      const file = join(dir, `config-${++runs}.yaml`);
      writeFileSync(file, stringify({ ...settings, ...overrides }));
      return new Promise((resolve) => {
        execFile(
          NODE_BIN,
          [MAIN_JS, '--config', file, '--uninstall', ...extra],
          { env: baseEnv({ POD_NAMESPACE: namespace, ...env }), timeout: 60_000 },
          (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
        );
      });
    },
  };
}

function noToken(t: import('ava').ExecutionContext, run: Run): void {
  t.false(run.stdout.includes(TOKEN), 'the API token is not printed');
  t.false(run.stderr.includes(TOKEN), 'the API token is not logged');
}

test('by default the tunnel and its Secret stay (or there is none), and the report says what stays and how to remove it', async (t) => {
  const env = await setup(t);
  const before = await env.uninstall();
  t.is(before.code, 0, before.stderr);
  t.regex(before.stdout, new RegExp(`Nothing deleted: there is no credentials Secret ${env.namespace}/warren-tunnel-credentials`));
  t.regex(before.stdout, new RegExp(`If a tunnel named "${TUNNEL_NAME}" exists in account ${ACCOUNT}, it stays`));
  const tunnelId = await env.provision();
  const run = await env.uninstall();
  t.is(run.code, 0, run.stderr);
  noToken(t, run);
  t.regex(run.stdout, new RegExp(`Kept the tunnel "${TUNNEL_NAME}" \\(${tunnelId}\\) in account ${ACCOUNT}`));
  t.regex(run.stdout, /cloudflare\.deleteTunnelOnUninstall is false/);
  t.true(run.stdout.includes(`Kept the credentials Secret ${env.namespace}/warren-tunnel-credentials`));
  t.true(run.stdout.includes(`cloudflared tunnel delete ${tunnelId}`), 'how to delete the tunnel');
  t.true(run.stdout.includes(`kubectl -n ${env.namespace} delete secret warren-tunnel-credentials`), 'how to delete the Secret');
  t.is(env.fake.count(), 0, 'no Cloudflare API call at all');
  t.falsy(env.fake.tunnels(ACCOUNT).find((x) => x.id === tunnelId)?.deletedAt);
  t.truthy(await env.store.read(), 'the Secret is still there');
  t.true(
    run.stderr.split('\n').some((l) => l.startsWith('{') && JSON.parse(l).command === 'uninstall'),
    'JSON logs go to stderr',
  );
});

test('with deleteTunnelOnUninstall the tunnel (connections first) and its Secret are deleted', async (t) => {
  const env = await setup(t);
  const tunnelId = await env.provision();
  env.fake.addTunnel(ACCOUNT, 'someone-else');
  const run = await env.uninstall(['--set', 'cloudflare.deleteTunnelOnUninstall=true']);
  t.is(run.code, 0, run.stderr);
  noToken(t, run);
  t.regex(run.stdout, new RegExp(`Deleted the tunnel "${TUNNEL_NAME}" \\(${tunnelId}\\)`));
  t.deepEqual(
    env.fake.requests.filter((r) => DELETES.test(r.route)).map((r) => r.route),
    ['DELETE /accounts/:account/cfd_tunnel/:tunnel/connections', 'DELETE /accounts/:account/cfd_tunnel/:tunnel'],
  );
  t.truthy(env.fake.tunnels(ACCOUNT).find((x) => x.id === tunnelId)?.deletedAt);
  t.falsy(env.fake.tunnels(ACCOUNT).find((x) => x.name === 'someone-else')?.deletedAt, 'other tunnels are untouched');
  t.is(await env.store.read(), undefined, 'the Secret is gone');

  // A second run (a retried hook) finds nothing left and deletes nothing.
  env.fake.resetLog();
  const again = await env.uninstall(['--set', 'cloudflare.deleteTunnelOnUninstall=true']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /Nothing deleted: there is no credentials Secret/);
  t.is(env.fake.count(DELETES), 0);
});

test("a supplied tunnel is never Warren's to delete, even with deleteTunnelOnUninstall", async (t) => {
  const env = await setup(t);
  const run = await env.uninstall(['--set', 'cloudflare.deleteTunnelOnUninstall=true'], { TUNNEL_TOKEN: 'eyJhIjoic3VwcGxpZWQifQ' });
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /supplied tunnel token or credentials file/);
  t.regex(run.stdout, /cloudflared tunnel delete/);
  t.is(env.fake.count(), 0, 'no Cloudflare API call at all');
});

test("a refused API call fails the run with the API's reason and no token, and keeps the Secret", async (t) => {
  const env = await setup(t, ['f'.repeat(32)]);
  // The leader's Secret exists, but this token may not touch the tunnel's account.
  await env.store.create(
    {
      'credentials.json': Buffer.from(
        JSON.stringify({ AccountTag: ACCOUNT, TunnelID: '6f1c1a2e-7c53-4d6e-9a55-2f1b8f6e1c11', TunnelSecret: Buffer.alloc(32, 7).toString('base64') }),
      ),
    },
    { labels: {}, annotations: {} },
  );
  const run = await env.uninstall(['--set', 'cloudflare.deleteTunnelOnUninstall=true']);
  t.is(run.code, 1);
  noToken(t, run);
  t.regex(run.stderr, /warren: WARREN_ERR_CLOUDFLARE_API: .*HTTP 403/);
  t.truthy(await env.store.read(), 'the Secret is kept when the tunnel could not be deleted');
});

test('settings that name no tunnel fail, naming what is missing; --uninstall with --local is refused', async (t) => {
  const env = await setup(t);
  const run = await env.uninstall([], {}, { cloudflare: { accountId: ACCOUNT } });
  t.is(run.code, 1);
  t.regex(run.stderr, /WARREN_ERR_CONFIG_INVALID: no tunnel configured.*cloudflare\.tunnelName/);
  const local = await env.uninstall(['--local', env.dir]);
  t.is(local.code, 2);
  t.regex(local.stderr, /--uninstall cannot be combined with --local/);
});

test("the Gateways' own tunnels and their Secrets stay by default and go with deleteTunnelOnUninstall", async (t) => {
  const env = await setup(t);
  await env.provision();
  const gatewayTunnel = env.fake.addTunnel(ACCOUNT, gatewayTunnelName(TUNNEL_NAME, 'apps', 'edge'));
  const secretName = gatewaySecretName('warren-tunnel-credentials', 'apps/edge');
  const gatewayStore = new KubernetesCredentialsSecretStore(server().adminClient(), env.namespace, secretName);
  await gatewayStore.create(
    { 'credentials.json': Buffer.from(credentialsFileJson({ accountTag: ACCOUNT, tunnelId: gatewayTunnel.id, tunnelSecret: gatewayTunnel.secret })) },
    { labels: { 'warren.dev/gateway-tunnel': 'true' }, annotations: { 'warren.dev/gateway': 'apps/edge' } },
  );
  const kept = await env.uninstall();
  t.is(kept.code, 0, kept.stderr);
  t.true(kept.stdout.includes(`Kept the tunnels of 1 Gateway(s) and their credentials Secrets in ${env.namespace}: ${secretName} (Gateway apps/edge)`), kept.stdout);
  t.falsy(env.fake.tunnels(ACCOUNT).find((x) => x.id === gatewayTunnel.id)?.deletedAt);

  const run = await env.uninstall(['--set', 'cloudflare.deleteTunnelOnUninstall=true']);
  t.is(run.code, 0, run.stderr);
  noToken(t, run);
  t.true(run.stdout.includes(`Deleted the tunnels of 1 Gateway(s)`), run.stdout);
  t.truthy(env.fake.tunnels(ACCOUNT).find((x) => x.id === gatewayTunnel.id)?.deletedAt, "the Gateway's tunnel is deleted");
  t.is(await gatewayStore.read(), undefined, "the Gateway's Secret is gone");
});
