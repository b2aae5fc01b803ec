const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * Parses a `grpc-timeout` value (gRPC over HTTP/2: 1–8 ASCII digits and a unit `H M S m u n`) into whole
 * milliseconds (at least 1). Returns undefined for anything else; a malformed value is ignored, like gRPC
 * servers do.
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return undefined;
  return Math.max(1, Math.ceil(Number(m[1]) * UNIT_MS[m[2]!]!));
}
