import { ErrorCode, WarrenError } from '../../../errors.js';

/**
 * The error every codec and RPC decoding failure becomes: a {@link WarrenError} with code `TunnelProtocol`
 * whose message names the offending field path (e.g. `Message.return.results.capTable[0]`).
 */
export function protocolError(message: string, cause?: unknown): WarrenError {
  return new WarrenError(ErrorCode.TunnelProtocol, message, cause === undefined ? {} : { cause });
}
