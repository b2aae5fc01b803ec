import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import {
  CREDENTIALS_SECRET_KEY,
  REPLACED_TUNNELS_SECRET_KEY,
  KubernetesCredentialsSecretStore,
  TunnelLifecycle,
  createCloudflareClientFactory,
  parseCredentialsJson,
  tunnelMode,
  type CredentialsSecretStore,
} from '../../src/cloudflare/index.js';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import { capturingLogger, startFakeCloudflare, type FakeCloudflare } from '../../src/testing/index.js';
import { useApiServer } from '../support/apiserver.js';
import { leadershipFrom } from '../support/leadership.js';

const server = useApiServer(test);
const ACCOUNT = 'c'.repeat(32);
const TOKEN = 'lifecycle-api-token-SECRET-0123456789';
const CREATE = 'POST /accounts/:account/cfd_tunnel';

interface Env {
  fake: FakeCloudflare;
  store: CredentialsSecretStore;
  namespace: string;
  replica(isLeader: () => boolean, extra?: Record<string, unknown>, secretStore?: CredentialsSecretStore): { lifecycle: TunnelLifecycle; logs: () => string };
}

async function setup(t: import('ava').ExecutionContext, fakeOptions: Parameters<typeof startFakeCloudflare>[0] = {}): Promise<Env> {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }], ...fakeOptions });
  t.teardown(() => fake.close());
  const dir = mkdtempSync(join(tmpdir(), 'warren-cf-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const namespace = await server().createNamespace('cf');
  const store = new KubernetesCredentialsSecretStore(server().adminClient(), namespace, 'warren-tunnel-credentials');
  return {
    fake,
    store,
    namespace,
    replica(isLeader, extra = {}, secretStore = store) {
      const { logger, text } = capturingLogger();
      const config = parseConfig({
        cloudflare: { accountId: ACCOUNT, tunnelName: 'warren-prod', apiBaseUrl: fake.baseUrl, apiTokenFile: tokenFile, ...extra },
      });
      const clientFactory = createCloudflareClientFactory({ config: config.cloudflare, logger, env: {}, maxRetries: 0 });
      const lifecycle = new TunnelLifecycle({
        config,
        logger,
        clientFactory,
        secretStore,
        leadership: leadershipFrom(isLeader),
        env: {},
        pollIntervalMs: 50,
        replacementCheckMs: 50,
        existenceCheckMs: 150,
      });
      return { lifecycle, logs: text };
    },
  };
}

const signal = () => AbortSignal.timeout(20_000);

/** A leader that resolved its tunnel (created) and now watches for a replacement until the test ends. */
async function watchingLeader(t: import('ava').ExecutionContext) {
  const env = await setup(t);
  const leader = env.replica(() => true);
  const first = await leader.lifecycle.resolve(signal());
  if (first.mode !== 'managed') throw new Error('expected managed mode');
  const watching = new AbortController();
  t.teardown(() => watching.abort());
  const switched = leader.lifecycle.watchForReplacement(first.credentials, watching.signal);
  return { env, leader, first, switched };
}

/** Deletes a tunnel through the API, as a user would in the dashboard. */
async function deleteInCloudflare(env: Env, tunnelId: string): Promise<void> {
  await env.fake.clients(TOKEN)().zeroTrust.tunnels.cloudflared.delete(tunnelId, { account_id: ACCOUNT });
}

test('the leader creates a local tunnel once; restarts and followers reuse it through the Secret', async (t) => {
  const env = await setup(t);
  const leader = env.replica(() => true);
  const first = await leader.lifecycle.resolve(signal());
  if (first.mode !== 'managed') return t.fail('expected managed mode');
  t.is(first.origin, 'created');
  t.is(first.credentials.tunnelSecret.length, 32);
  const [tunnel] = env.fake.tunnels(ACCOUNT);
  t.is(tunnel?.id, first.credentials.tunnelId);
  t.is(tunnel?.configSrc, 'local');
  t.true(tunnel?.secret.equals(first.credentials.tunnelSecret), 'the secret sent at creation is the one stored');

  const data = await env.store.read();
  const stored = parseCredentialsJson(data![CREDENTIALS_SECRET_KEY]!.toString());
  t.is(stored.tunnelId, first.credentials.tunnelId);
  t.true(stored.tunnelSecret.equals(first.credentials.tunnelSecret));

  const restarted = await env.replica(() => true).lifecycle.resolve(signal());
  const follower = await env.replica(() => false).lifecycle.resolve(signal());
  for (const again of [restarted, follower]) {
    if (again.mode !== 'managed') return t.fail('expected managed mode');
    t.is(again.origin, 'secret');
    t.is(again.credentials.tunnelId, first.credentials.tunnelId);
  }
  t.is(env.fake.count(CREATE), 1, 'exactly one tunnel was ever created');
  t.is(env.fake.tunnels(ACCOUNT).length, 1);
});

test('an existing tunnel with the name is adopted through its token, not duplicated', async (t) => {
  const env = await setup(t);
  const secret = Buffer.alloc(32, 9);
  const existing = env.fake.addTunnel(ACCOUNT, 'warren-prod', { secret });
  env.fake.addTunnel(ACCOUNT, 'someone-else');
  const resolved = await env.replica(() => true).lifecycle.resolve(signal());
  if (resolved.mode !== 'managed') return t.fail('expected managed mode');
  t.is(resolved.origin, 'adopted');
  t.is(resolved.credentials.tunnelId, existing.id);
  t.true(resolved.credentials.tunnelSecret.equals(secret));
  t.is(env.fake.count(CREATE), 0);
  t.is(env.fake.count('GET /accounts/:account/cfd_tunnel/:tunnel/token'), 1);
});

test('a follower waits for the Secret and then runs the tunnel the leader stored', async (t) => {
  const env = await setup(t);
  const followerDone = env.replica(() => false).lifecycle.resolve(signal());
  await new Promise((r) => setTimeout(r, 200));
  t.is(env.fake.count(), 0, 'a follower makes no Cloudflare API call');
  const leader = await env.replica(() => true).lifecycle.resolve(signal());
  const follower = await followerDone;
  if (leader.mode !== 'managed' || follower.mode !== 'managed') return t.fail('expected managed mode');
  t.is(follower.credentials.tunnelId, leader.credentials.tunnelId);
});

test('two leaders racing end up on one tunnel and one Secret', async (t) => {
  const env = await setup(t);
  const [a, b] = await Promise.all([env.replica(() => true).lifecycle.resolve(signal()), env.replica(() => true).lifecycle.resolve(signal())]);
  if (a.mode !== 'managed' || b.mode !== 'managed') return t.fail('expected managed mode');
  t.is(a.credentials.tunnelId, b.credentials.tunnelId);
  t.is(env.fake.tunnels(ACCOUNT).filter((x) => !x.deletedAt).length, 1);
});

test('when the stored tunnel was deleted in Cloudflare the leader replaces it and the Secret', async (t) => {
  const env = await setup(t);
  const first = await env.replica(() => true).lifecycle.resolve(signal());
  if (first.mode !== 'managed') return t.fail('expected managed mode');
  await deleteInCloudflare(env, first.credentials.tunnelId);
  const second = await env.replica(() => true).lifecycle.resolve(signal());
  if (second.mode !== 'managed') return t.fail('expected managed mode');
  t.not(second.credentials.tunnelId, first.credentials.tunnelId);
  const stored = parseCredentialsJson((await env.store.read())![CREDENTIALS_SECRET_KEY]!.toString());
  t.is(stored.tunnelId, second.credentials.tunnelId);
});

test('while running, a follower switches to the tunnel the leader stored instead, without any API call', async (t) => {
  const env = await setup(t);
  const first = await env.replica(() => true).lifecycle.resolve(signal());
  if (first.mode !== 'managed') return t.fail('expected managed mode');
  const follower = env.replica(() => false).lifecycle;
  const watching = new AbortController();
  t.teardown(() => watching.abort());
  const callsBefore = env.fake.count();
  const switched = follower.watchForReplacement(first.credentials, watching.signal);
  let settled = false;
  void switched.then(
    () => (settled = true),
    () => undefined,
  );
  await new Promise((r) => setTimeout(r, 300));
  t.false(settled, 'nothing changed: the watch keeps waiting');

  // The leader replaces the tunnel (it was deleted in Cloudflare) and rewrites the Secret.
  await deleteInCloudflare(env, first.credentials.tunnelId);
  const replaced = await env.replica(() => true).lifecycle.resolve(signal());
  if (replaced.mode !== 'managed') return t.fail('expected managed mode');
  const callsByOthers = env.fake.count() - callsBefore;

  const next = await switched;
  if (next.mode !== 'managed') return t.fail('expected managed mode');
  t.is(next.credentials.tunnelId, replaced.credentials.tunnelId);
  t.not(next.credentials.tunnelId, first.credentials.tunnelId);
  t.true(next.credentials.tunnelSecret.equals(replaced.credentials.tunnelSecret));
  t.is(env.fake.count() - callsBefore, callsByOthers, 'the follower made no Cloudflare API call');
});

test('while running, the leader notices its tunnel was deleted in Cloudflare and replaces it and the Secret', async (t) => {
  const { env, leader, first, switched } = await watchingLeader(t);
  await new Promise((r) => setTimeout(r, 400));
  const checks = env.fake.count('GET /accounts/:account/cfd_tunnel/:tunnel');
  t.true(checks >= 1, 'the leader checked that the tunnel exists');
  await deleteInCloudflare(env, first.credentials.tunnelId);
  const next = await switched;
  if (next.mode !== 'managed') return t.fail('expected managed mode');
  t.not(next.credentials.tunnelId, first.credentials.tunnelId);
  t.is(next.origin, 'created');
  const stored = parseCredentialsJson((await env.store.read())![CREDENTIALS_SECRET_KEY]!.toString());
  t.is(stored.tunnelId, next.credentials.tunnelId);
  t.is(env.fake.tunnels(ACCOUNT).filter((x) => !x.deletedAt).length, 1);
  t.false(leader.logs().includes(next.credentials.tunnelSecret.toString('base64')), 'the new secret is not logged');
  // The replaced tunnel is remembered, in the Secret too, so that any later leader can move its DNS records.
  t.deepEqual(leader.lifecycle.replacedTunnelIds, [first.credentials.tunnelId]);
  t.is((await env.store.read())![REPLACED_TUNNELS_SECRET_KEY]!.toString(), first.credentials.tunnelId);
  const follower = env.replica(() => false).lifecycle;
  await follower.resolve(signal());
  t.deepEqual(follower.replacedTunnelIds, [first.credentials.tunnelId]);
});

test('an uninstall running next to a leader is not undone, even while the tunnel is gone and the Secret not yet', async (t) => {
  const { env, first, switched } = await watchingLeader(t);
  let settled = false;
  void switched.then(
    () => (settled = true),
    () => undefined,
  );
  // `warren --uninstall` (Helm's pre-delete hook) runs while the replicas still run; its Secret deletion is slowed
  // down so that the leader checks several times between the tunnel's deletion and the Secret's.
  const slow: CredentialsSecretStore = {
    description: env.store.description,
    read: (s) => env.store.read(s),
    create: (d, m, s) => env.store.create(d, m, s),
    replace: (d, m, s) => env.store.replace(d, m, s),
    delete: async (s) => {
      await new Promise((r) => setTimeout(r, 800));
      await env.store.delete(s);
    },
  };
  const uninstalled = await env.replica(() => true, { deleteTunnelOnUninstall: true }, slow).lifecycle.uninstall(signal());
  t.deepEqual(uninstalled, { tunnelDeleted: true });
  t.truthy(env.fake.tunnels(ACCOUNT).find((x) => x.id === first.credentials.tunnelId)?.deletedAt);
  await new Promise((r) => setTimeout(r, 400)); // more checks after the Secret went
  t.false(settled, 'the running tunnel is not switched');
  t.is(await env.store.read(), undefined, 'the Secret stays deleted');
  t.is(env.fake.count(CREATE), 1, 'no replacement tunnel was created (only the first one)');
  t.is(env.fake.tunnels(ACCOUNT).filter((x) => !x.deletedAt).length, 0);
  t.throws(() => parseConfig({ cloudflare: { tunnelCheckInterval: '0s' } }), { message: /cloudflare\.tunnelCheckInterval/ });
});

test('supplied credentials and a disabled tunnel make no Cloudflare API call; missing settings are named', async (t) => {
  const env = await setup(t);
  const { logger } = capturingLogger();
  const make = (raw: Record<string, unknown>, processEnv: NodeJS.ProcessEnv = {}) => {
    const config = parseConfig(raw);
    return new TunnelLifecycle({
      config,
      logger,
      env: processEnv,
      secretStore: env.store,
      leadership: leadershipFrom(() => true),
      clientFactory: createCloudflareClientFactory({ config: config.cloudflare, logger, env: processEnv }),
    });
  };
  t.deepEqual(await make({ tunnel: { tokenFile: '/run/secrets/token' }, cloudflare: { accountId: ACCOUNT, tunnelName: 'x' } }).resolve(signal()), { mode: 'supplied' });
  t.deepEqual(await make({}, { TUNNEL_TOKEN: 'abc' }).resolve(signal()), { mode: 'supplied' });
  t.deepEqual(await make({ tunnel: { enabled: false } }).resolve(signal()), { mode: 'disabled' });
  t.is(env.fake.count(), 0);
  const err = t.throws(() => tunnelMode(parseConfig({ cloudflare: { accountId: ACCOUNT } }), {}));
  t.true(isWarrenError(err, ErrorCode.ConfigInvalid));
  t.regex(err!.message, /cloudflare\.tunnelName/);
  t.regex(err!.message, /CLOUDFLARE_API_TOKEN/);
  t.notRegex(err!.message, /cloudflare\.accountId/);
});

test('the API token never appears in logs or errors, even when the API refuses it', async (t) => {
  const env = await setup(t, { tokens: [{ value: TOKEN, accounts: ['d'.repeat(32)] }] });
  const replica = env.replica(() => true);
  const err = await t.throwsAsync(replica.lifecycle.resolve(signal()));
  t.true(isWarrenError(err, ErrorCode.CloudflareApi));
  t.regex(err!.message, /HTTP 403/);
  t.regex(err!.message, /permissions/);
  t.false(err!.message.includes(TOKEN));
  t.false(JSON.stringify(err).includes(TOKEN));
  t.false(replica.logs().includes(TOKEN));
  t.is(await env.store.read(), undefined, 'nothing stored after a failure');
});

test('uninstall keeps the tunnel unless deleteTunnelOnUninstall, and then deletes tunnel and Secret', async (t) => {
  const env = await setup(t);
  const first = await env.replica(() => true).lifecycle.resolve(signal());
  if (first.mode !== 'managed') return t.fail('expected managed mode');
  t.deepEqual(await env.replica(() => true).lifecycle.uninstall(signal()), { tunnelDeleted: false });
  t.falsy(env.fake.tunnels(ACCOUNT)[0]?.deletedAt);
  t.truthy(await env.store.read());
  t.deepEqual(await env.replica(() => true, { deleteTunnelOnUninstall: true }).lifecycle.uninstall(signal()), { tunnelDeleted: true });
  t.truthy(env.fake.tunnels(ACCOUNT)[0]?.deletedAt);
  t.is(await env.store.read(), undefined);
});
