import { once } from 'node:events';
import { performServerHandshake, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { readRegisterConnectionResults } from '../../../src/tunnel/rpc/registration-codec.js';
import type { RegistrationResult } from '../../../src/tunnel/rpc/types.js';
import { contentStruct, ScriptedPeer } from '../rpc/helpers.js';
import { CLOUDFLARED_RPC } from './cloudflared-vectors.js';

/** What the recorded connector's HTTP/2 server adds to every response (the edge ignores them). */
export const GO_ARTEFACTS = { 'content-type': 'application/octet-stream', date: 'Mon, 07 Dec 2026 06:00:00 GMT' } as const;

/** A connector stand-in that speaks cloudflared's recorded bytes, connected to an edge and holding its control stream. */
export interface CloudflaredStandIn {
  readonly socket: TLSSocket;
  readonly session: ServerHttp2Session;
  readonly control: ServerHttp2Stream;
  /** The control stream as a scripted RPC peer (decodes what the edge sends). */
  readonly edge: ScriptedPeer;
}

/**
 * Dials `host:port` the way cloudflared does (TLS with SNI h2.cftunnel.com and no ALPN, then HTTP/2 *server* on
 * the socket), answers the control stream with 200 and hands every other stream to `onStream`.
 */
export async function dialLikeCloudflared(
  address: string,
  caPem: string,
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void = (s) => s.close(),
): Promise<CloudflaredStandIn> {
  const colon = address.lastIndexOf(':');
  const socket = tlsConnect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), servername: 'h2.cftunnel.com', ca: caPem });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  const session = performServerHandshake(socket, {
    settings: { maxConcurrentStreams: 4294967295, initialWindowSize: 1048576, maxFrameSize: 1048576, maxHeaderListSize: 1048896 },
  });
  session.on('error', () => undefined);
  const control = await new Promise<ServerHttp2Stream>((resolve) => {
    let found = false;
    session.on('stream', (stream, headers) => {
      if (!found && headers['cf-cloudflared-proxy-connection-upgrade'] === 'control-stream') {
        found = true;
        stream.respond({ ':status': 200, ...GO_ARTEFACTS });
        resolve(stream);
      } else onStream(stream, headers);
    });
  });
  return { socket, session, control, edge: new ScriptedPeer(control) };
}

/** Sends the recorded Bootstrap + registerConnection Call and returns the edge's answer to the call. */
export async function registerLikeCloudflared(standIn: CloudflaredStandIn): Promise<RegistrationResult> {
  standIn.edge.send(Buffer.from(CLOUDFLARED_RPC.bootstrap, 'hex'), Buffer.from(CLOUDFLARED_RPC.registerCall, 'hex'));
  await standIn.edge.waitForCount(2);
  const answer = standIn.edge.received.find((d) => d.message.type === 'return' && d.message.answerId === 1);
  if (!answer) throw new Error('no answer to registerConnection');
  return readRegisterConnectionResults(contentStruct(answer.message));
}
