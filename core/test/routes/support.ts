import { z } from 'zod';
import { parseConfig } from '../../src/config/load.js';
import { defineAnnotation, type PluginManifest } from '../../src/plugin-api/manifest.js';
import { routingConfig, type RoutingConfig } from '../../src/routes/build.js';
import type { Diagnostic, Route, RouteTable } from '../../src/routes/types.js';

/**
 * Plugin manifests for routing tests, shaped like the built-in ones (ids, settings names, protocols) plus a
 * few annotations, so tests do not depend on the plugin packages' current state.
 */
export const TEST_MANIFESTS: readonly PluginManifest[] = [
  {
    id: 'upstream.tls',
    name: 'tls',
    description: 'HTTPS upstreams',
    coreRange: '^0.1.0',
    kind: 'transport',
    order: 10,
    enabledByDefault: true,
    protocols: ['https'],
    protocolTraits: { https: { tls: true, ports: [443, 8443] } },
    appProtocols: { https: 'https' },
    annotations: [
      defineAnnotation({ key: 'proxy-ssl-secret', description: 'CA Secret', schema: z.string().min(1), example: 'ns/ca', secretRef: true }),
      defineAnnotation({
        key: 'proxy-ssl-verify',
        description: 'verify',
        schema: z.enum(['on', 'off'], { error: 'on or off' }),
        example: 'on',
      }),
    ],
  },
  {
    id: 'upstream.http2',
    name: 'http2',
    description: 'h2',
    coreRange: '^0.1.0',
    kind: 'transport',
    order: 20,
    enabledByDefault: true,
    protocols: ['h2c', 'h2'],
    protocolTraits: { h2c: { http2: true }, h2: { http2: true, tls: true } },
    appProtocols: { 'kubernetes.io/h2c': 'h2c' },
  },
  {
    id: 'upstream.websocket',
    name: 'websocket',
    description: 'ws',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 10,
    enabledByDefault: true,
    protocols: ['ws', 'wss'],
    protocolTraits: { wss: { tls: true } },
    appProtocols: { 'kubernetes.io/ws': 'ws', 'kubernetes.io/wss': 'wss' },
  },
  {
    id: 'upstream.grpc',
    name: 'grpc',
    description: 'grpc',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 20,
    enabledByDefault: true,
    protocols: ['grpc', 'grpcs'],
    protocolTraits: { grpc: { http2: true }, grpcs: { http2: true, tls: true } },
    appProtocols: { 'example.com/grpc-tls': 'grpcs', grpc: 'grpc', 'grpc-web': 'http' },
    dependsOn: ['upstream.http2'],
  },
  {
    id: 'cloud.firewall',
    name: 'firewall',
    description: 'firewall',
    coreRange: '^0.1.0',
    kind: 'control',
    order: 20,
    enabledByDefault: false,
    annotations: [
      defineAnnotation({
        key: 'firewall-allow-countries',
        description: 'allowed countries',
        schema: z.string().regex(/^[A-Z]{2}(,[A-Z]{2})*$/, 'comma-separated ISO country codes such as "CH,DE"'),
        example: 'CH,DE',
      }),
    ],
  },
  {
    id: 'acme.limits',
    name: 'limits',
    description: 'a custom policy plugin',
    coreRange: '^0.1.0',
    kind: 'policy',
    order: 10,
    enabledByDefault: true,
    annotations: [
      defineAnnotation({
        key: 'rate-limit',
        description: 'requests per second',
        schema: z.string().regex(/^\d+$/, 'a whole number').transform(Number).pipe(z.number().int().min(1).max(100000)),
        example: '100',
      }),
    ],
  },
];

/** Builder settings from raw settings plus the names of test plugins to switch on or off. */
export function testRoutingConfig(config: unknown = {}, plugins: { enable?: readonly string[]; disable?: readonly string[] } = {}): RoutingConfig {
  const parsed = parseConfig(config);
  const enabled = TEST_MANIFESTS.filter((m) => (plugins.disable?.includes(m.name) ? false : plugins.enable?.includes(m.name) ? true : m.enabledByDefault === true));
  return routingConfig(parsed, enabled, TEST_MANIFESTS);
}

/** `Kind namespace/name` of a diagnostic's object. */
export function objectName(d: Diagnostic): string {
  return `${d.object.kind} ${d.object.namespace ? `${d.object.namespace}/` : ''}${d.object.name}`;
}

/** A comparable, order-free rendering of a table (for incremental-versus-full comparisons). */
export function canonical(table: RouteTable): unknown {
  const byId = (a: Route, b: Route) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const text = (v: unknown) => JSON.stringify(v);
  return {
    routes: [...table.routes].sort(byId).map((r) => text(r)),
    diagnostics: table.diagnostics.map(text).sort(),
    owned: table.ownedIngresses.map(text).sort(),
    hosts: [...table.hosts].sort(),
  };
}
