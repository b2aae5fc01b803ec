import { z } from 'zod';
import {
  cloudflareSchema,
  configSchema,
  extraPluginSchema,
  gatewaySchema,
  ingressClassSchema,
  kubernetesSchema,
  leaderElectionSchema,
  pluginToggleSchema,
  proxySchema,
  tunnelSchema,
} from '../config/schema.js';
import type { PluginModule } from '../plugin-api/module.js';
import { ADMISSION_POLICY_VALUES } from './admission-policy.js';
import { toInputJsonSchema, type JsonSchema } from './json-schema.js';

/**
 * How the Helm chart's values map onto controller settings. The chart templates (`chart/templates/_helpers.tpl`,
 * "warren.config") implement this table; the chart tests render values and check the resulting config file
 * against it, and `docs/configuration.md` shows it in its "Helm value" column.
 *
 * Each entry maps a settings path prefix either to a values path prefix, or to a note saying how the chart
 * fills the setting itself. The longest matching prefix wins.
 */
const CHART_MAPPING: ReadonlyArray<readonly [settingPrefix: string, chart: { values: string } | { note: string }]> = [
  ['logLevel', { values: 'logLevel' }],
  ['shutdownGracePeriod', { values: 'shutdownGracePeriod' }],
  ['ingressClass.name', { values: 'ingressClass.name' }],
  ['ingressClass.controller', { values: 'ingressClass.controllerValue' }],
  ['ingressClass.watchWithoutClass', { values: 'watchIngressWithoutClass' }],
  ['source', { note: 'always `kubernetes` in a cluster' }],
  ['kubernetes.kubeconfig', { note: 'not used: in-cluster ServiceAccount' }],
  ['kubernetes.leaderElection.leaseNamespace', { values: 'leaderElection.leaseNamespace' }],
  ['kubernetes.leaderElection', { values: 'leaderElection' }],
  ['kubernetes', { values: 'kubernetes' }],
  ['gateway', { values: 'gateway' }],
  ['tunnel.tokenFile', { note: 'set from `cloudflare.tunnelToken` or `cloudflare.secretRef.tunnelTokenKey`' }],
  ['tunnel.credentialsFile', { note: 'set from `cloudflare.tunnelCredentials` or `cloudflare.secretRef.credentialsKey`' }],
  ['tunnel', { values: 'tunnel' }],
  ['cloudflare.apiTokenFile', { note: 'set from `cloudflare.apiToken` or `cloudflare.secretRef.apiTokenKey`' }],
  ['cloudflare', { values: 'cloudflare' }],
  ['proxy', { values: 'proxy' }],
  ['server.listen', { note: 'from `metrics.address` and `metrics.port`' }],
  ['server.proxyListen', { note: 'not exposed (tests and local debugging)' }],
  ['local', { note: 'local mode only' }],
  ['plugins', { values: 'plugins' }],
  ['extraPlugins', { values: 'extraPlugins' }],
];

/** The Helm value that sets a controller setting, or a note on how the chart sets it. */
export function chartValueFor(settingPath: string): { values: string } | { note: string } {
  let best: (typeof CHART_MAPPING)[number] | undefined;
  for (const entry of CHART_MAPPING) {
    const [prefix] = entry;
    if ((settingPath === prefix || settingPath.startsWith(`${prefix}.`) || settingPath.startsWith(`${prefix}[`)) && (!best || prefix.length > best[0].length)) {
      best = entry;
    }
  }
  if (!best) return { note: 'not exposed' };
  const [prefix, target] = best;
  return 'values' in target ? { values: target.values + settingPath.slice(prefix.length) } : target;
}

const stringMap = z.record(z.string(), z.string());
/** A Kubernetes API object written verbatim into a manifest (the API server validates it). */
const kubeObject = z.record(z.string(), z.unknown());
const port = z.number().int().min(1).max(65535);
const intOrPercent = z.union([z.number().int().min(0), z.string().regex(/^\d{1,3}%$/)]);
const probeTiming = z
  .object({
    enabled: z.boolean().optional().describe('Render this probe (default true)'),
    initialDelaySeconds: z.number().int().min(0).optional(),
    periodSeconds: z.number().int().min(1).optional(),
    timeoutSeconds: z.number().int().min(1).optional(),
    failureThreshold: z.number().int().min(1).optional(),
    successThreshold: z.number().int().min(1).optional(),
  })
  .strict();

/** Settings schema of one built-in plugin as a values block: `enabled` plus the plugin's own keys. */
function pluginValuesSchema(module: PluginModule): z.ZodType {
  const enabled = z.boolean().describe(`Register plugin ${module.manifest.id}`);
  const own = module.manifest.configSchema as unknown as { extend?: (shape: Record<string, z.ZodType>) => z.ZodType };
  const block = typeof own.extend === 'function' ? own.extend({ enabled }) : pluginToggleSchema;
  return block.describe(module.manifest.description);
}

/**
 * The chart's values as a zod schema: chart-only keys (replicas, image, scheduling, Secrets, monitoring) next
 * to the controller sections taken from `config/schema.ts` itself, laid out as `CHART_MAPPING` says. Keys the
 * chart sets on its own (credential file paths, the source kind, the listen address) are left out, so a user
 * cannot set them by accident.
 */
function chartValuesSchema(plugins: readonly PluginModule[]): z.ZodType {
  const pluginBlocks: Record<string, z.ZodType> = {};
  for (const module of plugins) pluginBlocks[module.manifest.name] = pluginValuesSchema(module);
  return z
    .object({
      global: z.record(z.string(), z.unknown()).optional().describe('Values shared with parent charts (unused by Warren)'),
      nameOverride: z.string().describe('Replaces the chart name in object names'),
      fullnameOverride: z.string().describe('Replaces the full object name prefix'),
      commonLabels: stringMap.describe('Labels added to every rendered object'),
      replicaCount: z.number().int().min(0).describe('Controller replicas; each runs the tunnel connector'),
      image: z
        .object({
          repository: z.string().min(1),
          tag: z.string().describe('Empty: the chart appVersion'),
          digest: z.union([z.literal(''), z.string().regex(/^sha256:[a-f0-9]{64}$/)]).describe('sha256:...; wins over tag'),
          pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']),
        })
        .strict(),
      imagePullSecrets: z.array(z.object({ name: z.string().min(1) }).strict()),
      serviceAccount: z.object({ create: z.boolean(), name: z.string(), annotations: stringMap }).strict(),
      rbac: z.object({ create: z.boolean() }).strict(),
      updateStrategy: kubeObject.describe('Deployment spec.strategy'),
      podAnnotations: stringMap,
      podLabels: stringMap,
      podSecurityContext: kubeObject,
      securityContext: kubeObject,
      resources: kubeObject,
      oldSpaceLimitPercent: z
        .number()
        .int()
        .min(0)
        .max(90)
        .describe("V8's old-generation limit (NODE_OPTIONS=--max-old-space-size) as a percentage of resources.limits.memory; 0: Node's own"),
      nodeSelector: stringMap,
      tolerations: z.array(kubeObject),
      affinity: kubeObject,
      topologySpreadConstraints: z.array(kubeObject),
      priorityClassName: z.string(),
      terminationGracePeriodSeconds: z.number().int().min(0),
      extraEnv: z.array(z.object({ name: z.string().min(1) }).loose()).describe('Extra container environment variables'),
      envFrom: z.array(kubeObject).describe('Container envFrom sources (ConfigMaps, Secrets)'),
      extraArgs: z.array(z.string()).describe('Extra controller arguments, e.g. ["--log-level", "debug"]'),
      initContainers: z.array(z.object({ name: z.string().min(1) }).loose()).describe('Init containers of the pod'),
      extraContainers: z.array(z.object({ name: z.string().min(1) }).loose()).describe('Sidecar containers of the pod'),
      extraObjects: z.array(z.union([kubeObject, z.string()])).describe('Extra manifests (objects or template strings) rendered with the release'),
      minReadySeconds: z.number().int().min(0).describe('Deployment minReadySeconds'),
      autoscaling: z
        .object({
          enabled: z.boolean().describe('Render a HorizontalPodAutoscaler (replicaCount is then left to it)'),
          minReplicas: z.number().int().min(1),
          maxReplicas: z.number().int().min(1),
          targetCPUUtilizationPercentage: z.number().int().min(1).nullable().describe('Average CPU utilization target; null: none'),
          targetMemoryUtilizationPercentage: z.number().int().min(1).nullable().describe('Average memory utilization target; null: none'),
          behavior: kubeObject.describe('HPA spec.behavior'),
        })
        .strict(),
      networkPolicy: z
        .object({
          enabled: z.boolean().describe('Render a NetworkPolicy for the controller pods'),
          metricsFrom: z.array(kubeObject).describe('Peers allowed to reach the metrics port (empty: any)'),
          egress: z
            .object({
              enabled: z.boolean().describe('Also restrict egress (then list your backends in extra)'),
              extra: z.array(kubeObject).describe('Extra egress rules, e.g. to backend pods'),
            })
            .strict(),
        })
        .strict(),
      extraVolumes: z.array(z.object({ name: z.string().min(1) }).loose()),
      extraVolumeMounts: z.array(z.object({ name: z.string().min(1), mountPath: z.string().min(1) }).loose()),
      livenessProbe: probeTiming,
      readinessProbe: probeTiming,
      startupProbe: probeTiming,
      metrics: z
        .object({
          port: port.describe('Port of /healthz, /readyz and /metrics'),
          address: z
            .string()
            .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+)$/, 'an IPv4 address, host name or [IPv6] address')
            .describe('Listen address'),
        })
        .strict(),
      service: z.object({ type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']), annotations: stringMap, labels: stringMap }).strict(),
      serviceMonitor: z
        .object({
          create: z.boolean(),
          labels: stringMap,
          interval: z.string().min(1),
          scrapeTimeout: z.string().min(1),
          relabelings: z.array(kubeObject),
          metricRelabelings: z.array(kubeObject),
        })
        .strict(),
      prometheusRule: z
        .object({
          create: z.boolean().describe('Render a PrometheusRule with the alerts of docs/metrics.md (needs the monitoring.coreos.com CRDs)'),
          labels: stringMap,
          for: z.string().min(1).describe('How long a condition must hold before an alert fires'),
          errorRatio: z.number().min(0).max(1).describe('5xx share of requests that fires WarrenHighErrorRatio'),
          extraRules: z.array(kubeObject).describe('More rules in the same group'),
        })
        .strict(),
      grafanaDashboard: z
        .object({
          create: z.boolean().describe('Render the Grafana dashboard as a ConfigMap for the Grafana sidecar'),
          labels: stringMap.describe('Labels the sidecar selects on'),
          annotations: stringMap.describe('E.g. the sidecar folder annotation'),
          namespace: z.string().describe('Namespace of the ConfigMap (empty: the release namespace)'),
        })
        .strict(),
      podDisruptionBudget: z.object({ enabled: z.boolean(), maxUnavailable: intOrPercent.optional(), minAvailable: intOrPercent.optional() }).strict(),
      uninstall: z
        .object({
          activeDeadlineSeconds: z.number().int().min(1).describe('Seconds the pre-delete hook Job may run'),
          backoffLimit: z.number().int().min(0).describe('Retries of the hook Job after a failed attempt'),
          resources: kubeObject.describe('Resources of the hook Job container'),
        })
        .strict()
        .describe('Pre-delete hook Job running `warren --uninstall` (only with cloudflare.deleteTunnelOnUninstall in management mode)'),
      ingressClass: z
        .object({
          enabled: z.boolean().describe('Create the IngressClass object'),
          name: ingressClassSchema.shape.name,
          controllerValue: ingressClassSchema.shape.controller,
          isDefaultClass: z.boolean().describe('Mark the class as the cluster default'),
        })
        .strict(),
      watchIngressWithoutClass: ingressClassSchema.shape.watchWithoutClass,
      leaderElection: leaderElectionSchema,
      logLevel: configSchema.shape.logLevel,
      shutdownGracePeriod: configSchema.shape.shutdownGracePeriod,
      kubernetes: kubernetesSchema.omit({ kubeconfig: true, leaderElection: true }),
      gateway: gatewaySchema.extend({
        installCRDs: z.boolean().optional().describe('Install the Gateway API standard-channel CRDs (v1.6.3) with the chart; leave off when the cluster manages them'),
      }),
      tunnel: tunnelSchema.omit({ tokenFile: true, credentialsFile: true }),
      cloudflare: cloudflareSchema.omit({ apiTokenFile: true }).extend({
        tunnelToken: z.string().describe("Tunnel token, stored in the chart's Secret"),
        apiToken: z.string().describe("API token, stored in the chart's Secret"),
        tunnelCredentials: z.string().describe("Tunnel credentials JSON, stored in the chart's Secret"),
        secretRef: z
          .object({
            name: z.string().describe('Existing Secret in the release namespace (instead of the values above)'),
            tunnelTokenKey: z.string().describe('Key holding the tunnel token (empty: none)'),
            apiTokenKey: z.string().describe('Key holding the API token (empty: none)'),
            credentialsKey: z.string().describe('Key holding tunnel credentials JSON (empty: none)'),
          })
          .strict(),
      }),
      proxy: proxySchema,
      plugins: z.object(pluginBlocks).strict().describe('Built-in plugins: enabled plus their own settings'),
      extraPlugins: z.array(extraPluginSchema).describe('Custom plugin packages in a derived image'),
      admissionPolicy: ADMISSION_POLICY_VALUES,
    })
    .strict();
}

/**
 * `plugins.<name>.enabled: true` requires every plugin in its `dependsOn` to be enabled too, as draft-07
 * `if`/`then`: Helm refuses such values (with the dependency's path) instead of rendering a pod that crash-loops.
 */
function pluginDependencyRules(plugins: readonly PluginModule[]): JsonSchema[] {
  const nameOf = new Map(plugins.map((m) => [m.manifest.id, m.manifest.name]));
  const enabled = (name: string): JsonSchema => ({ properties: { [name]: { properties: { enabled: { const: true } }, required: ['enabled'] } }, required: [name] });
  const rules: JsonSchema[] = [];
  for (const module of plugins) {
    for (const dependency of module.manifest.dependsOn ?? []) {
      const needed = nameOf.get(dependency);
      if (!needed) continue;
      rules.push({
        description: `plugins.${module.manifest.name}.enabled needs plugins.${needed}.enabled (${module.manifest.id} depends on ${dependency})`,
        if: enabled(module.manifest.name),
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a thenable
        then: {
          properties: { [needed]: { properties: { enabled: { const: true, description: `needed by plugins.${module.manifest.name}` } }, required: ['enabled'] } },
          required: [needed],
        },
      });
    }
  }
  return rules;
}

/** `chart/values.schema.json`: the values schema as draft-07 JSON Schema, with a title. */
export function buildValuesJsonSchema(plugins: readonly PluginModule[]): JsonSchema {
  const schema = toInputJsonSchema(chartValuesSchema(plugins));
  const pluginsSchema = schema.properties?.plugins;
  const dependencies = pluginDependencyRules(plugins);
  if (pluginsSchema && dependencies.length) pluginsSchema.allOf = dependencies;
  return {
    $schema: schema.$schema,
    title: 'Warren Helm chart values',
    description: 'Generated by `npm run generate` from core/src/config/schema.ts and the built-in plugin schemas; do not edit.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}
