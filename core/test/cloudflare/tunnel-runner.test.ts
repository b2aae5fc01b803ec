/**
 * The tunnel runner's orchestration: which connector runs when a managed tunnel is replaced, refused or fails.
 * The connector and the replacement watch are stand-ins here; the real ones run end to end in
 * core/test/e2e/chart-rbac.test.ts (a tunnel deleted in the fake Cloudflare API is replaced without a restart).
 */
import test from 'ava';
import pino from 'pino';
import { ErrorCode, WarrenError } from '../../src/errors.js';
import type { ResolvedTunnel } from '../../src/cloudflare/tunnel-lifecycle.js';
import { runResolvedTunnel } from '../../src/cloudflare/tunnel-runner.js';

const managed = (tunnelId: string): ResolvedTunnel => ({
  mode: 'managed',
  origin: 'secret',
  credentials: { accountTag: 'a'.repeat(32), tunnelId, tunnelSecret: Buffer.alloc(32, 1), tunnelName: 'x' },
});

/** A replacement watch that resolves when `replace(id)` is called for the tunnel it watches. */
function replacements() {
  const waiting = new Map<string, (next: ResolvedTunnel) => void>();
  const watched: string[] = [];
  return {
    watched,
    lifecycle: {
      watchForReplacement: (running: { tunnelId: string }, signal: AbortSignal) =>
        new Promise<ResolvedTunnel>((resolve, reject) => {
          watched.push(running.tunnelId);
          waiting.set(running.tunnelId, resolve);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
    },
    replace(from: string, to: string) {
      waiting.get(from)?.(managed(to));
    },
  };
}

test('a replacement stops the running connector, then starts one on the new tunnel', async (t) => {
  const r = replacements();
  const runs: Array<{ id: string; stopped: boolean }> = [];
  const stop = new AbortController();
  const done = runResolvedTunnel(
    {
      lifecycle: r.lifecycle,
      initial: managed('t1'),
      logger: pino({ level: 'silent' }),
      runConnector: (tunnel, signal) => {
        const run = { id: tunnel.mode === 'managed' ? tunnel.credentials.tunnelId : '?', stopped: false };
        runs.push(run);
        return new Promise((resolve) =>
          signal.addEventListener(
            'abort',
            () => {
              run.stopped = true;
              resolve();
            },
            { once: true },
          ),
        );
      },
    },
    stop.signal,
  );
  await new Promise((r2) => setTimeout(r2, 20));
  r.replace('t1', 't2');
  await new Promise((r2) => setTimeout(r2, 20));
  t.deepEqual(runs, [
    { id: 't1', stopped: true },
    { id: 't2', stopped: false },
  ]);
  t.deepEqual(r.watched, ['t1', 't2']);
  stop.abort();
  await done;
  t.true(runs[1]!.stopped);
});

test('credentials the edge refuses wait for the replacement instead of failing; other failures reject', async (t) => {
  const r = replacements();
  const started: string[] = [];
  const stop = new AbortController();
  const done = runResolvedTunnel(
    {
      lifecycle: r.lifecycle,
      initial: managed('stale'),
      logger: pino({ level: 'silent' }),
      runConnector: async (tunnel) => {
        const id = tunnel.mode === 'managed' ? tunnel.credentials.tunnelId : '?';
        started.push(id);
        if (id === 'stale') throw new WarrenError(ErrorCode.TunnelCredentials, 'the edge rejected the tunnel credentials', { terminal: true });
        throw new WarrenError(ErrorCode.TunnelRegistration, 'the edge refused to register the tunnel', { terminal: true });
      },
    },
    stop.signal,
  );
  let settled = false;
  void done.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r2) => setTimeout(r2, 30));
  t.false(settled, 'still waiting for a replacement');
  r.replace('stale', 'fresh');
  const err = await t.throwsAsync(done);
  t.regex(err!.message, /refused to register/);
  t.deepEqual(started, ['stale', 'fresh']);
});

test('a supplied tunnel (never replaced): stopping returns at once, a connector failure rejects', async (t) => {
  const never = { watchForReplacement: () => new Promise<ResolvedTunnel>(() => undefined) };
  const stop = new AbortController();
  const running = runResolvedTunnel(
    {
      lifecycle: never,
      initial: { mode: 'supplied' },
      logger: pino({ level: 'silent' }),
      runConnector: (_tunnel, signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    },
    stop.signal,
  );
  stop.abort();
  const outcome = await Promise.race([running.then(() => 'returned'), new Promise((r) => setTimeout(() => r('still running'), 2_000))]);
  t.is(outcome, 'returned');

  const failing = runResolvedTunnel(
    {
      lifecycle: never,
      initial: { mode: 'supplied' },
      logger: pino({ level: 'silent' }),
      runConnector: () => Promise.reject(new WarrenError(ErrorCode.TunnelCredentials, 'the edge rejected the tunnel credentials', { terminal: true })),
    },
    new AbortController().signal,
  );
  const err = await t.throwsAsync(Promise.race([failing, new Promise((_, reject) => setTimeout(() => reject(new Error('the runner hung')), 2_000))]));
  t.regex(err!.message, /rejected the tunnel credentials/, 'a supplied tunnel is never waited for: the failure surfaces');
});

test('replacements do not pile up listeners on the run signal', async (t) => {
  const r = replacements();
  const stop = new AbortController();
  let listeners = 0;
  const add = stop.signal.addEventListener.bind(stop.signal);
  const remove = stop.signal.removeEventListener.bind(stop.signal);
  stop.signal.addEventListener = ((...args: Parameters<AbortSignal['addEventListener']>) => {
    listeners++;
    add(...args);
  }) as AbortSignal['addEventListener'];
  stop.signal.removeEventListener = ((...args: Parameters<AbortSignal['removeEventListener']>) => {
    listeners--;
    remove(...args);
  }) as AbortSignal['removeEventListener'];
  const done = runResolvedTunnel(
    {
      lifecycle: r.lifecycle,
      initial: managed('t0'),
      logger: pino({ level: 'silent' }),
      runConnector: (_tunnel, signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    },
    stop.signal,
  );
  for (let i = 0; i < 20; i++) {
    await new Promise((r2) => setTimeout(r2, 5));
    r.replace(`t${i}`, `t${i + 1}`);
  }
  await new Promise((r2) => setTimeout(r2, 5));
  t.true(listeners <= 2, `${listeners} listeners left on the run signal after 20 replacements`);
  stop.abort();
  await done;
});
