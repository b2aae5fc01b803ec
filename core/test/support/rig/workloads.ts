/**
 * Builders for workloads on the rig: a Deployment of Warren's demo origin and the Service that selects it.
 */
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import { DEMO_ORIGIN_IMAGE } from './images.js';

/** The demo origin's HTTP port and health port inside each pod. */
export const DEMO_HTTP_PORT = 8080;
export const DEMO_HEALTH_PORT = 8081;

export interface DemoDeploymentOptions {
  readonly replicas?: number;
  /** The `service` name the pods report (DEMO_SERVICE); changing it rolls the Deployment. Default `v1`. */
  readonly version?: string;
  /** Report the pod's name as `service` instead (DEMO_SERVICE from the downward API), to tell pods apart. */
  readonly reportPodName?: boolean;
  /** preStop sleep seconds; none when undefined. */
  readonly preStopSeconds?: number;
  readonly terminationGracePeriodSeconds?: number;
  /** Readiness probe on the health port every second (default true). */
  readonly readinessProbe?: boolean;
  readonly maxSurge?: number | string;
  readonly maxUnavailable?: number | string;
  readonly image?: string;
}

export function demoDeployment(namespace: string, name: string, options: DemoDeploymentOptions = {}): V1Deployment {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas: options.replicas ?? 2,
      selector: { matchLabels: labels },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: options.maxSurge ?? 1, maxUnavailable: options.maxUnavailable ?? 0 } },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: options.terminationGracePeriodSeconds ?? 30,
          containers: [
            {
              name: 'origin',
              image: options.image ?? `${DEMO_ORIGIN_IMAGE}:1`,
              env: [
                options.reportPodName
                  ? { name: 'DEMO_SERVICE', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }
                  : { name: 'DEMO_SERVICE', value: options.version ?? 'v1' },
              ],
              ports: [
                { name: 'http', containerPort: DEMO_HTTP_PORT },
                { name: 'health', containerPort: DEMO_HEALTH_PORT },
              ],
              ...(options.readinessProbe === false
                ? {}
                : { readinessProbe: { httpGet: { path: '/ready', port: 'health' }, periodSeconds: 1, failureThreshold: 1, successThreshold: 1, timeoutSeconds: 1 } }),
              ...(options.preStopSeconds === undefined ? {} : { lifecycle: { preStop: { sleep: { seconds: options.preStopSeconds } } } }),
            },
          ],
        },
      },
    },
  };
}

/** A ClusterIP Service selecting the Deployment's pods: port 80 → the demo origin's port. */
export function demoService(namespace: string, name: string): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  };
}
