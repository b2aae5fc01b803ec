/**
 * Rotated tunnel credentials and uninstall next to live connectors, against the fake Cloudflare API with the
 * in-memory Secret double (the lifecycle's Kubernetes Secret handling is covered in tunnel-lifecycle.test.ts).
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import {
  CREDENTIALS_SECRET_KEY,
  TunnelLifecycle,
  createCloudflareClientFactory,
  encodeTunnelToken,
  parseCredentialsJson,
  type ResolvedTunnel,
} from '../../src/cloudflare/index.js';
import { runResolvedTunnel } from '../../src/cloudflare/tunnel-runner.js';
import { ErrorCode, WarrenError } from '../../src/errors.js';
import { InMemoryCredentialsSecretStore, capturingLogger, startFakeCloudflare } from '../../src/testing/index.js';
import { leadershipFrom } from '../support/leadership.js';

const ACCOUNT = 'd'.repeat(32);
const TOKEN = 'rotation-api-token-SECRET-0123456789';

async function setup(t: import('ava').ExecutionContext, extra: Record<string, unknown> = {}, timing: { existenceCheckMs?: number } = {}) {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  const store = new InMemoryCredentialsSecretStore();
  const replica = (isLeader: boolean) => {
    const { logger, text } = capturingLogger();
    const config = parseConfig({ cloudflare: { accountId: ACCOUNT, tunnelName: 'warren-prod', apiBaseUrl: fake.baseUrl, ...extra } });
    const env = { CLOUDFLARE_API_TOKEN: TOKEN };
    const clientFactory = createCloudflareClientFactory({ config: config.cloudflare, logger, env, maxRetries: 0 });
    const lifecycle = new TunnelLifecycle({
      config,
      logger,
      clientFactory,
      secretStore: store,
      leadership: leadershipFrom(() => isLeader),
      env,
      pollIntervalMs: 20,
      replacementCheckMs: 20,
      existenceCheckMs: timing.existenceCheckMs ?? 60,
    });
    return { lifecycle, logs: text, logger };
  };
  return { fake, store, replica };
}

const storedSecret = async (store: InMemoryCredentialsSecretStore) => parseCredentialsJson((await store.read())![CREDENTIALS_SECRET_KEY]!.toString()).tunnelSecret;

test('uninstall deletes the tunnel while replicas are still connected: their connectors reconnect after the cleanup', async (t) => {
  const { fake, store, replica } = await setup(t, { deleteTunnelOnUninstall: true });
  const leader = replica(true);
  const resolved = await leader.lifecycle.resolve(AbortSignal.timeout(10_000));
  if (resolved.mode !== 'managed') return t.fail('expected managed mode');
  fake.connectTunnel(resolved.credentials.tunnelId, 3); // three replicas, as while the Helm pre-delete hook runs
  const result = await leader.lifecycle.uninstall(AbortSignal.timeout(10_000));
  t.true(result.tunnelDeleted);
  t.truthy(fake.tunnels(ACCOUNT)[0]!.deletedAt);
  t.is(await store.read(), undefined, 'the Secret is gone too');
  t.true(fake.requests.some((r) => r.route === 'DELETE /accounts/:account/cfd_tunnel/:tunnel' && r.query.includes('cascade=true') && r.status === 200));
});

test('a token rotated in Cloudflare while running: the leader stores it and every replica moves to it', async (t) => {
  const { fake, store, replica } = await setup(t);
  const leader = replica(true);
  const follower = replica(false);
  const first = await leader.lifecycle.resolve(AbortSignal.timeout(10_000));
  if (first.mode !== 'managed') return t.fail('expected managed mode');
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const leaderSwitch = leader.lifecycle.watchForReplacement(first.credentials, stop.signal);
  const followerSwitch = follower.lifecycle.watchForReplacement(first.credentials, stop.signal);
  const rotated = fake.rotateTunnelSecret(first.credentials.tunnelId);
  const bound = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no switch within 5 s')), 5_000));
  const [a, b] = (await Promise.race([Promise.all([leaderSwitch, followerSwitch]), bound])) as Array<Extract<ResolvedTunnel, { mode: 'managed' }>>;
  t.is(a!.credentials.tunnelId, first.credentials.tunnelId, 'the same tunnel');
  t.true(a!.credentials.tunnelSecret.equals(rotated));
  t.true(b!.credentials.tunnelSecret.equals(rotated), 'the follower took it from the Secret');
  t.true((await storedSecret(store)).equals(rotated));
  t.is(fake.tunnels(ACCOUNT).length, 1, 'nothing was replaced');
  t.false(leader.logs().includes(rotated.toString('base64')), 'the secret is never logged');
});

test('credentials the edge refuses at start make the leader fetch the token at once, not after the check interval', async (t) => {
  const { fake, replica } = await setup(t, {}, { existenceCheckMs: 3_600_000 });
  const leader = replica(true);
  const first = await leader.lifecycle.resolve(AbortSignal.timeout(10_000));
  if (first.mode !== 'managed') return t.fail('expected managed mode');
  const rotated = fake.rotateTunnelSecret(first.credentials.tunnelId); // rotated while Warren was down
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const secrets: Buffer[] = [];
  let accepted!: () => void;
  const acceptedOnce = new Promise<void>((resolve) => (accepted = resolve));
  const run = runResolvedTunnel(
    {
      lifecycle: leader.lifecycle,
      initial: first,
      logger: leader.logger,
      runConnector: async (tunnel, signal) => {
        if (tunnel.mode !== 'managed') throw new Error('expected managed mode');
        secrets.push(tunnel.credentials.tunnelSecret);
        if (!tunnel.credentials.tunnelSecret.equals(fake.tunnels(ACCOUNT)[0]!.secret)) {
          throw new WarrenError(ErrorCode.TunnelCredentials, 'the edge rejected the tunnel credentials', { terminal: true });
        }
        accepted();
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
    },
    stop.signal,
  );
  await Promise.race([acceptedOnce, new Promise((_, reject) => setTimeout(() => reject(new Error('no retry with the rotated token within 5 s')), 5_000))]);
  t.is(secrets.length, 2);
  t.true(secrets[1]!.equals(rotated));
  stop.abort();
  await run;
});

test('token mode: a rotated token written to the mounted Secret file restarts the connector with it, no restart of Warren', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-rotation-'));
  const tokenFile = join(dir, 'tunnel-token');
  const token = (fill: number) => encodeTunnelToken({ accountTag: ACCOUNT, tunnelId: '5f0c8b2a-3d4e-4f60-8a1b-2c3d4e5f6a7b', tunnelSecret: Buffer.alloc(32, fill) });
  writeFileSync(tokenFile, `${token(1)}\n`);
  const { logger, text } = capturingLogger();
  const config = parseConfig({ tunnel: { tokenFile } });
  const lifecycle = new TunnelLifecycle({
    config,
    logger,
    clientFactory: () => {
      throw new Error('token mode makes no API call');
    },
    secretStore: new InMemoryCredentialsSecretStore(),
    leadership: leadershipFrom(() => true),
    env: {},
    replacementCheckMs: 20,
  });
  const initial = await lifecycle.resolve(AbortSignal.timeout(1_000));
  t.is(initial.mode, 'supplied');
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const seen: string[] = [];
  const started: Array<() => void> = [];
  const startedNth = (n: number) => new Promise<void>((resolve) => (started[n] = resolve));
  const second = startedNth(1);
  const third = startedNth(2);
  const run = runResolvedTunnel(
    {
      lifecycle,
      initial,
      logger,
      runConnector: async (_tunnel, signal) => {
        seen.push((await import('node:fs')).readFileSync(tokenFile, 'utf8').trim());
        started[seen.length - 1]?.();
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
    },
    stop.signal,
  );
  await new Promise((resolve) => setTimeout(resolve, 60));
  writeFileSync(tokenFile, 'not a token at all');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(seen.length, 1, 'content that is no token is ignored; the connector keeps running');
  writeFileSync(tokenFile, `${token(2)}\n`);
  await Promise.race([second, new Promise((_, reject) => setTimeout(() => reject(new Error('not restarted within 5 s')), 5_000))]);
  t.deepEqual(seen, [token(1), token(2)]);
  writeFileSync(tokenFile, token(3));
  await Promise.race([third, new Promise((_, reject) => setTimeout(() => reject(new Error('not restarted within 5 s')), 5_000))]);
  t.is(seen[2], token(3));
  stop.abort();
  await run;
  t.false(text().includes(token(2)), 'tokens are never logged');
});
