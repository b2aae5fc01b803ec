import type { ExecutionContext } from 'ava';
import { duplexPair, type Duplex } from 'node:stream';
import { FrameReader } from '../../../src/tunnel/rpc/codec/index.js';
import {
  RegistrationClient,
  serveRegistration,
  type RegistrationHandler,
  type RegistrationRequest,
  type RegistrationResult,
  type RpcFaults,
} from '../../../src/tunnel/rpc/index.js';
import { decodeRpcMessage, type DecodedRpcMessage, type RpcMessage } from '../../../src/tunnel/rpc/messages.js';

export const uuidBytes = (uuid: string): Buffer => Buffer.from(uuid.replaceAll('-', ''), 'hex');

/**
 * A registration request with fixed test values, `overrides` on top. golden.test.ts encodes it (as a first
 * attempt) against the recorded byte vectors (support/cloudflared-vectors.ts), so changing a value here means new vectors there.
 */
export function request(overrides: Partial<RegistrationRequest> = {}): RegistrationRequest {
  return {
    auth: { accountTag: '0123456789abcdef0123456789abcdef', tunnelSecret: Buffer.from(Array.from({ length: 32 }, (_, i) => i)) },
    tunnelId: uuidBytes('11111111-2222-3333-4444-555555555555'),
    connIndex: 0,
    options: {
      client: {
        clientId: uuidBytes('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'),
        features: ['serialized_headers', 'allow_remote_config'],
        version: '2026.8.2',
        arch: 'linux_amd64',
      },
      originLocalIp: Buffer.from('00000000000000000000ffff7f000001', 'hex'),
      replaceExisting: false,
      compressionQuality: 0,
      numPreviousAttempts: 2,
    },
    ...overrides,
  };
}

export const REGISTERED: RegistrationResult = {
  ok: true,
  details: { uuid: uuidBytes('99999999-8888-7777-6666-555555555555'), locationName: 'LIS', tunnelIsRemotelyManaged: false },
};

/** A RegistrationHandler that answers `result` and records what it was asked. */
export class RecordingHandler implements RegistrationHandler {
  readonly requests: RegistrationRequest[] = [];
  readonly configs: Buffer[] = [];
  unregistered = 0;
  constructor(public result: RegistrationResult | (() => RegistrationResult | Promise<RegistrationResult>) = REGISTERED) {}
  async registerConnection(req: RegistrationRequest): Promise<RegistrationResult> {
    this.requests.push(req);
    return typeof this.result === 'function' ? this.result() : this.result;
  }
  unregisterConnection(): void {
    this.unregistered++;
  }
  updateLocalConfiguration(config: Buffer): void {
    this.configs.push(config);
  }
}

/** Connector and edge ends of one in-memory control stream, with teardown registered on `t`. */
export function controlStream(t: ExecutionContext): { connector: Duplex; edge: Duplex } {
  const [connector, edge] = duplexPair();
  t.teardown(() => {
    connector.destroy();
    edge.destroy();
  });
  return { connector, edge };
}

/** A RegistrationClient talking to serveRegistration over an in-memory stream. */
export function session(t: ExecutionContext, options: { handler?: RecordingHandler; faults?: RpcFaults; timeoutMs?: number; split?: 'bytes' } = {}) {
  const { connector, edge } = options.split === 'bytes' ? byteSplitStream(t) : controlStream(t);
  const handler = options.handler ?? new RecordingHandler();
  const server = serveRegistration(edge, handler, options.faults ? { faults: options.faults } : {});
  const client = new RegistrationClient(connector, { timeoutMs: options.timeoutMs ?? 5_000 });
  t.teardown(async () => {
    await client.close();
    server.close();
  });
  return { client, server, handler, connector, edge };
}

/** Like {@link controlStream}, but every byte crosses the stream as its own chunk, in both directions. */
export function byteSplitStream(t: ExecutionContext): { connector: Duplex; edge: Duplex } {
  const [connector, relayA] = duplexPair();
  const [relayB, edge] = duplexPair();
  const relay = (from: Duplex, to: Duplex): void => {
    from.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) to.write(chunk.subarray(i, i + 1));
    });
    from.on('end', () => to.end());
  };
  relay(relayA, relayB);
  relay(relayB, relayA);
  t.teardown(() => {
    for (const s of [connector, relayA, relayB, edge]) s.destroy();
  });
  return { connector, edge };
}

/** The test's own end of a control stream: reads and decodes what the other side writes, writes raw bytes. */
export class ScriptedPeer {
  readonly received: DecodedRpcMessage[] = [];
  readonly #frames = new FrameReader();
  readonly #waiters = new Set<() => void>();
  ended = false;

  constructor(readonly stream: Duplex) {
    stream.on('data', (chunk: Buffer) => {
      for (const segments of this.#frames.push(chunk)) this.received.push(decodeRpcMessage(segments));
      for (const w of [...this.#waiters]) w();
    });
    stream.on('end', () => {
      this.ended = true;
      for (const w of [...this.#waiters]) w();
    });
    stream.on('error', () => {});
  }

  send(...frames: Buffer[]): void {
    this.stream.write(Buffer.concat(frames));
  }

  /** Message types received so far. */
  types(): string[] {
    return this.received.map((d) => d.message.type);
  }

  /** Waits until `count` messages arrived (or the stream ended), at most `timeoutMs`. */
  async waitForCount(count: number, timeoutMs = 5_000): Promise<DecodedRpcMessage[]> {
    await this.#until(() => this.received.length >= count, timeoutMs, `${count} messages`);
    return this.received;
  }

  async waitForEnd(timeoutMs = 5_000): Promise<void> {
    await this.#until(() => this.ended, timeoutMs, 'the end of the stream');
  }

  #until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; got ${this.types().join(', ') || 'nothing'}`));
      }, timeoutMs);
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }
}

/** The struct content of a Call's params or a Return's results. */
export function contentStruct(m: RpcMessage) {
  const payload = m.type === 'call' ? m.params : m.type === 'return' && m.result.kind === 'results' ? m.result.payload : undefined;
  if (payload?.content.kind !== 'struct') throw new Error('no struct content');
  return payload.content.value;
}
