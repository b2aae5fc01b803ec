/**
 * Folder mode has no API server for Events: every Warning cluster mode would record must be a log line with the
 * same reason and message, naming the object and its manifest file. The cluster's side is computed by the real
 * RouteEventsReporter over the same route table, so the two cannot drift apart.
 */
import test from 'ava';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleWarren } from '../../src/bootstrap.js';
import { parseConfig } from '../../src/config/load.js';
import { RouteEventsReporter } from '../../src/reconcile/route-events.js';
import { capturingLogger, RecordingEventSink } from '../../src/testing/index.js';

const CLASS = ['apiVersion: networking.k8s.io/v1', 'kind: IngressClass', 'metadata: { name: cloudflare-tunnel }', 'spec: { controller: warren.dev/ingress-controller }'].join(
  '\n',
);
const SERVICE = [
  'apiVersion: v1',
  'kind: Service',
  'metadata: { name: web, namespace: demo }',
  'spec: { ports: [ { name: http, port: 80, targetPort: 3001 } ] }',
  '---',
  'apiVersion: discovery.k8s.io/v1',
  'kind: EndpointSlice',
  'metadata: { name: web-1, namespace: demo, labels: { kubernetes.io/service-name: web } }',
  'addressType: IPv4',
  'endpoints: [ { addresses: ["127.0.0.1"], conditions: { ready: true } } ]',
  'ports: [ { name: http, port: 3001, protocol: TCP } ]',
].join('\n');

function ingress(name: string, host: string, options: { pathType?: string; service?: string; annotations?: Record<string, string> } = {}): string {
  return [
    'apiVersion: networking.k8s.io/v1',
    'kind: Ingress',
    `metadata: { name: ${name}, namespace: demo, annotations: ${JSON.stringify(options.annotations ?? {})} }`,
    'spec:',
    '  ingressClassName: cloudflare-tunnel',
    '  rules:',
    `    - host: ${host}`,
    `      http: { paths: [ { path: /, pathType: ${options.pathType ?? 'Prefix'}, backend: { service: { name: ${options.service ?? 'web'}, port: { name: http } } } } ] }`,
  ].join('\n');
}

test('every route Warning cluster mode records is logged in folder mode with the same reason and message, once, and again after a fix is undone', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'warren-local-events-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(join(folder, 'base.yaml'), `${CLASS}\n---\n${SERVICE}\n`);
  const broken = [
    ingress('bad-path', 'a.localhost', { pathType: 'Sometimes' }),
    ingress('bad-annotation', 'b.localhost', { annotations: { 'warren.dev/idle-timeout': 'soon' } }),
    ingress('missing-service', 'c.localhost', { service: 'web-typo' }),
  ].join('\n---\n');
  writeFileSync(join(folder, 'ingresses.yaml'), `${broken}\n`);

  const { logger, lines } = capturingLogger();
  const config = parseConfig({ source: { kind: 'folder', folder }, tunnel: { enabled: false }, server: { listen: '127.0.0.1:0' }, kubernetes: { resyncBurstWindow: '10ms' } });
  const warren = await assembleWarren(config, { logger, env: {} });
  const stop = new AbortController();
  const running = warren.run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
    await warren.close();
  });
  await warren.routes.waitFor((table) => table.generation > 0, { signal: AbortSignal.timeout(10_000) });

  // What cluster mode records for the same table.
  const cluster = new RecordingEventSink();
  const reporterStop = new AbortController();
  const reporting = new RouteEventsReporter({ store: warren.routes, events: cluster, logger }).start(reporterStop.signal);
  await new Promise((resolve) => setTimeout(resolve, 100));
  reporterStop.abort();
  await reporting;
  const expected = cluster
    .warnings()
    .map((e) => `${e.object.name} ${e.reason}: ${e.message}`)
    .sort();
  t.true(expected.length >= 3, `cluster warnings: ${expected.join('\n')}`);
  t.deepEqual(new Set(cluster.warnings().map((e) => e.object.name)), new Set(['bad-path', 'bad-annotation', 'missing-service']));

  const logged = () => lines().filter((l) => l.component === 'events' && l.event === 'Warning');
  const shown = () =>
    logged()
      .map((l) => `${(l.object as { name: string }).name} ${String(l.reason)}: ${String(l.msg)}`)
      .sort();
  t.deepEqual(shown(), expected, 'the same reasons and messages');
  for (const line of logged()) {
    t.is(line.level, 40);
    t.regex(String(line.file), /ingresses\.yaml$/, 'the line names the manifest file');
  }

  // A rebuild that changes nothing about the problems logs nothing new.
  const generation = warren.routes.current.generation;
  writeFileSync(join(folder, 'good.yaml'), `${ingress('good', 'd.localhost')}\n`);
  await warren.routes.waitFor((table) => table.generation > generation && table.hosts.includes('d.localhost'), { signal: AbortSignal.timeout(10_000) });
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(logged().length, expected.length, shown().join('\n'));

  // Fixing the missing Service clears its warning; breaking it again logs it again.
  const count = (name: string) => logged().filter((l) => (l.object as { name: string }).name === name).length;
  const before = count('missing-service');
  writeFileSync(join(folder, 'ingresses.yaml'), `${broken.replace('name: web-typo', 'name: web')}\n`);
  await warren.routes.waitFor((table) => !table.diagnostics.some((d) => d.object.name === 'missing-service'), { signal: AbortSignal.timeout(10_000) });
  writeFileSync(join(folder, 'ingresses.yaml'), `${broken}\n`);
  await warren.routes.waitFor((table) => table.diagnostics.some((d) => d.object.name === 'missing-service'), { signal: AbortSignal.timeout(10_000) });
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(count('missing-service'), before * 2, 'logged again when it came back');
});
