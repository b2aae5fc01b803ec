/** A hand-written connector for the simulator's own tests. */
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { performServerHandshake, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import type { EdgeSimulator } from '../../../src/edge-simulator/index.js';
import { uuidToBytes } from '../../../src/tunnel/credentials.js';
import { RegistrationClient, type RegistrationResult } from '../../../src/tunnel/rpc/index.js';

export interface FakeConnectorOptions {
  readonly listener?: number;
  readonly secret?: Buffer;
  readonly tunnelId?: string;
  readonly accountTag?: string;
  readonly clientId?: Buffer;
  readonly connIndex?: number;
  /** Answers request streams (default: 200 with an empty serialized header set). */
  readonly onStream?: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;
}

/**
 * A minimal hand-written connector (TLS, reverse HTTP/2, RPC registration), independent of Warren's
 * TunnelConnector, to check that the simulator accepts any correct connector and judges bad ones.
 */
export async function fakeConnector(t: ExecutionContext, sim: EdgeSimulator, options: FakeConnectorOptions = {}): Promise<RegistrationResult> {
  const [host, port] = sim.edgeAddresses[options.listener ?? 0]!.split(':') as [string, string];
  const socket = tlsConnect({ host, port: Number(port), servername: 'h2.cftunnel.com', ca: sim.caPem });
  await once(socket, 'secureConnect');
  const session = performServerHandshake(socket);
  t.teardown(() => session.destroy());
  session.on('error', () => undefined);
  const control = await new Promise<ServerHttp2Stream>((resolve) => {
    session.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      if (headers['cf-cloudflared-proxy-connection-upgrade'] === 'control-stream') {
        stream.respond({ ':status': 200 });
        resolve(stream);
      } else if (options.onStream) options.onStream(stream, headers);
      else {
        stream.respond({ ':status': 200, 'cf-cloudflared-response-headers': '', 'cf-cloudflared-response-meta': '{"src":"origin"}' });
        stream.end('fake');
      }
    });
  });
  const rpc = new RegistrationClient(control, { timeoutMs: 3000 });
  t.teardown(() => rpc.close());
  return rpc.registerConnection({
    auth: { accountTag: options.accountTag ?? sim.credentials.accountTag, tunnelSecret: options.secret ?? sim.credentials.tunnelSecret },
    tunnelId: uuidToBytes(options.tunnelId ?? sim.credentials.tunnelId)!,
    connIndex: options.connIndex ?? 0,
    options: {
      client: { clientId: options.clientId ?? randomBytes(16), features: ['serialized_headers'], version: 'fake', arch: 'test' },
      replaceExisting: false,
      compressionQuality: 0,
      numPreviousAttempts: 0,
    },
  });
}
