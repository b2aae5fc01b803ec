/**
 * Local mode's folder source: how long a folder of manifests takes to load, and how long after a file is saved
 * the new snapshot is published (fs.watch + debounce + re-read + parse of the changed file only), with the route
 * table rebuilt from it.
 *
 *   npx node bench/build/local-folder.js [--ingresses 1000] [--files 100] [--edits 40] [--debounce-ms 100]
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig, RouteTableBuilder, routingConfig } from '@warren/core';
import type * as Local from '../core/src/local/index.js';

// The folder source is internal to core (not exported from @warren/core), so it is loaded from the build output.
const { FolderSource } = (await import(new URL('../../core/build/src/local/index.js', import.meta.url).href)) as typeof Local;

const { values } = parseArgs({
  options: {
    ingresses: { type: 'string', default: '1000' },
    files: { type: 'string', default: '100' },
    edits: { type: 'string', default: '40' },
    'debounce-ms': { type: 'string', default: '100' },
  },
});
const ingresses = Number(values.ingresses);
const files = Number(values.files);
const edits = Math.min(Number(values.edits), 200);
const debounceMs = Number(values['debounce-ms']);

/** One app: Ingress, Service, EndpointSlice. */
function app(i: number, port: number): string {
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app-${i}, namespace: bench}
spec:
  ingressClassName: cloudflare-tunnel
  rules:
    - host: app-${i}.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: app-${i}, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: app-${i}, namespace: bench}
spec:
  ports: [{name: http, port: 80, targetPort: ${port}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-${i}-1, namespace: bench, labels: {kubernetes.io/service-name: app-${i}}}
addressType: IPv4
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
ports: [{name: http, port: ${port}}]
`;
}

function fileText(f: number, port: number): string {
  const perFile = Math.ceil(ingresses / files);
  const docs: string[] = [];
  for (let i = f * perFile; i < Math.min(ingresses, (f + 1) * perFile); i++) docs.push(app(i, port));
  return docs.join('---\n');
}

const folder = mkdtempSync(join(tmpdir(), 'warren-bench-local-'));
try {
  writeFileSync(
    join(folder, '00-class.yaml'),
    'apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: cloudflare-tunnel}\nspec: {controller: warren.dev/ingress-controller}\n',
  );
  for (let f = 0; f < files; f++) writeFileSync(join(folder, `apps-${String(f).padStart(3, '0')}.yaml`), fileText(f, 3000));

  const source = new FolderSource({ folder, debounceMs });
  const builder = new RouteTableBuilder(routingConfig(parseConfig({}), []));
  const t0 = performance.now();
  const controller = new AbortController();
  const running = source.start(controller.signal);
  await source.waitForSync();
  const loadMs = performance.now() - t0;
  const b0 = performance.now();
  const first = builder.build(source.snapshot(), source.takeChanges());
  const buildMs = performance.now() - b0;
  if (first.routes.length !== ingresses) throw new Error(`expected ${ingresses} routes, got ${first.routes.length}`);

  // Edit one file at a time (changing its endpoint port) and time save → snapshot published → table rebuilt.
  const latencies: number[] = [];
  for (let e = 0; e < edits; e++) {
    const f = e % files;
    const published = new Promise<number>((resolve) => {
      const off = source.onChange(() => {
        off();
        resolve(performance.now());
      });
    });
    const start = performance.now();
    writeFileSync(join(folder, `apps-${String(f).padStart(3, '0')}.yaml`), fileText(f, 4000 + e));
    await Promise.race([published, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('no change within 10 s')), 10_000).unref())]);
    const table = builder.build(source.snapshot(), source.takeChanges());
    latencies.push(performance.now() - start);
    if (table.routes.length !== ingresses) throw new Error('routes lost during an edit');
  }
  controller.abort();
  await running;

  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  const rssMb = process.memoryUsage().rss / 2 ** 20;
  process.stdout.write(
    [
      `| case | result |`,
      `|---|---:|`,
      `| initial load: ${ingresses} Ingresses + Services + EndpointSlices in ${files} files | ${loadMs.toFixed(0)} ms |`,
      `| first route-table build | ${buildMs.toFixed(0)} ms |`,
      `| save → snapshot published → table rebuilt, p50 (${edits} edits, debounce ${debounceMs} ms) | ${pct(50).toFixed(0)} ms |`,
      `| same, p99 | ${pct(99).toFixed(0)} ms |`,
      `| same, minus the debounce, p50 | ${(pct(50) - debounceMs).toFixed(0)} ms |`,
      `| RSS after the run | ${rssMb.toFixed(0)} MiB |`,
      '',
    ].join('\n'),
  );
} finally {
  rmSync(folder, { recursive: true, force: true });
}
