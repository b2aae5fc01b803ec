/**
 * Values parsed once (the settings, each section's defaults, a plugin's settings, a manifest document from a folder)
 * are parsed without zod's compiled fast path: compiling it (generated code through `new Function`) costs more than
 * the parse, and it is start-up CPU (config/parse-once.ts). `Function` is watched before the settings schema loads:
 * its module parses each section's defaults as it loads.
 */
import test from 'ava';

const compiled: string[] = [];
globalThis.Function = new Proxy(globalThis.Function, {
  construct(target, args, newTarget) {
    const body = String(args.at(-1) ?? '');
    // zod's probe for whether code may be generated at all compiles an empty body once.
    if (body !== '') compiled.push(body);
    return Reflect.construct(target, args, newTarget) as object;
  },
});
const { z } = await import('zod');
const { parseConfig } = await import('../../src/config/load.js');
const { resolvePlugins } = await import('../../src/plugins/registry.js');
const { parseManifestText } = await import('../../src/local/manifest-parser.js');

const MANIFESTS = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: default}
spec:
  rules: [{host: app.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}]}}]
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {ports: [{port: 80}]}
`;

test.serial('loading the settings schema, parsing settings and parsing the plugins settings compile no code', async (t) => {
  const config = parseConfig({
    logLevel: 'warn',
    tunnel: { haConnections: 2, edgeAddresses: ['127.0.0.1:7844'] },
    proxy: { paths: { mergeSlashes: false }, accessLog: { sampleRate: 0.5 } },
    kubernetes: { leaderElection: { leaseName: 'x' } },
    plugins: { sse: { enabled: true }, dns: { enabled: false } },
  });
  t.is(config.tunnel.haConnections, 2);
  t.is(config.kubernetes.leaderElection.renewDeadline, 10_000, "a section's defaults under a given value");
  t.is(config.cloudflare.rateLimit.requests, 1200, 'a default section');
  const plugins = await resolvePlugins(config);
  t.true(plugins.length > 0);
  t.deepEqual(compiled, []);
});

test.serial('parsing manifests from a folder compiles no code', (t) => {
  compiled.length = 0;
  const parsed = parseManifestText(MANIFESTS, 'app.yaml');
  t.deepEqual(
    parsed.objects.map((o) => o.kind),
    ['Ingress', 'Service'],
  );
  t.deepEqual(compiled, []);
});

test.serial('the watch sees the fast path zod compiles for an object schema parsed without the option', (t) => {
  compiled.length = 0;
  t.deepEqual(z.object({ a: z.string() }).parse({ a: 'x' }), { a: 'x' });
  t.is(compiled.length, 1);
});
