import { ForwardingHandler, type DispatchController, type ResponseHeaders } from '@warren/core/plugin';
import { isGrpcType } from './grpc-status.js';

/** Fields that carry a gRPC status. */
const STATUS_FIELDS = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'] as const;

/**
 * Passes a gRPC response on so that its status always reaches the client as trailers. The response announces
 * trailers (core then lets them follow on every acceptor). A trailers-only response (the status in the head, no
 * messages) is passed on as a head plus trailers carrying the status: equally valid gRPC, and unlike an
 * end-of-stream flag on the head it survives every hop that forwards trailers (the tunnel and its edge among them).
 */
export class GrpcResponseHandler extends ForwardingHandler {
  #status: Record<string, string | string[]> | undefined;

  override onResponseStart(controller: DispatchController, statusCode: number, headers: ResponseHeaders, statusMessage?: string): void {
    if (statusCode < 200 || !isGrpcType(headers['content-type'])) {
      super.onResponseStart(controller, statusCode, headers, statusMessage);
      return;
    }
    const head: ResponseHeaders = { ...headers };
    if (head['grpc-status'] !== undefined) {
      const status: Record<string, string | string[]> = {};
      for (const name of STATUS_FIELDS) {
        const value = head[name];
        if (value === undefined) continue;
        status[name] = value;
        delete head[name];
      }
      // The head no longer ends the response: its length (0) would forbid the trailers.
      delete head['content-length'];
      this.#status = status;
    }
    head.trailer ??= 'grpc-status';
    super.onResponseStart(controller, statusCode, head, statusMessage);
  }

  override onResponseEnd(controller: DispatchController, trailers: ResponseHeaders): void {
    super.onResponseEnd(controller, this.#status ? { ...this.#status, ...trailers } : trailers);
  }
}
