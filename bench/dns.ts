/**
 * DNS plugin cost: Cloudflare API calls and wall time for an initial sync of 1,000 and 10,000 hosts and for a
 * resync with nothing changed, in a Free and a Pro zone, against the local fake API (127.0.0.1) through the official
 * SDK, with the default shared request budget (1,200 requests / 5 minutes, burst 100) and the default batch size,
 * which each zone's plan caps (Free: 200 changes per batch, paid plans: 3,500).
 *
 *   npx tsc -b bench && npx node bench/build/dns.js [--latency-ms N]
 */
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createCloudflareClientFactory, parseConfig } from '@warren/core';
import { RecordingEventSink, handBuiltRouteTable, startFakeCloudflare } from '@warren/core/testing';
import { DnsSync, dnsConfigSchema } from '@warren/plugin-dns';

const { values } = parseArgs({ options: { 'latency-ms': { type: 'string', default: '0' } } });
const latencyMs = Number(values['latency-ms']);
const TOKEN = 'bench-token-0123456789abcdef';
const TUNNEL = '3f7b5a52-9c1e-4d8e-8a51-0e6f0b1c2d3e';

const rows: string[] = [];
for (const [plan, hosts] of [
  ['free', 1_000],
  ['free', 10_000],
  ['pro', 1_000],
  ['pro', 10_000],
] as const) {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }], latencyMs });
  try {
    fake.addZone('example.com', { plan });
    const logger = pino({ level: 'silent' });
    const client = createCloudflareClientFactory({
      config: parseConfig({ cloudflare: { apiBaseUrl: fake.baseUrl } }).cloudflare,
      logger,
      env: { CLOUDFLARE_API_TOKEN: TOKEN },
    });
    const sync = new DnsSync({ config: dnsConfigSchema.parse({}), client, logger, events: new RecordingEventSink() });
    const perIngress = 5;
    const ingresses = Array.from({ length: hosts / perIngress }, (_, i) => ({
      namespace: 'bench',
      name: `app${i}`,
      hosts: Array.from({ length: perIngress }, (_, j) => `h${i}-${j}.example.com`),
    }));
    const table = handBuiltRouteTable(ingresses);
    const measure = async (label: string) => {
      fake.resetLog();
      const started = process.hrtime.bigint();
      await sync.sync(table, TUNNEL, AbortSignal.timeout(600_000));
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const batches = fake.count('POST /zones/:zone/dns_records/batch');
      rows.push(`| ${plan} | ${hosts.toLocaleString('en')} | ${label} | ${fake.count()} | ${batches} | ${ms.toFixed(0)} |`);
    };
    await measure('initial sync');
    if (fake.records('example.com').length !== hosts * 2) throw new Error('initial sync did not create every record');
    await measure('resync, nothing changed');
  } finally {
    await fake.close();
  }
}
process.stdout.write(
  `fake API latency per request: ${latencyMs} ms\n\n| plan | hosts | run | API calls | batch calls | wall time (ms) |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
);
