/**
 * A connector in its own process (so its RSS can be read alone) whose handler never reads an upload and
 * never answers it, as when every upstream connection is busy; requests to host `canary.example.com` are
 * answered 200 at once. The parent sends `'rss'` and gets `{ rss }` back (after a GC when exposed).
 *
 *   fork(this file, [edge, caFile, token, ha, ...extra tunnel settings as JSON])
 */
import { pino } from 'pino';
import { tunnelSchema } from '../../../src/config/schema.js';
import type { Exchange } from '../../../src/proxy/exchange.js';
import { TunnelConnector } from '../../../src/tunnel/connector.js';

const [edge, caFile, token, ha = '1', extra = '{}'] = process.argv.slice(2);
const haConnections = Number(ha);
const controller = new AbortController();
const connector = new TunnelConnector({
  config: {
    tunnel: tunnelSchema.parse({
      edgeAddresses: Array.from({ length: haConnections }, () => edge),
      edgeCaFile: caFile,
      haConnections,
      rpcTimeout: 2000,
      ...(JSON.parse(extra) as Record<string, unknown>),
    }),
    shutdownGracePeriod: 500,
  },
  handler: {
    handle(exchange: Exchange): Promise<void> {
      if (exchange.head.authority === 'canary.example.com') {
        exchange.respond({ status: 200, headers: ['content-type', 'text/plain'], contentLength: 2 }).end('ok');
        return Promise.resolve();
      }
      return new Promise((resolve) => exchange.signal.addEventListener('abort', () => resolve(), { once: true }));
    },
  },
  logger: pino({ level: process.env.WARREN_TEST_LOG ?? 'silent' }),
  env: { TUNNEL_TOKEN: token },
  registrationIntervalMs: 20,
  backoff: { baseMs: 20 },
});
process.on('message', (message) => {
  if (message === 'stop') return controller.abort();
  if (message !== 'rss') return;
  (globalThis as { gc?: () => void }).gc?.();
  process.send!({ rss: process.memoryUsage().rss });
});
process.on('disconnect', () => controller.abort());
await connector.start(controller.signal).catch(() => undefined);
process.exit(0);
