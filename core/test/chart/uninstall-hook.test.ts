/**
 * The chart's uninstall hook (chart/templates/uninstall-hook.yaml): a pre-delete Job running `warren --uninstall`,
 * rendered exactly when the controller would delete a tunnel on uninstall, and running with what the Deployment
 * runs with (ServiceAccount, config file, credentials, security contexts).
 */
import test from 'ava';
import { parse as parseYaml } from 'yaml';
import { tunnelMode } from '../../src/cloudflare/tunnel-lifecycle.js';
import { parseConfig } from '../../src/config/load.js';
import { lint, render, template, type Container, type K8sObject } from './helm.js';

const API_TOKEN = 'uninstall-hook-api-token-0123456789';
const TUNNEL_TOKEN = 'eyJhIjoidW5pbnN0YWxsLWhvb2stdG9rZW4ifQ';
const managed = { apiToken: API_TOKEN, accountId: 'acct', tunnelName: 'prod' };
const apiTokenFromEnv = { name: 'CLOUDFLARE_API_TOKEN', valueFrom: { secretKeyRef: { name: 'cf', key: 'api' } } };

interface Job {
  metadata: K8sObject['metadata'];
  spec: {
    backoffLimit: number;
    activeDeadlineSeconds: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        restartPolicy: string;
        serviceAccountName: string;
        automountServiceAccountToken: boolean;
        enableServiceLinks: boolean;
        securityContext: Record<string, unknown>;
        containers: Container[];
        volumes: Array<{ name: string; [key: string]: unknown }>;
      };
    };
  };
}

/** Whether the controller, given the rendered config file and the pod's environment, would delete the tunnel. */
function controllerWouldDelete(configText: string, env: NodeJS.ProcessEnv): boolean {
  const config = parseConfig(parseYaml(configText));
  return tunnelMode(config, env) === 'managed' && config.cloudflare.deleteTunnelOnUninstall;
}

const cases: Array<[string, Record<string, unknown>, NodeJS.ProcessEnv, boolean]> = [
  ['management mode with deleteTunnelOnUninstall', { cloudflare: { ...managed, deleteTunnelOnUninstall: true } }, {}, true],
  ['management mode, tunnel kept (the default)', { cloudflare: managed }, {}, false],
  ['management mode, deleteTunnelOnUninstall false', { cloudflare: { ...managed, deleteTunnelOnUninstall: false } }, {}, false],
  ['token mode with deleteTunnelOnUninstall', { cloudflare: { tunnelToken: TUNNEL_TOKEN, deleteTunnelOnUninstall: true } }, {}, false],
  ['a tunnel token next to management settings (the token wins)', { cloudflare: { ...managed, tunnelToken: TUNNEL_TOKEN, deleteTunnelOnUninstall: true } }, {}, false],
  ['tunnel disabled', { tunnel: { enabled: false }, cloudflare: { ...managed, deleteTunnelOnUninstall: true } }, {}, false],
  [
    'an existing Secret holding the API token',
    { cloudflare: { accountId: 'acct', tunnelName: 'prod', deleteTunnelOnUninstall: true, secretRef: { name: 'cf', apiTokenKey: 'api' } } },
    {},
    true,
  ],
  [
    'the API token from extraEnv',
    { extraEnv: [apiTokenFromEnv], cloudflare: { accountId: 'acct', tunnelName: 'prod', deleteTunnelOnUninstall: true } },
    { CLOUDFLARE_API_TOKEN: 'from-env' },
    true,
  ],
];

for (const [name, values, env, expected] of cases) {
  test(`hook ${expected ? 'rendered' : 'absent'}: ${name}, exactly when the controller would delete the tunnel`, async (t) => {
    const out = await render(values);
    const jobs = out.objects.filter((o) => o.kind === 'Job');
    t.is(jobs.length, expected ? 1 : 0);
    t.is(controllerWouldDelete(out.configText(), env), expected, 'the chart and the controller agree on when a tunnel is deleted');
  });
}

test("the Job is a pre-delete hook that runs --uninstall with the Deployment's account, config, credentials and hardening", async (t) => {
  const out = await render({
    cloudflare: { ...managed, deleteTunnelOnUninstall: true },
    imagePullSecrets: [{ name: 'regcred' }],
    extraEnv: [{ name: 'WARREN_PROXY__RETRIES', value: '1' }],
    extraVolumes: [{ name: 'edge-ca', configMap: { name: 'edge-ca' } }],
    extraVolumeMounts: [{ name: 'edge-ca', mountPath: '/etc/warren/edge-ca', readOnly: true }],
    uninstall: { activeDeadlineSeconds: 120, backoffLimit: 0, resources: { limits: { memory: '200Mi' } } },
  });
  const job = out.get('Job') as unknown as Job;
  const deployment = out.deployment();
  const pod = deployment.spec.template.spec;
  const controller = pod.containers[0]!;
  const hook = job.spec.template.spec;
  const container = hook.containers[0]!;

  t.is(job.metadata.annotations?.['helm.sh/hook'], 'pre-delete');
  const policies = job.metadata.annotations?.['helm.sh/hook-delete-policy']?.split(',') ?? [];
  t.true(policies.includes('hook-succeeded'), 'a succeeded hook Job is removed');
  t.true(policies.includes('before-hook-creation'), 'a failed one is replaced by the next attempt');
  t.is(job.metadata.namespace, deployment.metadata.namespace);
  t.is(job.spec.activeDeadlineSeconds, 120);
  t.is(job.spec.backoffLimit, 0);
  t.like(container.resources, { limits: { memory: '200Mi' } });

  t.is(hook.restartPolicy, 'Never');
  t.is(hook.serviceAccountName, pod.serviceAccountName);
  t.true(hook.automountServiceAccountToken);
  t.false(hook.enableServiceLinks);
  t.deepEqual(hook.securityContext, pod.securityContext);
  t.deepEqual(container.securityContext, controller.securityContext);
  t.is(container.image, controller.image);
  t.deepEqual((hook as unknown as { imagePullSecrets: unknown }).imagePullSecrets, [{ name: 'regcred' }]);

  // Same config file and credentials as the controller, plus --uninstall.
  t.deepEqual(container.args, [...controller.args!, '--uninstall']);
  // The same environment, except the heap limit, which follows the Job's own memory limit (200Mi here).
  const withoutHeap = (env: typeof container.env) => env?.filter((e) => e.name !== 'NODE_OPTIONS');
  t.deepEqual(withoutHeap(container.env), withoutHeap(controller.env));
  t.deepEqual(
    container.env?.find((e) => e.name === 'NODE_OPTIONS'),
    { name: 'NODE_OPTIONS', value: '--max-old-space-size=100' },
  );
  t.deepEqual(
    controller.env?.find((e) => e.name === 'NODE_OPTIONS'),
    { name: 'NODE_OPTIONS', value: '--max-old-space-size=256' },
  );
  t.deepEqual(container.volumeMounts, controller.volumeMounts);
  t.deepEqual(hook.volumes, pod.volumes);
  const credentials = hook.volumes.find((v) => v.name === 'credentials') as { secret: { secretName: string } } | undefined;
  t.is(credentials?.secret.secretName, out.get('Secret').metadata.name);
  t.truthy(hook.volumes.find((v) => v.name === 'config'));
  t.false(JSON.stringify(job).includes(API_TOKEN), 'the API token stays in the Secret');

  // The hook pod is never selected by the controller's Service or PodDisruptionBudget.
  const labels = job.spec.template.metadata.labels;
  for (const kind of ['Service', 'PodDisruptionBudget']) {
    const spec = out.get(kind).spec as { selector: Record<string, string> & { matchLabels?: Record<string, string> } };
    const selector = spec.selector.matchLabels ?? spec.selector;
    t.false(
      Object.entries(selector).every(([k, v]) => labels[k] === v),
      `the ${kind} selects the hook pod`,
    );
  }
  t.is(labels['app.kubernetes.io/instance'], 'warren');
  t.is(labels['app.kubernetes.io/component'], 'uninstall');
});

test('helm lint --strict passes with the hook on', async (t) => {
  const result = await lint({ cloudflare: { ...managed, deleteTunnelOnUninstall: true } });
  t.is(result.code, 0, result.stdout + result.stderr);
});

test("the hook's values are checked by the schema", async (t) => {
  for (const [values, message] of [
    [{ uninstall: { backoffLimit: -1 } }, /\/uninstall\/backoffLimit/],
    [{ uninstall: { activeDeadlineSeconds: 0 } }, /\/uninstall\/activeDeadlineSeconds/],
    [{ uninstall: { enabled: true } }, /\/uninstall.*'enabled' not allowed/],
  ] as const) {
    const result = await template({ cloudflare: { ...managed, deleteTunnelOnUninstall: true }, ...values });
    t.not(result.code, 0, JSON.stringify(values));
    t.regex(result.stderr, message);
  }
});
