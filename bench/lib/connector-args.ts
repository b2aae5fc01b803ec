import type * as Schema from '../../core/src/config/schema.js';

/** The command-line options of every bench connector process (what the tunnel bench's `--connector` passes). */
export const CONNECTOR_OPTIONS = {
  edge: { type: 'string', multiple: true },
  ca: { type: 'string' },
  'token-file': { type: 'string' },
  origin: { type: 'string' },
  ha: { type: 'string', default: '4' },
} as const;

/** Those options as parsed. */
export interface ConnectorArgs {
  readonly edge?: string[] | undefined;
  readonly ca?: string | undefined;
  readonly 'token-file'?: string | undefined;
  readonly ha?: string | undefined;
}

/**
 * The connector's settings for the parsed options: `ha` connections spread over the edge addresses given. The
 * schema comes from the caller, which may load Warren from another build.
 */
export function connectorConfig(tunnelSchema: typeof Schema.tunnelSchema, values: ConnectorArgs) {
  const ha = Number(values.ha ?? '4');
  const edges = values.edge ?? [];
  return {
    tunnel: tunnelSchema.parse({
      edgeAddresses: Array.from({ length: ha }, (_, i) => edges[i % edges.length]),
      edgeCaFile: values.ca,
      tokenFile: values['token-file'],
      haConnections: ha,
    }),
    shutdownGracePeriod: 5000,
  };
}
