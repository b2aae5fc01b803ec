import type { ReturnResult, RpcMessage } from './messages.js';
import type { ExceptionTypeName, RegistrationMethodName } from './schema.js';
import type { RegistrationRequest } from './types.js';

type MessageOf<T extends RpcMessage['type']> = Extract<RpcMessage, { type: T }>;

/**
 * One message the edge side received from the connector, decoded. Bootstrap, finish and release are recorded
 * as decoded; a call keeps its addressing fields and gets its params read; the rest are summarized.
 */
export type RpcEvent =
  | MessageOf<'bootstrap' | 'finish' | 'release'>
  | (Pick<MessageOf<'call'>, 'type' | 'questionId' | 'target' | 'interfaceId' | 'methodId'> & {
      /** `unknown` when the interface or method id is not a RegistrationServer method. */
      method: RegistrationMethodName | 'unknown';
      /** registerConnection: the request; updateLocalConfiguration: the config bytes; otherwise undefined. */
      params: RegistrationRequest | Buffer | undefined;
      /** Set when the params could not be decoded (the call was answered with an exception). */
      paramsError?: string;
    })
  | { type: 'abort'; reason: string; exceptionType: ExceptionTypeName }
  | { type: 'return'; answerId: number; kind: ReturnResult['kind'] }
  | { type: 'unimplemented'; echoedType: string | undefined }
  | { type: 'unsupported'; name: string }
  | { type: 'protocolError'; message: string };

export type RpcEventType = RpcEvent['type'];
type EventOf<T extends RpcEventType> = Extract<RpcEvent, { type: T }>;

/**
 * Ordered record of what the edge side of one control stream received. Tests read it to assert the connector's
 * exact message sequence; {@link waitFor} lets them wait for an event without polling.
 */
export class RpcEventLog {
  readonly #entries: RpcEvent[] = [];
  readonly #waiters = new Set<(e: RpcEvent) => void>();

  /** Every event so far, in order of receipt. */
  get entries(): readonly RpcEvent[] {
    return this.#entries;
  }

  /** Appends an event (called by the server session). */
  record(event: RpcEvent): void {
    this.#entries.push(event);
    for (const w of [...this.#waiters]) {
      try {
        w(event);
      } catch {
        // a throwing test predicate must not break the session that records
      }
    }
  }

  /** Compact sequence such as `['bootstrap', 'call:registerConnection', 'finish:0', 'release:0', 'abort']`. */
  sequence(): string[] {
    return this.#entries.map((e) => {
      switch (e.type) {
        case 'call':
          return `call:${e.method}`;
        case 'finish':
          return `finish:${e.questionId}`;
        case 'release':
          return `release:${e.id}`;
        default:
          return e.type;
      }
    });
  }

  /** Events of one type. */
  ofType<T extends RpcEventType>(type: T): EventOf<T>[] {
    return this.#entries.filter((e): e is EventOf<T> => e.type === type);
  }

  /** Calls of one method, in order. */
  calls(method: RegistrationMethodName | 'unknown'): EventOf<'call'>[] {
    return this.ofType('call').filter((c) => c.method === method);
  }

  /** Every registerConnection request received. */
  registrations(): RegistrationRequest[] {
    return this.calls('registerConnection').flatMap((c) => (c.params && !Buffer.isBuffer(c.params) ? [c.params] : []));
  }

  /** Every configuration pushed with updateLocalConfiguration. */
  localConfigurations(): Buffer[] {
    return this.calls('updateLocalConfiguration').flatMap((c) => (Buffer.isBuffer(c.params) ? [c.params] : []));
  }

  /**
   * Resolves with the first event (already recorded or future) matching `predicate`; rejects with an Error after
   * `timeoutMs`.
   */
  waitFor(predicate: (e: RpcEvent) => boolean, timeoutMs = 5_000): Promise<RpcEvent> {
    const found = this.#entries.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no matching RPC event within ${timeoutMs} ms; got ${this.sequence().join(', ') || 'nothing'}`));
      }, timeoutMs);
      const waiter = (e: RpcEvent): void => {
        if (!predicate(e)) return;
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve(e);
      };
      this.#waiters.add(waiter);
    });
  }
}
