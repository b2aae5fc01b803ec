import { isIP } from 'node:net';
import { z } from 'zod';
import { GATEWAY_MANIFEST_KINDS, gatewayKindSchema, type GatewayManifestKind } from './gateway-schema.js';

/**
 * Structural checks for manifests read from files. In a cluster the API server validates objects before
 * Warren sees them; in local mode nothing does, so these schemas reject what the API server would reject
 * structurally (wrong types, missing required fields, bad names), with a message naming the field. They are
 * deliberately loose about fields Warren does not read (unknown fields pass through untouched), and they do
 * not re-implement routing rules: the route builder reports those as diagnostics, as it does for cluster
 * objects.
 */

/** The kinds local mode reads, each with the apiVersions Warren understands (the first is the preferred one). */
export const LOCAL_KINDS = {
  Ingress: ['networking.k8s.io/v1'],
  IngressClass: ['networking.k8s.io/v1'],
  Service: ['v1'],
  EndpointSlice: ['discovery.k8s.io/v1'],
  Secret: ['v1'],
  ConfigMap: ['v1'],
  Namespace: ['v1'],
  ...GATEWAY_MANIFEST_KINDS,
} as const satisfies Record<string, readonly string[]>;
export type LocalKind = keyof typeof LOCAL_KINDS;

/** Kinds without a namespace: keyed by name alone. */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<LocalKind> = new Set<LocalKind>(['IngressClass', 'GatewayClass', 'Namespace']);

/**
 * Kinds whose structural errors leave out only the object, as the API server refuses one object of an apply and
 * keeps the rest; errors in objects of the other kinds hold back the whole file (its last good version stays).
 */
export const OBJECT_SCOPED_KINDS: ReadonlySet<LocalKind> = new Set<LocalKind>(Object.keys(GATEWAY_MANIFEST_KINDS) as GatewayManifestKind[]);

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const subdomain = z.string().max(253).regex(SUBDOMAIN, 'a lower-case DNS subdomain such as "my-app" or "app.v1"');
const label = z.string().max(63).regex(LABEL, 'a lower-case DNS label such as "default" or "demo"');
const stringMap = (what: string) => z.record(z.string(), z.string({ error: `${what} values must be strings (quote numbers and booleans)` }));
const port = z.number({ error: 'a port number' }).int().min(1).max(65535);
const intOrName = z.union([port, z.string().min(1)], { error: 'a port number or a port name' });

const metadata = (name: z.ZodString) =>
  z.looseObject({
    name,
    namespace: label.optional(),
    labels: stringMap('label').optional(),
    annotations: stringMap('annotation').optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    generation: z.number().int().optional(),
    creationTimestamp: z.union([z.iso.datetime({ offset: true }), z.date()]).optional(),
  });

const serviceBackend = z.looseObject({
  name: z.string().min(1),
  port: z.looseObject({ number: port.optional(), name: z.string().min(1).optional() }),
});
const backend = z.looseObject({ service: serviceBackend.optional(), resource: z.looseObject({}).optional() });

const ingress = z.looseObject({
  metadata: metadata(subdomain),
  spec: z
    .looseObject({
      ingressClassName: z.string().optional(),
      defaultBackend: backend.optional(),
      rules: z
        .array(
          z.looseObject({
            host: z.string().optional(),
            http: z
              .looseObject({
                paths: z.array(
                  z.looseObject({
                    path: z.string().optional(),
                    pathType: z.string({ error: 'a pathType: Exact, Prefix or ImplementationSpecific' }),
                    backend,
                  }),
                ),
              })
              .optional(),
          }),
        )
        .optional(),
      tls: z.array(z.looseObject({ hosts: z.array(z.string()).optional(), secretName: z.string().optional() })).optional(),
    })
    .optional(),
});

const ingressClass = z.looseObject({
  metadata: metadata(subdomain),
  spec: z.looseObject({ controller: z.string().optional(), parameters: z.looseObject({}).optional() }).optional(),
});

const service = z.looseObject({
  metadata: metadata(z.string().max(63).regex(DNS1035, 'a DNS-1035 label such as "web" (starts with a letter)')),
  spec: z
    .looseObject({
      type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).optional(),
      externalName: z.string().optional(),
      selector: stringMap('selector').optional(),
      ports: z
        .array(
          z.looseObject({
            name: z.string().optional(),
            port,
            targetPort: intOrName.optional(),
            protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
            appProtocol: z.string().optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});

const endpointSlice = z
  .looseObject({
    metadata: metadata(subdomain),
    addressType: z.enum(['IPv4', 'IPv6', 'FQDN'], { error: 'addressType IPv4, IPv6 or FQDN' }),
    endpoints: z
      .array(
        z.looseObject({
          addresses: z.array(z.string()).min(1, 'at least one address'),
          conditions: z.looseObject({ ready: z.boolean().optional(), serving: z.boolean().optional(), terminating: z.boolean().optional() }).optional(),
          hostname: z.string().optional(),
          nodeName: z.string().optional(),
          zone: z.string().optional(),
        }),
      )
      .nullish(),
    ports: z
      .array(
        z.looseObject({
          name: z.string().optional(),
          port: port.nullish(),
          protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
          appProtocol: z.string().optional(),
        }),
      )
      .nullish(),
  })
  .superRefine((slice, ctx) => {
    if (slice.addressType === 'FQDN') return;
    const family = slice.addressType === 'IPv4' ? 4 : 6;
    for (const [i, endpoint] of (slice.endpoints ?? []).entries()) {
      for (const [j, address] of endpoint.addresses.entries()) {
        if (isIP(address) !== family) {
          ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'addresses', j], message: `an ${slice.addressType} address (got "${address}")` });
        }
      }
    }
  });

const secret = z.looseObject({
  metadata: metadata(subdomain),
  type: z.string().optional(),
  data: z.record(z.string(), z.string().regex(BASE64, 'base64 text (use stringData for plain text)')).optional(),
  stringData: stringMap('stringData').optional(),
});

const configMap = z.looseObject({
  metadata: metadata(subdomain),
  data: stringMap('data').optional(),
  binaryData: z.record(z.string(), z.string().regex(BASE64, 'base64 text')).optional(),
});

const namespace = z.looseObject({ metadata: metadata(label) });

const withMetadata = (schema: z.ZodType) => z.intersection(z.looseObject({ metadata: metadata(subdomain) }), schema);

/** Structural schema per kind (apiVersion and kind are checked before these run). */
const KIND_SCHEMAS: Partial<Record<LocalKind, z.ZodType>> = {
  Ingress: ingress,
  IngressClass: ingressClass,
  Service: service,
  EndpointSlice: endpointSlice,
  Secret: secret,
  ConfigMap: configMap,
  Namespace: namespace,
};

/** The structural schema of `kind`; a Gateway API kind's is built on first use (see `gatewayKindSchema`). */
export function localKindSchema(kind: LocalKind): z.ZodType {
  let schema = KIND_SCHEMAS[kind];
  if (!schema) KIND_SCHEMAS[kind] = schema = withMetadata(gatewayKindSchema(kind as GatewayManifestKind));
  return schema;
}

/** `spec.rules[0].http.paths[1].path`-style rendering of an issue path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  return out || '(object)';
}
