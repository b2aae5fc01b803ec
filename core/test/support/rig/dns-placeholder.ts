/**
 * What the rig's node runs for a CoreDNS container (images.ts): not a DNS server. It holds UDP port 53 on the pod
 * address and answers every query with REFUSED (the query's id and question echoed, no records), so a pod of the
 * Gateway API conformance base manifests that exists only for UDPRoute tests can run and be Ready. Its arguments
 * (`-conf <Corefile>`) are ignored. SIGTERM closes the socket and exits 0.
 *
 * Environment (set by the node): POD_IP, the address to listen on.
 */
import { createSocket } from 'node:dgram';

const host = process.env.POD_IP;
if (!host) throw new Error('POD_IP is not set');

/**
 * The REFUSED answer to `query`: its header with QR set, opcode and RD kept, RCODE 5, and its first question (when
 * QDCOUNT is 1) as asked; no records. Undefined for anything that is not a parsable query.
 */
function refused(query: Buffer): Buffer | undefined {
  if (query.length < 12 || (query[2]! & 0x80) !== 0) return undefined;
  let end = 12;
  const questions = query.readUInt16BE(4);
  if (questions === 1) {
    while (end < query.length && query[end] !== 0) end += 1 + query[end]!;
    end += 5; // the root label, QTYPE, QCLASS
    if (end > query.length) return undefined;
  }
  const answer = Buffer.from(query.subarray(0, end));
  answer[2] = 0x80 | (query[2]! & 0x79);
  answer[3] = 5;
  answer.writeUInt16BE(questions === 1 ? 1 : 0, 4);
  answer.writeUInt16BE(0, 6);
  answer.writeUInt16BE(0, 8);
  answer.writeUInt16BE(0, 10);
  return answer;
}

const socket = createSocket('udp4');
socket.on('message', (query, peer) => {
  const answer = refused(query);
  if (answer) socket.send(answer, peer.port, peer.address);
});
socket.bind(53, host, () => process.stdout.write(`DNS placeholder on ${host}:53/udp: every query is answered REFUSED\n`));
process.once('SIGTERM', () => socket.close(() => process.exit(0)));
