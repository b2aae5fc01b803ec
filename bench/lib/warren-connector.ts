/**
 * Warren's tunnel connector as a standalone process, forwarding every exchange to one origin with the
 * simulator's origin forwarder (the connector alone, without the proxy pipeline).
 *
 *   node bench/build/lib/warren-connector.js --edge 127.0.0.1:7844 --ca ca.crt --token-file token \
 *     --origin http://127.0.0.1:3000 [--ha 4]
 *
 * Logs go to stderr at `warn`. Stops gracefully on SIGTERM.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { CONNECTOR_OPTIONS, connectorConfig } from './connector-args.js';
import type * as Schema from '../../core/src/config/schema.js';
import type * as Forwarder from '../../core/src/edge-simulator/origin-forwarder.js';
import type * as Connector from '../../core/src/tunnel/connector.js';

const core = (path: string) => new URL(`../../../core/build/src/${path}`, import.meta.url).href;
const { tunnelSchema } = (await import(core('config/schema.js'))) as typeof Schema;
const { createOriginForwarder } = (await import(core('edge-simulator/origin-forwarder.js'))) as typeof Forwarder;
const { TunnelConnector } = (await import(core('tunnel/connector.js'))) as typeof Connector;

const { values } = parseArgs({
  options: {
    ...CONNECTOR_OPTIONS,
  },
});
const forwarder = createOriginForwarder({ origin: values.origin! });
const controller = new AbortController();
const connector = new TunnelConnector({
  config: connectorConfig(tunnelSchema, values),
  handler: forwarder,
  logger: pino({ level: 'warn' }, pino.destination(2)),
  env: {},
});
process.on('SIGTERM', () => controller.abort());
await connector.start(controller.signal);
forwarder.close();
