import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ErrorCode, WarrenError } from '../../errors.js';
import { protocolError } from './codec/index.js';
import {
  encodeAbort,
  encodeBootstrap,
  encodeCall,
  encodeFinish,
  encodeRelease,
  encodeReturn,
  encodeUnimplemented,
  structContent,
  type ContentWriter,
  type DecodedRpcMessage,
  type IncomingPayload,
  type MessageTarget,
  type ReturnResult,
  type RpcMessage,
} from './messages.js';
import { QuestionIdAllocator } from './question-ids.js';
import { readRegisterConnectionResults, validateRegistrationRequest, writeRegisterConnectionParams, writeUpdateLocalConfigurationParams } from './registration-codec.js';
import { Layout, REGISTRATION_SERVER_INTERFACE_ID, RegistrationMethod, type RegistrationMethodName } from './schema.js';
import { RpcTransport, type RpcLimits } from './transport.js';
import type { RegistrationRequest, RegistrationResult } from './types.js';

export interface RegistrationClientOptions {
  /** Default timeout of each call (`registerConnection`, `updateLocalConfiguration`, `unregisterConnection`). */
  timeoutMs: number;
  logger?: Logger;
  /** Limits on what the edge may send (defaults: 64 segments / 8 MiB per message). */
  limits?: RpcLimits;
}

/** Reason sent in the `Abort` of a graceful close. */
const SHUTDOWN_REASON = 'rpc: shutdown';

interface Question {
  readonly id: number;
  readonly method: RegistrationMethodName | 'bootstrap';
  returned: boolean;
  finishSent: boolean;
  /** Set while somebody awaits the answer. */
  settle?: { onReturn(result: ReturnResult): void; reject(err: WarrenError): void };
  timer?: NodeJS.Timeout;
}

/**
 * The connector's half of the control-stream RPC. It bootstraps the edge's
 * `RegistrationServer`, pipelines `registerConnection` on the bootstrap answer, then calls the imported capability.
 * The stream's readable side carries edge→connector bytes, its writable side connector→edge bytes.
 *
 * Failure contract: nothing the edge sends can throw past this class. Malformed or unexpected RPC input rejects the
 * pending calls with a `TunnelProtocol` WarrenError, sends an Abort, ends the stream and sets {@link error}.
 * Exceptions, cancellations, timeouts, an edge Abort or the stream ending reject with `TunnelRegistration`.
 * The constructor only attaches listeners; the first call sends the Bootstrap.
 */
export class RegistrationClient {
  /** Resolves (never rejects) once the RPC session is over: the stream ended or errored, or {@link close} ended it. */
  readonly closed: Promise<void>;
  readonly #transport: RpcTransport;
  readonly #timeoutMs: number;
  readonly #logger: Logger | undefined;
  readonly #ids = new QuestionIdAllocator();
  readonly #questions = new Map<number, Question>();
  /** Answers this side gave (refusals of edge calls) that the edge has not finished yet. */
  readonly #answers = new Set<number>();
  #bootstrap: Question | undefined;
  #bootstrapError: WarrenError | undefined;
  #importId: number | undefined;
  #importRefs = 0;
  #registering = false;
  #open = true;
  #error: WarrenError | undefined;

  constructor(stream: Duplex, options: RegistrationClientOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#logger = options.logger;
    this.#transport = new RpcTransport(
      stream,
      {
        message: (decoded) => this.#onMessage(decoded),
        protocolError: (err) => this.#teardown(err, 'abort'),
        ended: (cause) =>
          this.#teardown(
            new WarrenError(ErrorCode.TunnelRegistration, cause ? `control stream failed: ${cause.message}` : 'control stream ended by the edge', {
              cause,
            }),
            'silent',
          ),
      },
      { ...(options.limits ? { limits: options.limits } : {}), ...(options.logger ? { logger: options.logger } : {}) },
    );
    this.closed = this.#transport.closed;
  }

  /** Why the session ended, when it did not end through {@link close} (undefined while open or after close()). */
  get error(): WarrenError | undefined {
    return this.#error;
  }

  /** The edge's export id of the bootstrap capability, once its Return arrived. */
  get importedCapabilityId(): number | undefined {
    return this.#importId;
  }

  /**
   * Bootstrap + pipelined registerConnection; resolves with the edge's answer (success or ConnectionError);
   * rejects with WarrenError (TunnelProtocol for malformed/unexpected RPC, TunnelRegistration for exceptions,
   * timeouts, a closed session, a second call, or an invalid request).
   */
  async registerConnection(req: RegistrationRequest): Promise<RegistrationResult> {
    validateRegistrationRequest(req);
    if (this.#registering) {
      throw new WarrenError(ErrorCode.TunnelRegistration, 'registerConnection may be called only once per control stream', { terminal: true });
    }
    this.#registering = true;
    return this.#call(
      'registerConnection',
      structContent(Layout.RegisterConnectionParams, (p) => writeRegisterConnectionParams(p, req)),
      this.#timeoutMs,
      (payload) => {
        if (payload.content.kind !== 'struct') throw protocolError(`registerConnection results: expected a struct, found ${payload.content.kind}`);
        return readRegisterConnectionResults(payload.content.value);
      },
    );
  }

  /** Pushes the local configuration JSON (connIndex 0, locally managed tunnels). */
  async updateLocalConfiguration(configJson: Buffer): Promise<void> {
    await this.#call(
      'updateLocalConfiguration',
      structContent(Layout.UpdateLocalConfigurationParams, (p) => writeUpdateLocalConfigurationParams(p, configJson)),
      this.#timeoutMs,
      () => undefined,
    );
  }

  /** Tells the edge to stop routing to this connection (graceful shutdown); does not close the session. */
  async unregisterConnection(timeoutMs: number = this.#timeoutMs): Promise<void> {
    await this.#call('unregisterConnection', structContent([0, 0]), timeoutMs, () => undefined);
  }

  /**
   * Releases the imported capability, sends Abort{"rpc: shutdown"} and ends the stream. Outstanding calls reject
   * with `TunnelRegistration`. Idempotent, never throws; resolves with {@link closed}.
   */
  close(): Promise<void> {
    this.#teardown(undefined, 'graceful');
    return this.closed;
  }

  #call<T>(method: RegistrationMethodName, content: ContentWriter, timeoutMs: number, decode: (payload: IncomingPayload) => T): Promise<T> {
    if (!this.#open) return Promise.reject(this.#closedError());
    if (this.#bootstrapError) return Promise.reject(this.#bootstrapError);
    return new Promise<T>((resolve, reject) => {
      const target = this.#target();
      const question: Question = { id: this.#ids.allocate(), method, returned: false, finishSent: false };
      question.settle = {
        reject,
        onReturn: (result) => {
          switch (result.kind) {
            case 'results':
              try {
                resolve(decode(result.payload));
              } catch (err) {
                reject(err instanceof WarrenError ? err : protocolError(`${method} results: ${(err as Error).message}`, err));
              }
              return;
            case 'exception':
              reject(new WarrenError(ErrorCode.TunnelRegistration, `edge returned an exception for ${method}: ${result.exception.reason} (${result.exception.type})`));
              return;
            case 'canceled':
              reject(new WarrenError(ErrorCode.TunnelRegistration, `edge canceled ${method}`));
              return;
            default:
              reject(protocolError(`edge answered ${method} with an unexpected Return.${result.kind}`));
          }
        },
      };
      question.timer = setTimeout(() => this.#onTimeout(question, timeoutMs), timeoutMs);
      this.#questions.set(question.id, question);
      this.#send(
        encodeCall({
          questionId: question.id,
          target,
          interfaceId: REGISTRATION_SERVER_INTERFACE_ID,
          methodId: RegistrationMethod[method],
          content,
        }),
        `call ${method}`,
      );
    });
  }

  /** The imported capability, or the bootstrap answer to pipeline on (sending the Bootstrap on first use). */
  #target(): MessageTarget {
    if (this.#importId !== undefined) return { kind: 'importedCap', importId: this.#importId };
    if (!this.#bootstrap) {
      this.#bootstrap = { id: this.#ids.allocate(), method: 'bootstrap', returned: false, finishSent: false };
      this.#questions.set(this.#bootstrap.id, this.#bootstrap);
      this.#send(encodeBootstrap(this.#bootstrap.id), 'bootstrap');
    }
    return { kind: 'promisedAnswer', questionId: this.#bootstrap.id, transform: [] };
  }

  #onTimeout(q: Question, timeoutMs: number): void {
    q.timer = undefined;
    const settle = q.settle;
    q.settle = undefined;
    if (!q.finishSent && this.#open) {
      q.finishSent = true;
      this.#send(encodeFinish(q.id, true), 'finish (timeout)');
    }
    settle?.reject(new WarrenError(ErrorCode.TunnelRegistration, `${q.method} timed out after ${timeoutMs} ms`));
  }

  #onMessage({ message, root }: DecodedRpcMessage): void {
    if (!this.#open) return;
    this.#logger?.debug({ rpc: message.type }, 'rpc receive');
    switch (message.type) {
      case 'return':
        this.#onReturn(message);
        return;
      case 'abort':
        this.#logger?.info({ reason: message.exception.reason }, 'the edge aborted the control stream RPC session');
        this.#teardown(new WarrenError(ErrorCode.TunnelRegistration, `edge aborted the RPC session: ${message.exception.reason}`), 'silent');
        return;
      case 'bootstrap':
      case 'call':
        // The connector exports nothing: its side of the connection has no bootstrap interface.
        this.#answer(message.questionId, message.type === 'bootstrap' ? 'rpc: no bootstrap interface' : 'rpc: connector exports no capabilities');
        return;
      case 'finish':
        this.#answers.delete(message.questionId);
        return;
      case 'release':
        return; // nothing exported, nothing to release
      case 'unimplemented':
        this.#onUnimplemented(message.echoed);
        return;
      case 'unsupported':
        this.#send(encodeUnimplemented(root), `unimplemented (${message.name})`);
        return;
    }
  }

  #answer(answerId: number, reason: string): void {
    if (this.#answers.has(answerId)) throw protocolError(`edge reused question id ${answerId} before finishing it`);
    this.#answers.add(answerId);
    this.#send(encodeReturn({ answerId, result: { kind: 'exception', exception: { reason, type: 'failed' } } }), 'return (refusal)');
  }

  #onReturn(message: Extract<RpcMessage, { type: 'return' }>): void {
    const q = this.#questions.get(message.answerId);
    if (!q || q.returned) throw protocolError(`Return for unknown question ${message.answerId}`);
    q.returned = true;
    if (q.timer) clearTimeout(q.timer);
    const result = message.result;
    if (q === this.#bootstrap) {
      this.#onBootstrapReturn(q, result);
    } else {
      const carriesCaps = result.kind === 'results' && result.payload.capTable.length > 0;
      this.#finish(q, carriesCaps);
      const settle = q.settle;
      q.settle = undefined;
      settle?.onReturn(result);
    }
    this.#forget(q);
  }

  #onBootstrapReturn(q: Question, result: ReturnResult): void {
    if (q.finishSent) return; // we gave up on it (releaseResultCaps=true): the edge releases whatever it sent
    if (result.kind === 'exception') {
      this.#bootstrapError = new WarrenError(ErrorCode.TunnelRegistration, `edge refused the bootstrap: ${result.exception.reason}`);
      this.#finish(q, false);
      return;
    }
    if (result.kind !== 'results') {
      this.#finish(q, true);
      throw protocolError(`edge answered the bootstrap with Return.${result.kind}`);
    }
    const { content, capTable } = result.payload;
    const descriptor = content.kind === 'capability' ? capTable[content.index] : undefined;
    if (!descriptor || (descriptor.kind !== 'senderHosted' && descriptor.kind !== 'senderPromise')) {
      this.#finish(q, true);
      throw protocolError(
        `bootstrap results must be a capability the edge hosts, got ${content.kind === 'capability' ? (descriptor?.kind ?? 'a missing cap table entry') : `a ${content.kind} pointer`}`,
      );
    }
    this.#importId = descriptor.id;
    this.#importRefs++;
    this.#finish(q, false);
  }

  /** An echoed Bootstrap/Call means the edge never handled it: treat it as answered with an exception. */
  #onUnimplemented(echoed: RpcMessage | undefined): void {
    const questionId = echoed?.type === 'call' || echoed?.type === 'bootstrap' ? echoed.questionId : undefined;
    const q = questionId === undefined ? undefined : this.#questions.get(questionId);
    if (!q || q.returned) return;
    q.returned = true;
    q.finishSent = true; // the edge never saw the question, so there is nothing to finish
    if (q.timer) clearTimeout(q.timer);
    const reason = `edge does not implement ${q.method}`;
    if (q === this.#bootstrap) this.#bootstrapError ??= new WarrenError(ErrorCode.TunnelRegistration, reason);
    const settle = q.settle;
    q.settle = undefined;
    settle?.onReturn({ kind: 'exception', exception: { reason, type: 'unimplemented' } });
    this.#forget(q);
  }

  #finish(q: Question, releaseResultCaps: boolean): void {
    if (q.finishSent) return;
    q.finishSent = true;
    this.#send(encodeFinish(q.id, releaseResultCaps), 'finish');
  }

  /** Frees a question id once its question is completely done (Return received and Finish sent). */
  #forget(q: Question): void {
    if (!q.returned || !q.finishSent) return;
    this.#questions.delete(q.id);
    this.#ids.release(q.id);
  }

  #send(frame: Buffer, what: string): void {
    this.#logger?.debug({ rpc: what }, 'rpc send');
    this.#transport.send(frame);
  }

  #closedError(): WarrenError {
    return this.#error ?? new WarrenError(ErrorCode.TunnelRegistration, 'the RPC session is closed');
  }

  /**
   * Ends the session once. `graceful`: Finish open questions, Release the import, Abort "rpc: shutdown".
   * `abort`: Abort with the protocol error's text. `silent`: just end our side (edge Abort or stream end).
   */
  #teardown(error: WarrenError | undefined, mode: 'graceful' | 'abort' | 'silent'): void {
    if (!this.#open) return;
    this.#open = false;
    this.#error = error;
    // Malformed input is worth a warning; the edge ending or aborting the session is routine (reconnects follow).
    if (error) this.#logger?.[mode === 'abort' ? 'warn' : 'debug']({ code: error.code, reason: error.message }, 'control stream RPC session ended');
    const frames: Buffer[] = [];
    const rejection = error ?? new WarrenError(ErrorCode.TunnelRegistration, 'the RPC session was closed before the edge answered');
    for (const q of this.#questions.values()) {
      if (q.timer) clearTimeout(q.timer);
      if (mode === 'graceful' && !q.finishSent) frames.push(encodeFinish(q.id, true));
      const settle = q.settle;
      q.settle = undefined;
      settle?.reject(rejection);
    }
    if (mode !== 'silent' && this.#importId !== undefined && this.#importRefs > 0) {
      frames.push(encodeRelease(this.#importId, this.#importRefs));
      this.#importRefs = 0;
    }
    if (mode !== 'silent') frames.push(encodeAbort({ reason: error ? error.message : SHUTDOWN_REASON, type: 'failed' }));
    this.#transport.shutdown(frames, this.#timeoutMs);
  }
}
