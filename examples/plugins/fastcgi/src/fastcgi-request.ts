import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ErrorCode, WarrenError, type DispatchController, type DispatchHandler, type ProvisionContext } from '@warren/core/plugin';
import { CgiHeadReader } from './cgi-response.js';
import { abortRequest, beginRequest, encodePairs, parseEndRequest, ProtocolStatus, protocolError, RecordReader, RecordType, streamRecords } from './records.js';

/** The plugin's logger (pino, from `ProvisionContext`). */
type Logger = ProvisionContext['logger'];

/**
 * One FastCGI request on one connection (Responder role, request id 1: PHP-FPM does not multiplex, so a
 * connection carries one request at a time). Sends BEGIN_REQUEST, PARAMS and STDIN — the body streamed with
 * backpressure — and turns STDOUT into undici's handler callbacks: the CGI head becomes `onResponseStart`, the
 * rest `onResponseData` chunks (paused when the handler pauses), END_REQUEST `onResponseEnd`. A response is
 * only ever reported complete after END_REQUEST with status REQUEST_COMPLETE and, when the application declared
 * a Content-Length, exactly that many body bytes; anything else — a malformed record, a connection that closes
 * first — is an error. STDERR is logged, bounded.
 */

const REQUEST_ID = 1;

/** Bounds of one request (plugin settings). */
export interface RequestLimits {
  readonly maxResponseHeaderBytes: number;
  readonly maxStderrBytes: number;
}

/** What the pool learns when a request leaves its connection. */
export interface RequestOwner {
  /** The request is done with `socket`; `reusable` when it may carry another request. */
  release(socket: Socket, reusable: boolean): void;
  /** Runs the request again on a new connection (its kept-alive one was closed under it, see `attach`). */
  reconnect(request: FastCgiRequest): void;
}

function coded(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** undici's controller for one request: abort, pause and resume reach the request and its socket. */
export class RequestController implements DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  rawHeaders: Buffer[] | null = null;
  rawTrailers: Buffer[] | null = null;
  socket: Socket | undefined;
  readonly #onAbort: (reason: Error) => void;

  constructor(onAbort: (reason: Error) => void) {
    this.#onAbort = onAbort;
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#onAbort(reason);
  }

  pause(): void {
    this.paused = true;
    this.socket?.pause();
  }

  resume(): void {
    this.paused = false;
    this.socket?.resume();
  }
}

/** What a request is from the start: how it is sent and bounded. */
export interface RequestInit {
  /** The request method (a HEAD response has no body). */
  readonly method: string;
  readonly keepConnection: boolean;
  readonly limits: RequestLimits;
  readonly logger: Logger | undefined;
  /** For log lines: the exchange id. */
  readonly exchangeId: string;
}

/** What is sent: known once the params are built and the body's length is known. */
export interface RequestPayload {
  readonly params: ReadonlyArray<readonly [string, string]>;
  /** Request body; null for none. */
  readonly body: Readable | Buffer | null;
  /** Bytes the body must have (CONTENT_LENGTH), when there is a body. */
  readonly bodyLength: number | undefined;
}

export class FastCgiRequest {
  readonly controller: RequestController;
  readonly #handler: DispatchHandler;
  readonly #init: RequestInit;
  #payload: RequestPayload | undefined;
  #done = false;
  #socket: Socket | undefined;
  #owner: RequestOwner | undefined;
  /** The connection carried earlier requests. */
  #reused = false;
  /** The application sent bytes for this request. */
  #heard = false;
  #reader: RecordReader | undefined;
  #head: CgiHeadReader | undefined;
  #responding = false;
  #bodyless = false;
  #declared: number | undefined;
  #received = 0;
  #stdinDone = false;
  #stdinSent = 0;
  #stderr: Buffer[] = [];
  #stderrKept = 0;
  #stderrTotal = 0;
  #headersTimer: NodeJS.Timeout | undefined;
  #body: Readable | undefined;
  /** Called when the request ends before it got a connection (the pool drops it from its queue). */
  onEndWhileWaiting: (() => void) | undefined;

  readonly #onData = (chunk: Buffer): void => this.#read(chunk);
  readonly #onEnd = (): void => this.#lost(coded('UND_ERR_SOCKET', 'the FastCGI application closed the connection before END_REQUEST'));
  readonly #onError = (err: Error): void => this.#lost(err);
  readonly #onDrain = (): void => void this.#body?.resume();

  constructor(handler: DispatchHandler, init: RequestInit) {
    this.#handler = handler;
    this.#init = init;
    this.controller = new RequestController((reason) => this.fail(reason));
  }

  get done(): boolean {
    return this.#done;
  }

  /** Sets what is sent; before {@link attach}. */
  prepare(payload: RequestPayload): void {
    this.#payload = payload;
  }

  /** Starts the response-head clock (covers waiting for a connection, connecting and the application's work). */
  startHeadersTimer(ms: number | null | undefined): void {
    if (typeof ms !== 'number' || ms <= 0 || this.#done) return;
    this.#headersTimer = setTimeout(() => this.fail(coded('UND_ERR_HEADERS_TIMEOUT', `no response head within ${ms} ms`)), ms);
  }

  /** Runs the request on a connected socket; `reused` when the connection carried earlier requests. */
  attach(socket: Socket, owner: RequestOwner, reused = false): void {
    if (this.#done) {
      owner.release(socket, true);
      return;
    }
    this.#socket = socket;
    this.#owner = owner;
    this.#reused = reused;
    this.#heard = false;
    this.#stdinSent = 0;
    this.#stdinDone = false;
    this.controller.socket = socket;
    this.#reader = new RecordReader({ onRecord: (type, id, content) => this.#record(type, id, content) });
    this.#head = new CgiHeadReader(this.#init.limits.maxResponseHeaderBytes);
    socket.on('data', this.#onData);
    socket.once('end', this.#onEnd);
    socket.once('close', this.#onEnd);
    socket.once('error', this.#onError);
    socket.on('drain', this.#onDrain);
    if (this.controller.paused) socket.pause();
    else socket.resume();

    socket.cork();
    socket.write(beginRequest(REQUEST_ID, this.#init.keepConnection));
    const payload = this.#payload!;
    for (const part of streamRecords(RecordType.Params, REQUEST_ID, encodePairs(payload.params))) socket.write(part);
    socket.write(streamRecords(RecordType.Params, REQUEST_ID, Buffer.alloc(0))[0]!);
    const body = payload.body;
    if (body === null || Buffer.isBuffer(body)) {
      if (body && body.length > 0) this.#writeStdin(body);
      this.#endStdin();
    }
    socket.uncork();
    if (body !== null && !Buffer.isBuffer(body)) this.#pump(body);
  }

  #writeStdin(chunk: Buffer): boolean {
    this.#stdinSent += chunk.length;
    let ok = true;
    for (const part of streamRecords(RecordType.Stdin, REQUEST_ID, chunk)) ok = this.#socket!.write(part);
    return ok;
  }

  #endStdin(): void {
    const expected = this.#payload!.bodyLength;
    if (expected !== undefined && this.#stdinSent !== expected) {
      this.fail(new WarrenError(ErrorCode.BadRequest, 'request body length does not match its content-length', { status: 400 }));
      return;
    }
    this.#socket!.write(streamRecords(RecordType.Stdin, REQUEST_ID, Buffer.alloc(0))[0]!);
    this.#stdinDone = true;
  }

  /** Streams the body as STDIN records; pauses it while the socket's buffer is full. */
  #pump(body: Readable): void {
    this.#body = body;
    const expected = this.#payload!.bodyLength;
    body.on('data', (chunk: Buffer) => {
      if (this.#done) return;
      if (expected !== undefined && this.#stdinSent + chunk.length > expected) {
        this.fail(new WarrenError(ErrorCode.BadRequest, 'request body length does not match its content-length', { status: 400 }));
        return;
      }
      if (!this.#writeStdin(chunk)) body.pause();
    });
    body.once('end', () => {
      if (!this.#done) this.#endStdin();
    });
    body.once('error', (err) => this.fail(err));
  }

  #read(chunk: Buffer): void {
    this.#heard = true;
    try {
      this.#reader!.push(chunk);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  #record(type: number, requestId: number, content: Buffer): void {
    if (this.#done) return;
    if (requestId !== REQUEST_ID) throw protocolError(`record of type ${type} for request ${requestId} (expected ${REQUEST_ID})`);
    switch (type) {
      case RecordType.Stdout:
        if (content.length > 0) this.#stdout(content);
        return;
      case RecordType.Stderr:
        this.#keepStderr(content);
        return;
      case RecordType.EndRequest:
        this.#end(parseEndRequest(content));
        return;
      default:
        throw protocolError(`unexpected record type ${type}`);
    }
  }

  #stdout(content: Buffer): void {
    if (this.#responding) {
      this.#deliver(content);
      return;
    }
    let parsed: ReturnType<CgiHeadReader['push']>;
    try {
      parsed = this.#head!.push(content);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (!parsed) return;
    clearTimeout(this.#headersTimer);
    const { head, body } = parsed;
    this.#responding = true;
    this.#bodyless = this.#init.method === 'HEAD' || head.status === 204 || head.status === 304;
    this.#declared = this.#bodyless ? undefined : head.contentLength;
    this.controller.rawHeaders = head.raw;
    this.#handler.onResponseStart?.(this.controller, head.status, head.headers, head.statusText);
    if (body.length > 0 && !this.#done) this.#deliver(body);
  }

  #deliver(chunk: Buffer): void {
    if (this.#bodyless) return;
    this.#received += chunk.length;
    if (this.#declared !== undefined && this.#received > this.#declared) {
      this.fail(protocolError(`response body longer than its Content-Length ${this.#declared}`));
      return;
    }
    this.#handler.onResponseData?.(this.controller, chunk);
  }

  #keepStderr(content: Buffer): void {
    this.#stderrTotal += content.length;
    const room = this.#init.limits.maxStderrBytes - this.#stderrKept;
    if (room <= 0) return;
    const kept = content.length > room ? content.subarray(0, room) : content;
    this.#stderr.push(Buffer.from(kept));
    this.#stderrKept += kept.length;
  }

  #end(end: { appStatus: number; protocolStatus: number }): void {
    if (end.protocolStatus === ProtocolStatus.Overloaded) {
      this.fail(new WarrenError(ErrorCode.UpstreamBusy, 'the FastCGI application is overloaded (END_REQUEST status OVERLOADED)', { retryAfter: 1 }));
      return;
    }
    if (end.protocolStatus !== ProtocolStatus.RequestComplete) {
      this.fail(protocolError(`the FastCGI application refused the request (END_REQUEST protocol status ${end.protocolStatus})`));
      return;
    }
    if (!this.#responding) {
      this.fail(protocolError('the FastCGI application ended the request without a complete response head'));
      return;
    }
    if (this.#declared !== undefined && this.#received !== this.#declared) {
      this.fail(protocolError(`response body of ${this.#received} bytes is shorter than its Content-Length ${this.#declared}`));
      return;
    }
    // The connection can carry another request only if nothing of this one is left on it.
    const reusable = this.#init.keepConnection && this.#stdinDone && !this.#reader!.midRecord;
    this.#finish(reusable);
    this.#handler.onResponseEnd?.(this.controller, {});
  }

  /**
   * The connection failed. A kept-alive connection the application closed as this request took it (a worker that
   * reached `pm.max_requests`), before sending a byte for it and while the request can be sent again (no body, or
   * one read whole), is replaced by a new connection once; everything else is the request's error.
   */
  #lost(err: Error): void {
    const body = this.#payload?.body ?? null;
    if (this.#done || !this.#reused || this.#heard || !(body === null || Buffer.isBuffer(body))) {
      this.fail(err);
      return;
    }
    const socket = this.#socket!;
    this.#detach(socket);
    this.#owner!.release(socket, false);
    this.#owner!.reconnect(this);
  }

  /** Ends the request with `err`; the connection is not reused. */
  fail(err: Error): void {
    if (this.#done) return;
    const socket = this.#socket;
    // Tell the application to stop; the pool then closes the connection (which PHP-FPM notices too).
    if (socket && !socket.destroyed && socket.writable) socket.write(abortRequest(REQUEST_ID));
    this.#finish(false);
    this.#handler.onResponseError?.(this.controller, err);
  }

  #finish(reusable: boolean): void {
    this.#done = true;
    clearTimeout(this.#headersTimer);
    this.#logStderr();
    const body = this.#body;
    if (body) {
      body.removeAllListeners('data');
      if (!body.readableEnded) body.destroy();
    }
    const socket = this.#socket;
    if (socket) {
      this.#detach(socket);
      if (reusable) socket.resume();
      this.#owner!.release(socket, reusable);
    } else {
      this.onEndWhileWaiting?.();
    }
  }

  #detach(socket: Socket): void {
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onEnd);
    socket.off('error', this.#onError);
    socket.off('drain', this.#onDrain);
    this.#socket = undefined;
    this.controller.socket = undefined;
  }

  #logStderr(): void {
    if (this.#stderrTotal === 0) return;
    const text = Buffer.concat(this.#stderr).toString('utf8');
    this.#init.logger?.warn(
      { exchange: this.#init.exchangeId, stderr: text, stderrBytes: this.#stderrTotal, truncated: this.#stderrTotal > this.#stderrKept },
      'FastCGI application wrote to stderr',
    );
  }
}
