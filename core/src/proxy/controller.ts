import type { IncomingHttpHeaders } from 'node:http2';
import type { Dispatcher } from 'undici';

/**
 * An undici-style dispatch controller for requests core runs itself (waiting in an admission queue, HTTP/2 streams):
 * the first `abort` records its reason and calls `onAbort`; pause and resume only set the flag unless a subclass
 * acts on them.
 */
export class RequestController implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  rawHeaders: IncomingHttpHeaders | null = null;
  rawTrailers: IncomingHttpHeaders | null = null;

  constructor(private readonly onAbort: (reason: Error) => void) {}

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.onAbort(reason);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }
}
