import { ErrorCode } from './h2/frames.js';
import type { H2Stream } from './h2/stream.js';
import { HEADER_RESPONSE_META, META_CLOUDFLARED } from './protocol.js';

/**
 * `update-configuration` streams: the edge pushes remote configuration
 * `{"version": <int32>, "config": {…}}` and expects `200` with `{"lastAppliedVersion":N,"err":null}`.
 * Warren routes from Ingress objects, so it acknowledges these pushes but never applies them: the
 * acknowledged version advances with every push, so the edge does not keep re-sending.
 */

/** Largest configuration body accepted; bigger pushes are answered 502 like unparsable ones. */
const MAX_CONFIGURATION_BYTES = 4 * 1024 * 1024;

/** Remembers the last acknowledged version across all connections of one connector. */
export class ConfigurationVersions {
  #last = -1;

  get lastAcknowledged(): number {
    return this.#last;
  }

  /** Records a push; returns the version to report (only a newer version replaces the one applied). */
  acknowledge(version: number): number {
    if (version > this.#last) this.#last = version;
    return this.#last;
  }
}

export interface ConfigurationUpdate {
  readonly version: number;
  readonly config: unknown;
}

/** Parses a push body; undefined when it is not the expected JSON shape. */
export function parseConfigurationUpdate(body: Buffer): ConfigurationUpdate | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const { version, config } = parsed as { version?: unknown; config?: unknown };
  if (typeof version !== 'number' || !Number.isInteger(version) || version < -2147483648 || version > 2147483647) return undefined;
  return { version, config };
}

/**
 * Serves one configuration stream: reads the body (bounded), answers 200 with the acknowledgement, or
 * 502 `{"src":"cloudflared"}` for a body that is not valid JSON of the expected shape. Never throws.
 */
export function serveConfigurationUpdate(stream: H2Stream, versions: ConfigurationVersions, onUpdate: (update: ConfigurationUpdate | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  stream.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_CONFIGURATION_BYTES) tooBig = true;
    else chunks.push(chunk);
  });
  stream.once('end', () => {
    if (stream.destroyed) return;
    const update = tooBig ? undefined : parseConfigurationUpdate(Buffer.concat(chunks));
    onUpdate(update);
    try {
      if (!update) {
        stream.respond([':status', '502', HEADER_RESPONSE_META, META_CLOUDFLARED], { endStream: true });
        return;
      }
      const applied = versions.acknowledge(update.version);
      stream.respond([':status', '200']);
      stream.end(`{"lastAppliedVersion":${applied},"err":null}`);
    } catch {
      stream.close(ErrorCode.INTERNAL_ERROR);
    }
  });
}
