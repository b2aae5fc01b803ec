import { ErrorCode, type FailedExchange, type RawHeaders } from '@warren/core/plugin';

/** gRPC status codes Warren answers with (the gRPC status code list). */
const GrpcStatus = { DEADLINE_EXCEEDED: 4, PERMISSION_DENIED: 7, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.BadRequest]: GrpcStatus.INTERNAL,
  [ErrorCode.Forbidden]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.NoRoute]: GrpcStatus.UNIMPLEMENTED,
  [ErrorCode.UpstreamTimeout]: GrpcStatus.DEADLINE_EXCEEDED,
};

/**
 * The gRPC status of a failure Warren itself answers: no route is UNIMPLEMENTED, a refusal PERMISSION_DENIED, a
 * malformed request INTERNAL, a timeout DEADLINE_EXCEEDED, everything else (no endpoint, connect failure, busy,
 * broken upstream, shutting down) the retryable UNAVAILABLE.
 */
function grpcStatusOf(code: ErrorCode): number {
  return BY_CODE[code] ?? GrpcStatus.UNAVAILABLE;
}

/** Percent-encodes a grpc-message value (gRPC over HTTP/2: bytes outside 0x20–0x7E and `%`). */
function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Status fields for a failure: the code, and core's public sentence with the exchange's reference. */
export function grpcStatusFields(failure: FailedExchange): RawHeaders {
  return ['grpc-status', String(grpcStatusOf(failure.error.code)), 'grpc-message', encodeGrpcMessage(`${failure.publicMessage} (reference: ${failure.reference})`)];
}

/** True for a gRPC content type (`application/grpc`, `application/grpc+proto`, …). */
export function isGrpcType(value: string | readonly string[] | undefined): boolean {
  const type = Array.isArray(value) ? value[0] : value;
  return typeof type === 'string' && type.toLowerCase().startsWith('application/grpc');
}
