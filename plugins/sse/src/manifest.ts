import { durationAnnotation, defineAnnotation, defineManifest, duration, parseDuration, type PluginConfig } from '@warren/core/plugin';
import { z } from 'zod';

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Config under `plugins.sse`. */
const configSchema = z
  .object({
    heartbeat: z
      .union([z.string(), z.number()])
      .transform((v, ctx) => {
        const ms = parseDuration(v);
        if (ms === undefined || ms > HOUR) ctx.addIssue({ code: 'custom', message: 'a duration such as "30s" (0 turns heartbeats off), at most 1h' });
        return ms ?? 0;
      })
      .default(0)
      .describe('Send a comment line (": keep-alive") after this much silence on an event stream; 0 = off'),
    idleTimeout: duration()
      .refine((ms) => ms > 0 && ms <= DAY, 'a duration above 0 and at most 24h')
      .default(300_000)
      .describe('An event stream on which the upstream sent nothing (no event, no comment) for this long is ended; heartbeats Warren inserts do not count'),
  })
  .strict();

/** `warren.dev/sse-heartbeat` (values apply to every route of the Ingress). */
export const SSE_HEARTBEAT = defineAnnotation({
  key: 'sse-heartbeat',
  description: 'Comment heartbeat on event streams of these routes after this much silence; "0s" turns it off (overrides plugins.sse.heartbeat).',
  schema: durationAnnotation({ example: '15s', max: '1h', zeroIsOff: true }),
  example: '15s',
});

/** `warren.dev/sse-idle-timeout`. */
export const SSE_IDLE_TIMEOUT = defineAnnotation({
  key: 'sse-idle-timeout',
  description: 'An event stream of these routes on which the upstream sent nothing for this long is ended (overrides plugins.sse.idleTimeout).',
  schema: durationAnnotation({ example: '10m', max: '24h' }),
  example: '10m',
});

/**
 * Server-sent events: a `text/event-stream` response is passed on chunk by chunk as it arrives (never
 * buffered), has a stream idle timeout of its own instead of the route's idle timeout (only the upstream's bytes
 * reset it), and optionally gets a comment heartbeat between
 * events so that intermediaries keep quiet streams open. Engages per response; needs no annotation.
 */
export const manifest = defineManifest({
  id: 'upstream.sse',
  name: 'sse',
  description: 'Server-sent events flushed event by event, with a stream idle timeout of their own.',
  coreRange: '^0.1.0',
  kind: 'protocol',
  order: 30,
  enabledByDefault: true,
  annotations: [SSE_HEARTBEAT, SSE_IDLE_TIMEOUT],
  configSchema,
});

export type SseConfig = PluginConfig<typeof manifest>;
