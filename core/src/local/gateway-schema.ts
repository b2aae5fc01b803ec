import { z } from 'zod';

/**
 * Structural checks for the Gateway API objects a folder may hold, with the shapes the CRDs of the standard
 * channel (v1.6) require: the types of the fields Warren reads, and the fields the CRD marks required. In a
 * cluster the API server refuses an object that breaks its CRD schema and keeps every other object of the same
 * `kubectl apply`; folder mode does the same, per object (see `manifest-parser.ts`). Routing rules beyond shape
 * (a listener conflict, a parentRef naming nothing, a Service that does not exist) are not checked here: the route
 * translation and the Gateway analysis report those, as in a cluster.
 */

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECTION = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The Gateway API kinds a folder may hold, with the apiVersions accepted for each (the standard channel's). */
export const GATEWAY_MANIFEST_KINDS = {
  GatewayClass: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  Gateway: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  HTTPRoute: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  GRPCRoute: ['gateway.networking.k8s.io/v1'],
  ReferenceGrant: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  BackendTLSPolicy: ['gateway.networking.k8s.io/v1'],
} as const;
export type GatewayManifestKind = keyof typeof GATEWAY_MANIFEST_KINDS;

/**
 * Builds the schemas: only when a folder holds a Gateway API object, so folder mode without one (and every start)
 * does not pay for them.
 */
function buildSchemas(): Readonly<Record<GatewayManifestKind, z.ZodType>> {
  const name = z.string().min(1).max(253).regex(NAME, 'a lower-case DNS subdomain such as "edge" or "web.v1"');
  const sectionName = z.string().min(1).max(253).regex(SECTION, 'a lower-case DNS label such as "web"');
  const port = z.number({ error: 'a port number' }).int().min(1).max(65535);
  const group = z.string().max(253);
  const kind = z.string().min(1).max(63);
  const str = z.string();
  const array = <T extends z.ZodType>(item: T, max: number) => z.array(item).max(max);

  const parentRef = z.looseObject({
    group: group.optional(),
    kind: kind.optional(),
    namespace: str.optional(),
    name,
    sectionName: sectionName.optional(),
    port: port.optional(),
  });
  const headerModifier = z.looseObject({
    set: array(z.looseObject({ name: str.min(1), value: str }), 16).optional(),
    add: array(z.looseObject({ name: str.min(1), value: str }), 16).optional(),
    remove: array(str, 16).optional(),
  });
  const pathModifier = z.looseObject({ type: str, replaceFullPath: str.optional(), replacePrefixMatch: str.optional() });
  const filter = z.looseObject({
    type: str.min(1),
    requestHeaderModifier: headerModifier.optional(),
    responseHeaderModifier: headerModifier.optional(),
    requestRedirect: z
      .looseObject({
        scheme: str.optional(),
        hostname: str.optional(),
        path: pathModifier.optional(),
        port: port.optional(),
        statusCode: z.number().int().optional(),
      })
      .optional(),
    urlRewrite: z.looseObject({ hostname: str.optional(), path: pathModifier.optional() }).optional(),
  });
  const filters = array(filter, 16);
  const backendRef = z.looseObject({
    group: group.optional(),
    kind: kind.optional(),
    name,
    namespace: str.optional(),
    port: port.optional(),
    weight: z.number({ error: 'a whole number from 0 to 1000000' }).int().min(0).max(1_000_000).optional(),
    filters: filters.optional(),
  });
  const valueMatch = z.looseObject({ type: str.optional(), name: str.min(1), value: str });
  const routeSpec = <R extends z.ZodType>(rule: R) =>
    z.looseObject({
      parentRefs: array(parentRef, 32).optional(),
      hostnames: array(str, 16).optional(),
      rules: array(rule, 16).optional(),
    });

  const httpRoute = z.looseObject({
    spec: routeSpec(
      z.looseObject({
        name: sectionName.optional(),
        matches: array(
          z.looseObject({
            path: z.looseObject({ type: str.optional(), value: str.optional() }).optional(),
            headers: array(valueMatch, 16).optional(),
            queryParams: array(valueMatch, 16).optional(),
            method: str.optional(),
          }),
          64,
        ).optional(),
        filters: filters.optional(),
        backendRefs: array(backendRef, 16).optional(),
        timeouts: z.looseObject({ request: str.optional(), backendRequest: str.optional() }).optional(),
      }),
    ),
  });

  const grpcRoute = z.looseObject({
    spec: routeSpec(
      z.looseObject({
        name: sectionName.optional(),
        matches: array(
          z.looseObject({
            method: z.looseObject({ type: str.optional(), service: str.optional(), method: str.optional() }).optional(),
            headers: array(valueMatch, 16).optional(),
          }),
          64,
        ).optional(),
        filters: filters.optional(),
        backendRefs: array(backendRef, 16).optional(),
      }),
    ),
  });

  const gatewayClass = z.looseObject({
    spec: z.looseObject({ controllerName: str.min(1, 'the controller, e.g. warren.dev/gateway-controller'), parametersRef: z.looseObject({}).optional() }),
  });

  const listener = z.looseObject({
    name: sectionName,
    hostname: str.optional(),
    port,
    protocol: str.min(1),
    tls: z
      .looseObject({
        mode: str.optional(),
        certificateRefs: array(z.looseObject({ group: group.optional(), kind: kind.optional(), name, namespace: str.optional() }), 64).optional(),
      })
      .optional(),
    allowedRoutes: z
      .looseObject({
        namespaces: z.looseObject({ from: str.optional(), selector: z.looseObject({}).optional() }).optional(),
        kinds: array(z.looseObject({ group: group.optional(), kind }), 8).optional(),
      })
      .optional(),
  });

  const gateway = z.looseObject({
    spec: z.looseObject({
      gatewayClassName: name,
      listeners: array(listener, 64).min(1, 'at least one listener'),
      addresses: array(z.looseObject({}), 16).optional(),
    }),
  });

  const referenceGrant = z.looseObject({
    spec: z.looseObject({
      from: array(z.looseObject({ group, kind, namespace: str.min(1) }), 16).min(1),
      to: array(z.looseObject({ group, kind, name: name.optional() }), 16).min(1),
    }),
  });

  const backendTLSPolicy = z.looseObject({
    spec: z.looseObject({
      targetRefs: array(z.looseObject({ group, kind, name, sectionName: sectionName.optional() }), 16).min(1),
      validation: z.looseObject({
        hostname: str.min(1),
        wellKnownCACertificates: str.optional(),
        caCertificateRefs: array(z.looseObject({ group, kind, name }), 8).optional(),
        subjectAltNames: array(z.looseObject({ type: str, hostname: str.optional(), uri: str.optional() }), 5).optional(),
      }),
    }),
  });
  return {
    GatewayClass: gatewayClass,
    Gateway: gateway,
    HTTPRoute: httpRoute,
    GRPCRoute: grpcRoute,
    ReferenceGrant: referenceGrant,
    BackendTLSPolicy: backendTLSPolicy,
  };
}

let schemas: Readonly<Record<GatewayManifestKind, z.ZodType>> | undefined;

/** Structural schema of a Gateway API kind (metadata is checked by the caller). */
export function gatewayKindSchema(kind: GatewayManifestKind): z.ZodType {
  schemas ??= buildSchemas();
  return schemas[kind];
}
