import { z } from 'zod';
import { duration } from './duration.js';
import { PARSED_ONCE } from './parse-once.js';

/**
 * The single source of truth for Warren's settings. Defaults live here and nowhere else; parsing is strict
 * (an unknown key is an error naming it) and the parsed result is deep-frozen by `loadConfig`.
 *
 * The same schema generates `chart/values.schema.json` and `docs/configuration.md` (`npm run generate`);
 * tests fail when either is stale.
 *
 * Secrets never appear here: the tunnel token and the Cloudflare API token come from files or environment
 * variables that a Kubernetes Secret provides, and the settings only name those files or variables.
 *
 * Each plugin owns `plugins.<name>`; core checks only `enabled` there and hands the subtree to the plugin's
 * own strict schema (see `plugin-api/manifest.ts`).
 */

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/]+):\d{1,5}$/, 'host:port such as "127.0.0.1:7844" or "[::1]:7844"');

const listenAddress = hostPort.describe('Address to listen on, host:port');

export const ingressClassSchema = z
  .object({
    name: z.string().min(1).default('cloudflare-tunnel').describe('IngressClass name that selects Warren'),
    controller: z.string().min(1).default('warren.dev/ingress-controller').describe('IngressClass spec.controller value that Warren owns'),
    watchWithoutClass: z.boolean().default(false).describe('Also take Ingresses that name no class at all (and no default class exists)'),
  })
  .strict();

export const leaderElectionSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Elect a leader through a coordination.k8s.io Lease'),
    leaseName: z.string().min(1).default('warren-leader').describe('Lease object name'),
    leaseNamespace: z.string().optional().describe('Lease namespace; defaults to the pod namespace (POD_NAMESPACE) or "default"'),
    leaseDuration: duration().default(15_000).describe('How long a lease is valid without renewal'),
    renewDeadline: duration().default(10_000).describe('How long the leader keeps retrying renewal before it steps down'),
    retryPeriod: duration().default(2_000).describe('Interval between acquire and renew attempts'),
  })
  .strict();

export const kubernetesSchema = z
  .object({
    kubeconfig: z.string().optional().describe('Path of a kubeconfig file; default: in-cluster service account, then $KUBECONFIG, then ~/.kube/config'),
    namespaces: z.array(z.string().min(1)).default([]).describe('Watch only these namespaces (empty: all namespaces)'),
    leaderElection: leaderElectionSchema.default(leaderElectionSchema.parse({}, PARSED_ONCE)),
    publishHostname: z.string().optional().describe('Hostname written to Ingress status instead of <tunnel-id>.cfargotunnel.com'),
    resyncBurstWindow: duration().default(50).describe('How long the work queue waits to coalesce a burst of changes into one route-table build'),
  })
  .strict();

export const gatewaySchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        'Serve the Gateway API (GatewayClasses with controllerName warren.dev/gateway-controller) when its CRDs are installed; checked at start and every minute after while missing',
      ),
    publishAddress: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Address written to every Gateway's status instead of its tunnel's <tunnel-id>.cfargotunnel.com: an IP address (type IPAddress) or a hostname (type Hostname)",
      ),
    maxTunnels: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(32)
      .describe(
        'Managed tunnel: most Gateways that get a tunnel of their own (each replica runs tunnel.haConnections connections per Gateway tunnel); further Gateways, newest first, stay unprogrammed with a Warning',
      ),
  })
  .strict();

const sourceSchema = z
  .object({
    kind: z
      .enum(['kubernetes', 'folder'])
      .default('kubernetes')
      .describe('Where Ingress, Service and EndpointSlice objects come from: the cluster, or YAML files in a folder'),
    folder: z.string().optional().describe('Folder of YAML manifests when kind is "folder" (watched for changes)'),
  })
  .strict();

/**
 * `tunnel.features` default: what Warren's connector speaks (`serialized_headers`) plus the two QUIC features
 * every other connector sends, so the edge sees the set it is used to.
 */
export const DEFAULT_TUNNEL_FEATURES = ['serialized_headers', 'support_datagram_v2', 'support_quic_eof'] as const;

export const tunnelSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Run the in-process Cloudflare Tunnel connector'),
    tokenFile: z.string().optional().describe('File holding a tunnel token (alternative: env TUNNEL_TOKEN)'),
    credentialsFile: z.string().optional().describe('File holding tunnel credentials JSON (AccountTag, TunnelSecret, TunnelID)'),
    haConnections: z.number().int().min(1).max(16).default(4).describe('Connections to the edge per replica'),
    region: z.string().optional().describe('Edge region prefix for SRV discovery, e.g. "us"'),
    edgeIpVersion: z.enum(['auto', '4', '6']).default('auto').describe('IP family preference for edge addresses'),
    edgeAddresses: z.array(hostPort).default([]).describe('Static edge addresses used instead of DNS discovery (tests, unusual networks)'),
    edgeCaFile: z.string().optional().describe('PEM bundle that replaces the trusted roots for the edge (tests, unusual networks)'),
    rpcTimeout: duration().default(15_000).describe('Timeout for a registration or unregistration RPC'),
    maxConcurrentStreams: z
      .number()
      .int()
      .min(1)
      .max(4_294_967_295)
      .default(1000)
      .describe(
        'HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS announced on each edge connection: requests one connection carries at once (the edge holds further ones). With a 1 MiB stream window this also bounds what one connection can buffer of unread request bodies (cloudflared announces 4294967295)',
      ),
    streamWindowBytes: z
      .number()
      .int()
      .min(65_535)
      .max(16_777_216)
      .default(1_048_576)
      .describe(
        'HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE announced on each edge connection while request bodies fit their budgets: how much of one upload may arrive before it is read (cloudflared: 1 MiB). Under pressure the window is halved, down to 16 KiB, on the connections concerned',
      ),
    requestBodyBufferBytes: z
      .number()
      .int()
      .min(1_048_576)
      .default(16_777_216)
      .describe(
        'Request-body bytes one edge connection may hold unread (received, or allowed by the stream windows of bodies nobody reads yet). Past it the connection lowers its stream window; when even 16 KiB per unread body does not fit, new uploads on it are answered 503 with Retry-After',
      ),
    requestBodyBufferTotalBytes: z.number().int().min(1_048_576).default(33_554_432).describe('The same bound over every edge connection of the replica together'),
    clientVersion: z
      .string()
      .regex(/^[\x21-\x7e]{1,64}$/, 'must be 1-64 printable ASCII characters without spaces')
      .optional()
      .describe(
        'Version reported to the edge at registration (ClientInfo.version, listed with the connector in the dashboard and API); default "warren/<Warren version>" (cloudflared reports its calendar version, e.g. 2026.8.2)',
      ),
    features: z
      .array(z.string().regex(/^[a-z0-9_]{1,64}$/, 'must be a feature name (a-z, 0-9, _)'))
      .max(32)
      .default([...DEFAULT_TUNNEL_FEATURES])
      .refine((list) => list.includes('serialized_headers'), 'must include "serialized_headers", the only response-header format Warren speaks')
      .describe(
        'Features announced to the edge at registration (ClientInfo.features). Warren omits cloudflared\'s "allow_remote_config" (remote configuration is acknowledged, never applied) and "management_logs" (no management service)',
      ),
  })
  .strict();

/**
 * Client-side budget shared by every Cloudflare API call of one replica (tunnel lifecycle, DNS, firewall).
 * Cloudflare allows 1,200 requests per 5 minutes per user, counted over all of the user's tokens and the dashboard,
 * and blocks a user over it for 5 minutes; a token bucket holding `burst` requests and refilled at
 * `(requests - burst) / window` never exceeds `requests` in any window.
 */
const cloudflareRateLimitSchema = z
  .object({
    requests: z
      .number()
      .int()
      .min(2)
      .default(1200)
      .describe(
        'Most Cloudflare API requests in any window (Cloudflare allows 1,200 per 5 minutes per user, over all of its tokens: lower this when other tools act as the same user)',
      ),
    window: duration().default(300_000).describe('Length of the rate-limit window'),
    burst: z.number().int().min(1).default(100).describe('Requests that may be sent back to back before pacing starts'),
  })
  .strict();

export const cloudflareSchema = z
  .object({
    accountId: z.string().optional().describe('Cloudflare account id (tunnel management mode)'),
    tunnelName: z.string().optional().describe('Tunnel to find or create by name (tunnel management mode)'),
    apiTokenFile: z.string().optional().describe('File holding the API token (alternative: env CLOUDFLARE_API_TOKEN)'),
    apiBaseUrl: z.url().default('https://api.cloudflare.com/client/v4').describe('Cloudflare API base URL'),
    credentialsSecretName: z.string().default('warren-tunnel-credentials').describe("Secret (in the controller namespace) where a created tunnel's credentials are stored"),
    deleteTunnelOnUninstall: z.boolean().default(false).describe('Delete the tunnel when the controller is uninstalled (never by default)'),
    tunnelCheckInterval: duration()
      .pipe(z.number().min(1_000, 'at least 1s'))
      .default(5 * 60_000)
      .describe(
        'Managed tunnel: how often the leader checks that the tunnel still exists (replacing it if it was deleted); every replica re-reads the credentials Secret at this interval, at most every 30 s',
      ),
    rateLimit: cloudflareRateLimitSchema.default(cloudflareRateLimitSchema.parse({}, PARSED_ONCE)),
    requestTimeout: duration().default(30_000).describe('Timeout of one Cloudflare API request (retried on 429 and 5xx)'),
  })
  .strict();

const backendRefSchema = z
  .object({
    namespace: z.string().min(1),
    service: z.string().min(1),
    port: z.union([z.number().int().min(1).max(65535), z.string().min(1)]),
  })
  .strict();

export const proxySchema = z
  .object({
    connectTimeout: duration().default(30_000).describe('Upstream connect timeout (cloudflared origin default 30s)'),
    responseHeaderTimeout: duration().default(100_000).describe('Time to wait for the upstream response head (the edge gives up after about 100s)'),
    idleTimeout: duration().default(90_000).describe('Idle time after which an exchange or pooled connection is closed'),
    requestBodyTimeout: duration()
      .default(60_000)
      .describe('Longest wait for the next bytes of a request body the upstream is ready to read; a stall answers 408 (or resets a started response)'),
    requestBufferBytes: z
      .number()
      .int()
      .min(0)
      .max(1_048_576)
      .default(65_536)
      .describe(
        'Request bodies with a Content-Length up to this size are read whole before an upstream connection is taken, so a slow client holds no pool slot; 0 = always stream',
      ),
    upstreamQueueTimeout: duration().default(10_000).describe('Longest wait for a free connection (or HTTP/2 stream) to an endpoint; then 503 with Retry-After'),
    maxQueuedRequests: z
      .number()
      .int()
      .min(0)
      .max(100_000)
      .default(1_024)
      .describe('Requests that may wait for a connection to one endpoint; further ones get 503 with Retry-After at once'),
    uploadSlotShare: z
      .number()
      .min(0.05)
      .max(1)
      .default(0.5)
      .describe("Share of an endpoint's connections that requests still streaming their body from the client may hold; the rest stay free for other requests"),
    loadBalancing: z
      .enum(['least-request', 'round-robin'])
      .default('least-request')
      .describe('Endpoint choice: least outstanding requests with random tie-break, or round robin'),
    maxHeaderBytes: z.number().int().positive().default(65_536).describe('Largest request header block accepted (bytes); larger gets 431'),
    maxRequestHeaders: z.number().int().positive().default(256).describe('Most request header fields accepted'),
    preserveHost: z.boolean().default(true).describe('Send the client Host to the upstream'),
    paths: z
      .object({
        ambiguousEncodings: z
          .enum(['reject', 'keep'])
          .default('reject')
          .describe('Request paths with %2F, %5C, a raw backslash or a double-encoded dot or slash (%252E…): answer 400, or keep them as data'),
        mergeSlashes: z.boolean().default(true).describe('Merge runs of "/" in request paths before matching and forwarding'),
        maxLength: z.number().int().min(256).max(1_048_576).default(16_384).describe('Longest request target (path and query) accepted, in characters; longer gets 414'),
      })
      .strict()
      .default({ ambiguousEncodings: 'reject', mergeSlashes: true, maxLength: 16_384 })
      .describe('How request paths are canonicalised before routing (docs/proxy.md, Security model)'),
    defaultBackend: backendRefSchema.optional().describe('Controller-wide default backend for requests no Ingress matches'),
    retries: z.number().int().min(0).max(5).default(2).describe('Other endpoints tried after a connect failure (safe methods)'),
    errorDetails: z
      .boolean()
      .default(false)
      .describe(
        "Show the cause of a 502/503/504 (Service, namespace, upstream error) in Warren's error pages instead of a fixed sentence; for development only, never on a public hostname",
      ),
    accessLog: z
      .object({
        enabled: z.boolean().default(true),
        sampleRate: z.number().min(0).max(1).default(1).describe('Fraction of requests logged'),
      })
      .strict()
      .default({ enabled: true, sampleRate: 1 }),
    metrics: z
      .object({
        routeLabels: z
          .boolean()
          .default(false)
          .describe(
            "Label request metrics with the route's namespace, object kind and name (Ingress, HTTPRoute or GRPCRoute), Service and host (series per object and host, up to maxRouteLabelSets); off: one set of series for all traffic",
          ),
        maxRouteLabelSets: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(200)
          .describe('With routeLabels: most namespace/kind/object/Service/host combinations labelled; traffic of further ones is counted under the value "_other"'),
      })
      .strict()
      .default({ routeLabels: false, maxRouteLabelSets: 200 })
      .describe("Cardinality of the proxy's request metrics (docs/metrics.md)"),
  })
  .strict();

const serverSchema = z
  .object({
    listen: listenAddress.default('0.0.0.0:10254').describe('Health and metrics endpoint (/healthz, /readyz, /metrics, /debug/routes)'),
    debugRoutes: z
      .boolean()
      .default(true)
      .describe('Serve the read-only route table view GET /debug/routes on server.listen (hosts, Services, pod addresses; never Secret contents)'),
    proxyListen: listenAddress.optional().describe('Plain-HTTP entry point into the proxy pipeline (tests and local debugging; off by default)'),
  })
  .strict();

const localSchema = z
  .object({
    eyeballListen: listenAddress.default('127.0.0.1:8080').describe('Local mode: where the built-in edge simulator accepts client requests'),
  })
  .strict();

export const pluginToggleSchema = z
  .object({ enabled: z.boolean().describe('Register this plugin') })
  .catchall(z.unknown())
  .describe("Plugin settings: `enabled` plus the keys of the plugin's own schema");

export const extraPluginSchema = z
  .object({
    package: z.string().min(1).describe('npm package name whose default export is a Warren plugin module'),
    config: z.record(z.string(), z.unknown()).default({}).describe("Settings for the plugin's own schema"),
  })
  .strict();

export const configSchema = z
  .object({
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level'),
    ingressClass: ingressClassSchema.default(ingressClassSchema.parse({}, PARSED_ONCE)),
    source: sourceSchema.default(sourceSchema.parse({}, PARSED_ONCE)),
    kubernetes: kubernetesSchema.default(kubernetesSchema.parse({}, PARSED_ONCE)),
    gateway: gatewaySchema.default(gatewaySchema.parse({}, PARSED_ONCE)),
    tunnel: tunnelSchema.default(tunnelSchema.parse({}, PARSED_ONCE)),
    cloudflare: cloudflareSchema.default(cloudflareSchema.parse({}, PARSED_ONCE)),
    proxy: proxySchema.default(proxySchema.parse({}, PARSED_ONCE)),
    server: serverSchema.default(serverSchema.parse({}, PARSED_ONCE)),
    local: localSchema.default(localSchema.parse({}, PARSED_ONCE)),
    shutdownGracePeriod: duration().default(25_000).describe('How long in-flight requests may finish after SIGTERM'),
    plugins: z
      .record(z.string().regex(/^[a-z][a-z0-9-]*$/), pluginToggleSchema)
      .default({})
      .describe('Built-in plugin toggles and settings, keyed by plugin name'),
    extraPlugins: z.array(extraPluginSchema).default([]).describe('Custom plugin packages to load'),
  })
  .strict();

/** Config as written by a user (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** Config after parsing: defaults applied, durations in milliseconds. Deep-frozen at runtime. */
export type Config = z.output<typeof configSchema>;
