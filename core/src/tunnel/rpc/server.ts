import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { MessageBuilder, protocolError } from './codec/index.js';
import { RpcEventLog } from './events.js';
import {
  capabilityContent,
  encodeAbort,
  encodeReturn,
  encodeUnimplemented,
  structContent,
  type DecodedRpcMessage,
  type OutgoingReturnResult,
  type RpcMessage,
} from './messages.js';
import { readRegisterConnectionParams, readUpdateLocalConfigurationParams, writeRegisterConnectionResults } from './registration-codec.js';
import { Layout, MessageTag, REGISTRATION_SERVER_INTERFACE_ID, RegistrationMethod, type RegistrationMethodName } from './schema.js';
import { RpcTransport, type RpcLimits } from './transport.js';
import type { RegistrationRequest, RegistrationResult } from './types.js';

/** What the edge does with each RegistrationServer call (the simulator's policy). */
export interface RegistrationHandler {
  registerConnection(req: RegistrationRequest): Promise<RegistrationResult> | RegistrationResult;
  unregisterConnection(): void | Promise<void>;
  updateLocalConfiguration(config: Buffer): void | Promise<void>;
}

/**
 * Misbehaviours the edge side can be told to show.
 * - `silent`: record everything, answer nothing (not even the Bootstrap).
 * - `delayMs`: hold every Return (bootstrap included) this long.
 * - `malformedReturn`: answer every call with a Return whose results pointer leaves its segment (undecodable).
 * - `exception`: answer every call with Return.exception carrying this reason (the bootstrap still succeeds).
 */
export interface RpcFaults {
  silent?: boolean;
  delayMs?: number;
  malformedReturn?: boolean;
  exception?: string;
}

/** One served control stream. */
export interface RegistrationServerSession {
  /** Resolves when the stream ended, errored or closed, or after {@link close} (never rejects). */
  readonly closed: Promise<void>;
  /** Everything received: bootstrap, calls with decoded params, finish, release, abort, … */
  readonly events: RpcEventLog;
  /** Ends the edge's side of the stream (no Abort) and cancels pending delayed answers. */
  close(): void;
}

export interface ServeRegistrationOptions {
  faults?: RpcFaults;
  logger?: Logger;
  limits?: RpcLimits;
}

/** Export id under which the edge hosts its RegistrationServer capability. */
const REGISTRATION_EXPORT_ID = 0;

/**
 * Serves `RegistrationServer` as the bootstrap interface on `stream` (readable = connector→edge bytes), the way
 * Cloudflare's edge does for cloudflared: Bootstrap → Return{cap #0, capTable [senderHosted 0]}; calls on the
 * promised bootstrap answer or on import 0 are dispatched to `handler`. Answers are freed on Finish, exports on
 * Release. Malformed input is recorded as a `protocolError` event and answered with an Abort.
 */
export function serveRegistration(stream: Duplex, handler: RegistrationHandler, options: ServeRegistrationOptions = {}): RegistrationServerSession {
  return new ServerSession(stream, handler, options);
}

interface Answer {
  readonly kind: 'bootstrap' | 'call';
  returned: boolean;
  finished: boolean;
}

class ServerSession implements RegistrationServerSession {
  readonly events = new RpcEventLog();
  readonly closed: Promise<void>;
  readonly #transport: RpcTransport;
  readonly #handler: RegistrationHandler;
  readonly #faults: RpcFaults;
  readonly #logger: Logger | undefined;
  readonly #answers = new Map<number, Answer>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #exportRefs = 0;

  constructor(stream: Duplex, handler: RegistrationHandler, options: ServeRegistrationOptions) {
    this.#handler = handler;
    this.#faults = options.faults ?? {};
    this.#logger = options.logger;
    this.#transport = new RpcTransport(
      stream,
      {
        message: (decoded) => this.#onMessage(decoded),
        protocolError: (err) => {
          this.events.record({ type: 'protocolError', message: err.message });
          this.#logger?.warn({ reason: err.message }, 'connector sent a malformed RPC message');
          this.#shutdown(this.#faults.silent ? [] : [encodeAbort({ reason: err.message, type: 'failed' })]);
        },
        ended: () => this.#clearTimers(),
      },
      { ...(options.limits ? { limits: options.limits } : {}), ...(options.logger ? { logger: options.logger } : {}) },
    );
    this.closed = this.#transport.closed;
  }

  /** References the connector holds on the RegistrationServer export. */
  get exportReferences(): number {
    return this.#exportRefs;
  }

  close(): void {
    this.#shutdown([]);
  }

  #shutdown(frames: Buffer[]): void {
    this.#clearTimers();
    this.#transport.shutdown(frames);
  }

  #clearTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #onMessage({ message, root }: DecodedRpcMessage): void {
    this.#logger?.debug({ rpc: message.type }, 'rpc receive (edge)');
    switch (message.type) {
      case 'bootstrap':
        this.events.record({ type: 'bootstrap', questionId: message.questionId });
        this.#newAnswer(message.questionId, 'bootstrap');
        this.#reply(message.questionId, () => {
          this.#exportRefs++;
          return {
            kind: 'results',
            content: capabilityContent(0),
            capTable: [{ kind: 'senderHosted', id: REGISTRATION_EXPORT_ID }],
          };
        });
        return;
      case 'call':
        this.#onCall(message);
        return;
      case 'finish':
        this.events.record({ type: 'finish', questionId: message.questionId, releaseResultCaps: message.releaseResultCaps });
        this.#onFinish(message.questionId, message.releaseResultCaps);
        return;
      case 'release':
        this.events.record({ type: 'release', id: message.id, referenceCount: message.referenceCount });
        if (message.id === REGISTRATION_EXPORT_ID) this.#exportRefs = Math.max(0, this.#exportRefs - message.referenceCount);
        return;
      case 'abort':
        this.events.record({ type: 'abort', reason: message.exception.reason, exceptionType: message.exception.type });
        this.#shutdown([]);
        return;
      case 'return':
        this.events.record({ type: 'return', answerId: message.answerId, kind: message.result.kind });
        return;
      case 'unimplemented':
        this.events.record({ type: 'unimplemented', echoedType: message.echoed?.type });
        return;
      case 'unsupported':
        this.events.record({ type: 'unsupported', name: message.name });
        if (!this.#faults.silent) this.#transport.send(encodeUnimplemented(root));
        return;
    }
  }

  #onCall(call: Extract<RpcMessage, { type: 'call' }>): void {
    const methodName = call.interfaceId === REGISTRATION_SERVER_INTERFACE_ID ? methodNameOf(call.methodId) : undefined;
    let params: RegistrationRequest | Buffer | undefined;
    let paramsError: string | undefined;
    try {
      if (methodName !== undefined && methodName !== 'unregisterConnection') {
        const content = call.params.content;
        if (content.kind !== 'struct' && content.kind !== 'null') throw protocolError(`${methodName} params: expected a struct, found a ${content.kind}`);
        if (content.kind === 'struct') {
          params = methodName === 'registerConnection' ? readRegisterConnectionParams(content.value) : readUpdateLocalConfigurationParams(content.value);
        }
      }
    } catch (err) {
      paramsError = (err as Error).message;
    }
    this.events.record({
      type: 'call',
      questionId: call.questionId,
      target: call.target,
      interfaceId: call.interfaceId,
      methodId: call.methodId,
      method: methodName ?? 'unknown',
      params,
      ...(paramsError !== undefined ? { paramsError } : {}),
    });
    this.#newAnswer(call.questionId, 'call');
    const failure = (reason: string, type: 'failed' | 'unimplemented' = 'failed'): OutgoingReturnResult => ({
      kind: 'exception',
      exception: { reason, type },
    });
    const targetError = this.#checkTarget(call.target);
    this.#reply(call.questionId, async () => {
      if (targetError) return failure(targetError);
      if (methodName === undefined) {
        return failure(`method ${call.methodId} of interface 0x${call.interfaceId.toString(16)} is not implemented`, 'unimplemented');
      }
      if (paramsError !== undefined) return failure(`bad ${methodName} params: ${paramsError}`);
      if (this.#faults.exception !== undefined) return failure(this.#faults.exception);
      try {
        switch (methodName) {
          case 'registerConnection': {
            const result = await this.#handler.registerConnection(params as RegistrationRequest);
            return { kind: 'results', content: structContent(Layout.RegisterConnectionResults, (r) => writeRegisterConnectionResults(r, result)) };
          }
          case 'updateLocalConfiguration':
            await this.#handler.updateLocalConfiguration((params as Buffer | undefined) ?? Buffer.alloc(0));
            return { kind: 'results', content: structContent([0, 0]) };
          case 'unregisterConnection':
            await this.#handler.unregisterConnection();
            return { kind: 'results', content: structContent([0, 0]) };
        }
      } catch (err) {
        return failure((err as Error)?.message ?? String(err));
      }
    });
  }

  /** Why a call target is not the RegistrationServer capability, or undefined when it is. */
  #checkTarget(target: Extract<RpcMessage, { type: 'call' }>['target']): string | undefined {
    if (target.kind === 'importedCap') {
      return target.importId === REGISTRATION_EXPORT_ID && this.#exportRefs > 0 ? undefined : `rpc: no export with id ${target.importId}`;
    }
    const answer = this.#answers.get(target.questionId);
    if (!answer || answer.finished || answer.kind !== 'bootstrap') return `rpc: no pipelinable answer for question ${target.questionId}`;
    if (target.transform.some((op) => op.kind !== 'noop')) return 'rpc: the bootstrap capability has no pointer fields';
    return undefined;
  }

  #newAnswer(questionId: number, kind: Answer['kind']): void {
    if (this.#answers.has(questionId)) throw protocolError(`connector reused question id ${questionId} before finishing it`);
    this.#answers.set(questionId, { kind, returned: false, finished: false });
  }

  /** Sends the Return for `answerId` (after `delayMs`, or never when silent); Return.canceled if already finished. */
  #reply(answerId: number, produce: () => OutgoingReturnResult | Promise<OutgoingReturnResult>): void {
    if (this.#faults.silent) return;
    const send = async (): Promise<void> => {
      const answer = this.#answers.get(answerId);
      if (!answer || !this.#transport.open) return;
      const result: OutgoingReturnResult = answer.finished ? { kind: 'canceled' } : await produce();
      if (!this.#transport.open) return;
      answer.returned = true;
      if (answer.finished) this.#answers.delete(answerId);
      const malformed = this.#faults.malformedReturn && answer.kind === 'call';
      this.#transport.send(malformed ? malformedReturn(answerId) : encodeReturn({ answerId, result }));
    };
    const run = (): void => {
      send().catch((err: unknown) => this.#logger?.error({ err }, 'edge RPC reply failed'));
    };
    const delay = this.#faults.delayMs ?? 0;
    if (delay <= 0) {
      run();
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, delay);
    this.#timers.add(timer);
  }

  #onFinish(questionId: number, releaseResultCaps: boolean): void {
    const answer = this.#answers.get(questionId);
    if (!answer) return;
    answer.finished = true;
    if (!answer.returned) return; // the Return (canceled) frees it when sent
    this.#answers.delete(questionId);
    if (answer.kind === 'bootstrap' && releaseResultCaps) this.#exportRefs = Math.max(0, this.#exportRefs - 1);
  }
}

function methodNameOf(methodId: number): RegistrationMethodName | undefined {
  return (Object.keys(RegistrationMethod) as RegistrationMethodName[]).find((k) => RegistrationMethod[k] === methodId);
}

/** A Return whose `results` pointer points far outside the message: valid framing, undecodable content. */
function malformedReturn(answerId: number): Buffer {
  const b = new MessageBuilder();
  const ret = b.initRoot(Layout.Message[0], Layout.Message[1]).setU16(0, MessageTag.return).initStruct(0, Layout.Return[0], Layout.Return[1]);
  ret.setU32(0, answerId);
  const resultsPointer = (ret.word + ret.dataWords) * 8;
  b.buffer.writeInt32LE(1_000_000 << 2, resultsPointer);
  b.buffer.writeUInt32LE(2 << 16, resultsPointer + 4);
  return b.framed();
}
