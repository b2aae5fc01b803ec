import type { ExecutionContext } from 'ava';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { tunnelSchema } from '../../../src/config/schema.js';
import { createOriginForwarder } from '../../../src/edge-simulator/origin-forwarder.js';
import { startEdgeSimulator, type EdgeSimulator, type EdgeSimulatorOptions } from '../../../src/edge-simulator/simulator.js';
import type { ExchangeHandler } from '../../../src/proxy/exchange.js';
import { TunnelConnector, type TunnelConnectorOptions } from '../../../src/tunnel/connector.js';
import { startTestOrigin, type TestOrigin } from './origin.js';

/** Logs go nowhere unless WARREN_TEST_LOG names a level (e.g. `debug`). */
export function testLogger(): Logger {
  return pino({ level: process.env.WARREN_TEST_LOG ?? 'silent' });
}

export interface HarnessOptions {
  readonly ha?: number;
  readonly simulator?: EdgeSimulatorOptions;
  /** Settings under `tunnel` beyond the edge override. */
  readonly tunnel?: Record<string, unknown>;
  readonly graceMs?: number;
  readonly connector?: Partial<TunnelConnectorOptions>;
  /** Handler instead of the origin forwarder. */
  readonly handler?: ExchangeHandler;
  /** Do not start the connector (tests that start it themselves). */
  readonly manualStart?: boolean;
}

export interface Harness {
  readonly sim: EdgeSimulator;
  readonly origin: TestOrigin;
  readonly connector: TunnelConnector;
  readonly registry: Registry;
  /** The connector's `start()` promise (settles when it stops or fails). */
  running: Promise<void> | undefined;
  start(): Promise<void>;
  /** Aborts the connector's signal and waits for it to stop. */
  stop(): Promise<void>;
  /** Resolves once the connector itself counts `n` registered connections (the edge may know earlier). */
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
}

/**
 * Edge simulator → TunnelConnector → origin forwarder → real node:http origin, all on loopback, torn down
 * with the test. Backoff and start-up spacing are shortened so tests run in a few hundred milliseconds.
 */
export async function startHarness(t: ExecutionContext, options: HarnessOptions = {}): Promise<Harness> {
  const ha = options.ha ?? 1;
  const sim = await startEdgeSimulator(options.simulator);
  const origin = await startTestOrigin();
  const forwarder = createOriginForwarder({ origin: origin.url });
  const registry = new Registry();
  const controller = new AbortController();
  const connector = new TunnelConnector({
    config: {
      tunnel: tunnelSchema.parse({
        edgeAddresses: Array.from({ length: Math.max(ha, sim.edgeAddresses.length) }, (_, i) => sim.edgeAddresses[i % sim.edgeAddresses.length]),
        edgeCaFile: sim.caFile,
        haConnections: ha,
        rpcTimeout: 2000,
        ...options.tunnel,
      }),
      shutdownGracePeriod: options.graceMs ?? 2000,
    },
    handler: options.handler ?? forwarder,
    logger: testLogger(),
    registry,
    env: { TUNNEL_TOKEN: sim.token },
    registrationIntervalMs: 20,
    backoff: { baseMs: 20 },
    ...options.connector,
  });
  const harness: Harness = {
    sim,
    origin,
    connector,
    registry,
    running: undefined,
    async start() {
      harness.running = connector.start(controller.signal);
      harness.running.catch(() => undefined);
    },
    async stop() {
      controller.abort();
      await harness.running?.catch(() => undefined);
    },
    waitForConnections(n, timeoutMs = 10_000) {
      if (connector.registeredConnections === n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(new Error(`the connector counts ${connector.registeredConnections} registered connections, not ${n}, after ${timeoutMs} ms`));
        }, timeoutMs);
        const off = connector.onConnectionsChange((count) => {
          if (count !== n) return;
          clearTimeout(timer);
          off();
          resolve();
        });
      });
    },
  };
  t.teardown(async () => {
    await harness.stop();
    forwarder.close();
    await sim.close();
    await origin.close();
  });
  if (!options.manualStart) await harness.start();
  return harness;
}

/** Polls `check` every 20 ms until it holds; rejects after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
