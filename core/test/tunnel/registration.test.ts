import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import { bytesToUuid, encodeTunnelToken } from '../../src/tunnel/credentials.js';
import { DEFAULT_FEATURES, LOCAL_CONFIG_JSON, TunnelConnector } from '../../src/tunnel/connector.js';
import { tunnelSchema } from '../../src/config/schema.js';
import { eventually, startHarness, testLogger } from './support/harness.js';

test('all HA connections register: index 0 first, the others after it, each with the full request', async (t) => {
  const h = await startHarness(t, { ha: 4 });
  const counts: number[] = [];
  h.connector.onConnectionsChange((n) => counts.push(n));
  const conns = await h.sim.waitForRegistrations(4);
  await h.waitForConnections(4);
  t.deepEqual(counts.slice(-1), [4]);
  const byIndex = [...conns].sort((a, b) => a.connIndex! - b.connIndex!);
  t.deepEqual(
    byIndex.map((c) => c.connIndex),
    [0, 1, 2, 3],
  );
  for (const later of byIndex.slice(1)) t.true(later.acceptedAt >= byIndex[0]!.registeredAt!, 'later slots dial only after slot 0 registered');
  const creds = h.sim.credentials;
  for (const c of byIndex) {
    const req = c.registration!;
    t.is(req.auth.accountTag, creds.accountTag);
    t.deepEqual(req.auth.tunnelSecret, creds.tunnelSecret);
    t.is(bytesToUuid(req.tunnelId), creds.tunnelId);
    t.is(bytesToUuid(req.options.client.clientId), h.connector.connectorId);
    t.deepEqual(req.options.client.features, [...DEFAULT_FEATURES]);
    t.regex(req.options.client.version, /^warren\/\d+\.\d+\.\d+/);
    t.regex(req.options.client.arch, /^[a-z0-9]+_[a-z0-9]+$/);
    t.deepEqual(req.options.originLocalIp, Buffer.from('00000000000000000000ffff7f000001', 'hex'));
    t.false(req.options.replaceExisting);
    t.is(req.options.compressionQuality, 0);
    t.is(req.options.numPreviousAttempts, 0);
    t.is(c.controlStatus, 200);
  }
  await h.sim.waitFor(() => byIndex[0]!.localConfigs.length === 1, 5000, 'the local configuration');
  t.deepEqual(JSON.parse(byIndex[0]!.localConfigs[0]!.toString()), JSON.parse(LOCAL_CONFIG_JSON));
  for (const c of byIndex.slice(1)) t.is(c.localConfigs.length, 0, 'only connection 0 pushes configuration');
  t.deepEqual(byIndex[0]!.rpc!.events.sequence().slice(0, 2), ['bootstrap', 'call:registerConnection']);
  const metrics = await h.registry.getSingleMetricAsString('cloudflared_tunnel_ha_connections');
  t.regex(metrics, /cloudflared_tunnel_ha_connections 4/);
  const registered = await h.registry.getSingleMetricAsString('cloudflared_tunnel_tunnel_register_success');
  t.regex(registered, /cloudflared_tunnel_tunnel_register_success\{rpcName="registerConnection"\} 4/, 'the series cloudflared dashboards query');
  t.is(h.connector.connections().length, 4);
  t.is(h.connector.tunnelId, creds.tunnelId);
});

test('a remotely managed tunnel gets no local configuration push', async (t) => {
  const h = await startHarness(t, { simulator: { tunnelIsRemotelyManaged: true } });
  const [c] = await h.sim.waitForRegistrations(1);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(c!.rpc!.events.calls('updateLocalConfiguration'), []);
});

test('bad credentials end start-up with a clear credentials error that never shows the secret', async (t) => {
  const wrong = encodeTunnelToken({ accountTag: 'someone-else', tunnelSecret: randomBytes(32), tunnelId: '11111111-2222-3333-4444-555555555555' });
  const h = await startHarness(t, { connector: { env: { TUNNEL_TOKEN: wrong }, unauthorizedRetries: 2 } });
  const err = await t.throwsAsync(h.running!);
  t.true(isWarrenError(err, ErrorCode.TunnelCredentials), String(err));
  t.true((err as import('../../src/errors.js').WarrenError).terminal);
  t.regex(err!.message, /rejected the tunnel credentials 3 times .*Unauthorized.*check the tunnel token/);
  t.false(err!.message.includes(h.sim.credentials.tunnelSecret.toString('base64')));
  t.is(h.sim.connections.filter((c) => c.result?.ok === false).length, 3, 'Unauthorized is retried during start-up, boundedly');
  t.is(h.connector.registeredConnections, 0);
  const fail = await h.registry.getSingleMetricAsString('cloudflared_tunnel_tunnel_register_fail');
  t.regex(fail, /error="unauthorized",rpcName="registerConnection"} 3/);
});

test('a permanent refusal during start-up fails start(); a retryable one is retried no sooner than retryAfter', async (t) => {
  const permanent = await startHarness(t, { manualStart: true });
  permanent.sim.faults.refuseRegistration = { cause: 'tunnel deleted', shouldRetry: false };
  await permanent.start();
  const err = await t.throwsAsync(permanent.running!);
  t.true(isWarrenError(err, ErrorCode.TunnelRegistration));
  t.regex(err!.message, /tunnel deleted/);

  const retry = await startHarness(t, { manualStart: true });
  retry.sim.faults.refuseRegistration = { cause: 'edge busy', shouldRetry: true, retryAfterMs: 400, times: 1 };
  await retry.start();
  const [ok] = await retry.sim.waitForRegistrations(1);
  const refused = retry.sim.connections.find((c) => c.result?.ok === false)!;
  t.is(refused.result!.ok ? '' : refused.result!.error.cause, 'edge busy');
  t.true(ok!.acceptedAt - refused.acceptedAt >= 400, 'the retry waited at least retryAfter');
  t.is(ok!.registration!.options.numPreviousAttempts, 1, 'the retry count is reported to the edge');
});

test('EDUPCONN moves the slot to another edge address at once', async (t) => {
  const h = await startHarness(t, { manualStart: true, simulator: { edgeListeners: 2 } });
  h.sim.faults.duplicateOnListeners = [0];
  await h.start();
  const [registered] = await h.sim.waitForRegistrations(1);
  t.is(registered!.listener, 1);
  const refused = h.sim.connections.filter((c) => c.result?.ok === false);
  t.true(refused.length >= 1);
  t.true(refused.every((c) => c.listener === 0 && !c.result!.ok && c.result!.error.cause === 'EDUPCONN'));
  t.is(registered!.registration!.options.numPreviousAttempts, 0, 'EDUPCONN does not consume backoff');
});

test('a dropped connection is re-established and the count follows', async (t) => {
  const h = await startHarness(t, { ha: 2 });
  await h.waitForConnections(2);
  const counts: number[] = [];
  h.connector.onConnectionsChange((n) => counts.push(n));
  t.is(h.sim.faults.dropConnection(1), 1);
  await h.sim.waitFor(
    () => h.sim.connections.filter((c) => c.connIndex === 1 && c.result?.ok).length === 2 && h.sim.registeredConnections().length === 2,
    5000,
    'slot 1 back',
  );
  const again = h.sim.registeredConnections().find((c) => c.connIndex === 1)!;
  t.is(again.registration!.options.numPreviousAttempts, 1);
  await h.waitForConnections(2);
  t.deepEqual(counts, [1, 2]);
  t.is((await h.sim.request({ path: '/status/200', connIndex: 1 })).status, 200);
});

test('GOAWAY or a reset control stream from the edge makes the connector reconnect that slot', async (t) => {
  const h = await startHarness(t, { ha: 2 });
  await h.waitForConnections(2);
  const first = h.sim.registeredConnections();
  h.sim.faults.goAway(0);
  await h.sim.waitFor(() => h.sim.registeredConnections().filter((c) => c.connIndex === 0 && !first.includes(c)).length === 1, 5000, 'slot 0 after GOAWAY');
  h.sim.faults.resetControlStream(1);
  await h.sim.waitFor(() => h.sim.registeredConnections().filter((c) => c.connIndex === 1 && !first.includes(c)).length === 1, 5000, 'slot 1 after reset');
  await h.sim.waitFor(() => first.every((c) => c.closed), 5000, 'old connections closed');
  await h.waitForConnections(2);
  t.is(h.sim.registeredConnections().length, 2);
});

test('a silent edge (no control stream, or no RPC answer) is given up after the RPC timeout and retried', async (t) => {
  const h = await startHarness(t, { manualStart: true, tunnel: { rpcTimeout: 300 } });
  h.sim.faults.noControlStream = true;
  await h.start();
  await h.sim.waitFor(() => h.sim.connections.filter((c) => c.closed).length >= 1, 5000, 'first silent attempt closed');
  h.sim.faults.noControlStream = false;
  h.sim.faults.rpc = { silent: true };
  await h.sim.waitFor(() => h.sim.connections.some((c) => c.controlStream && c.closed), 5000, 'silent RPC attempt closed');
  h.sim.faults.rpc = undefined;
  await h.waitForConnections(1, 5000);
  t.is(h.sim.registeredConnections().length, 1);
});

test('malformed RPC answers and RPC exceptions are survived and retried', async (t) => {
  const h = await startHarness(t, { manualStart: true });
  h.sim.faults.rpc = { malformedReturn: true };
  await h.start();
  await h.sim.waitFor(() => h.sim.connections.filter((c) => c.closed).length >= 2, 5000, 'two malformed attempts');
  h.sim.faults.rpc = { exception: 'internal' };
  const before = h.sim.connections.length;
  await h.sim.waitFor(() => h.sim.connections.slice(before).some((c) => c.closed), 5000, 'an exception attempt');
  h.sim.faults.rpc = undefined;
  await h.waitForConnections(1, 5000);
  t.true(h.sim.connections.length >= 4);
});

test('an edge with an untrusted certificate is never registered with', async (t) => {
  const h = await startHarness(t, { manualStart: true, tunnel: { edgeCaFile: undefined } });
  await h.start();
  await eventually(
    async () => /error="dial",rpcName="registerConnection"} [2-9]/.test(await h.registry.getSingleMetricAsString('cloudflared_tunnel_tunnel_register_fail')),
    5000,
  );
  t.is(h.sim.connections.length, 0, 'TLS verification failed before HTTP/2 started');
  t.is(h.connector.registeredConnections, 0);
  const fail = await h.registry.getSingleMetricAsString('cloudflared_tunnel_tunnel_register_fail');
  t.regex(fail, /error="dial",rpcName="registerConnection"} [1-9]/);
});

test('HA connections are capped to the number of edge addresses', async (t) => {
  const h = await startHarness(t, { manualStart: true, ha: 3 });
  const single = new TunnelConnector({
    config: { tunnel: tunnelSchema.parse({ edgeAddresses: [h.sim.edgeAddress], edgeCaFile: h.sim.caFile, haConnections: 3 }), shutdownGracePeriod: 1000 },
    handler: { handle: async (e) => e.fail({ status: 502, message: 'unused' }) },
    logger: testLogger(),
    env: { TUNNEL_TOKEN: h.sim.token },
    registrationIntervalMs: 10,
  });
  const controller = new AbortController();
  const running = single.start(controller.signal);
  t.teardown(() => controller.abort());
  await h.sim.waitForRegistrations(1);
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.is(h.sim.connections.length, 1, 'one address, one connection');
  t.is(single.registeredConnections, 1);
  controller.abort();
  await running;
});

test('tunnel.clientVersion and tunnel.features are what the edge receives; features must keep serialized_headers', async (t) => {
  const h = await startHarness(t, { tunnel: { clientVersion: '2026.8.2', features: ['serialized_headers', 'allow_remote_config'] } });
  const [c] = await h.sim.waitForRegistrations(1);
  t.is(c!.registration!.options.client.version, '2026.8.2');
  t.deepEqual(c!.registration!.options.client.features, ['serialized_headers', 'allow_remote_config']);
  const refused = tunnelSchema.safeParse({ features: ['support_quic_eof'] });
  t.false(refused.success);
  t.regex(JSON.stringify(refused.error?.issues), /must include \\"serialized_headers\\"/);
  t.false(tunnelSchema.safeParse({ clientVersion: 'has space' }).success);
});
