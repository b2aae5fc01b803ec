import { z } from 'zod';
import { DURATION_HINT, DURATION_PATTERN, parseDuration } from '../config/duration.js';
import { defineAnnotation, type AnnotationSpec } from '../plugin-api/manifest.js';

/**
 * The `warren.dev/*` annotations core itself owns (their keys are `CORE_ANNOTATION_KEYS` in
 * `plugins/registry.ts`, so no plugin can claim them). Each applies to every route of the Ingress that carries
 * it; the parsed value lands in `Route.annotations[key]`.
 */

/** Parsed value of `backend-protocol` that asks the builder to infer the protocol from the Service port. */
export const AUTO_PROTOCOL = 'auto';

/**
 * `backend-protocol` values core knows itself (`AUTO_HTTP` means `AUTO`; it is accepted so that
 * Ingresses written for other controllers keep working). Every other value
 * is a protocol some plugin manifest lists (`PluginManifest.protocols`); `RoutingPlugins` refuses the rest.
 */
export const CORE_PROTOCOL_VALUES = ['HTTP', 'AUTO', 'AUTO_HTTP'] as const;

// Built from zod's own steps (trim, toLowerCase, regex) rather than free-form transforms, so that the chart's
// admission policy can check the same rules in CEL (core/src/docgen/admission-policy.ts). Which protocols exist is
// the enabled plugins' business: `RoutingPlugins` narrows this to them.
const backendProtocol = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9_.+-]{0,62}$/, 'a protocol name such as HTTP or AUTO (case-insensitive)')
  .transform((v) => (v === 'auto_http' ? AUTO_PROTOCOL : v));

/** A host name (lower-case DNS name, or an IP literal) with an optional port, as sent in the upstream Host header. */
const upstreamHost = z
  .string()
  .trim()
  .max(261)
  .regex(
    /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/,
    'a host name with an optional port, such as "app.internal" or "app.internal:8080"',
  )
  .refine((v) => {
    const port = /:(\d{1,5})$/.exec(v);
    return !port || (Number(port[1]) >= 1 && Number(port[1]) <= 65535);
  }, 'a port between 1 and 65535');

const DAY = 86_400_000;
const timeout = () =>
  z
    .string()
    .trim()
    .regex(DURATION_PATTERN, DURATION_HINT)
    .transform((v) => parseDuration(v)!)
    .refine((ms) => ms > 0 && ms <= DAY, 'a duration above 0 and at most 24h');

/** `warren.dev/<key>` annotations core owns; read them with `.get(route)`. */
export const BACKEND_PROTOCOL = defineAnnotation({
  key: 'backend-protocol',
  description:
    'Protocol spoken to the upstream: HTTP, a protocol an enabled plugin serves (listed under Backend protocols in docs/annotations.md), or AUTO to infer it from the Service port (appProtocol, port name, port 443).',
  schema: backendProtocol,
  example: 'AUTO',
});

export const UPSTREAM_HOST = defineAnnotation({
  key: 'upstream-host',
  description: "Host header sent to the upstream instead of the client's.",
  schema: upstreamHost,
  example: 'app.internal',
});

export const CONNECT_TIMEOUT = defineAnnotation({
  key: 'connect-timeout',
  description: 'Upstream connect timeout for these routes (overrides proxy.connectTimeout).',
  schema: timeout(),
  example: '5s',
});

export const RESPONSE_HEADER_TIMEOUT = defineAnnotation({
  key: 'response-header-timeout',
  description: 'Time to wait for the upstream response head (overrides proxy.responseHeaderTimeout).',
  schema: timeout(),
  example: '60s',
});

export const IDLE_TIMEOUT = defineAnnotation({
  key: 'idle-timeout',
  description: 'Idle time after which an exchange is closed (overrides proxy.idleTimeout); raise it for WebSockets.',
  schema: timeout(),
  example: '1h',
});

export const REQUEST_BODY_TIMEOUT = defineAnnotation({
  key: 'request-body-timeout',
  description: 'Longest wait for the next bytes of a request body while the upstream is ready to read them (overrides proxy.requestBodyTimeout); a stall answers 408.',
  schema: timeout(),
  example: '30s',
});

export const UPSTREAM_QUEUE_TIMEOUT = defineAnnotation({
  key: 'upstream-queue-timeout',
  description: 'Longest wait for a free connection to the chosen endpoint (overrides proxy.upstreamQueueTimeout); then 503 with Retry-After.',
  schema: timeout(),
  example: '5s',
});

export const LOAD_BALANCING = defineAnnotation({
  key: 'load-balancing',
  description: 'Endpoint choice for these routes: least-request or round-robin (overrides proxy.loadBalancing).',
  schema: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['least-request', 'round-robin'], { error: 'least-request or round-robin' })),
  example: 'round-robin',
});

/** Core's annotation specs, in documentation order. */
export const CORE_ANNOTATIONS: readonly AnnotationSpec[] = Object.freeze([
  BACKEND_PROTOCOL,
  UPSTREAM_HOST,
  CONNECT_TIMEOUT,
  RESPONSE_HEADER_TIMEOUT,
  IDLE_TIMEOUT,
  REQUEST_BODY_TIMEOUT,
  UPSTREAM_QUEUE_TIMEOUT,
  LOAD_BALANCING,
]);
