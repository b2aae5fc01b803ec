import type { EventEmitter } from 'node:events';

/**
 * A stream that has emitted 'close' hears nothing more, so it lets go of its listeners: they are closures over the
 * exchange that used it (pipeline, upstream request, response parsing), and a finished stream is often still
 * reachable for a while (the young generation keeps what any not-yet-collected object points at, and Node's
 * Writable holds a closure over its stream). Kept, they carried every finished exchange into the old generation:
 * ~5 KB per request, a mark-compact every second at 10,000 requests/s (docs/benchmarks.md, "What a finished
 * request leaves in the old generation"). A no-op 'error' listener stays, so a late error cannot become an
 * uncaught exception. Call it once the stream's 'close' listeners have all run (on the next tick after 'close').
 */
export function releaseListeners(stream: EventEmitter): void {
  stream.removeAllListeners();
  stream.on('error', ignoreLateError);
}

function ignoreLateError(): void {
  // After 'close' nothing reads a stream's errors; see releaseListeners.
}
