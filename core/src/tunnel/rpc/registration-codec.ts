import { ErrorCode, WarrenError } from '../../errors.js';
import { protocolError, type StructBuilder, type StructReader } from './codec/index.js';
import { Layout } from './schema.js';
import type { ConnectionErrorInfo, RegistrationRequest, RegistrationResult } from './types.js';

/**
 * Typed encoding of `RegistrationServer` parameters and results.
 * Writers fill the content struct they are given; readers take the content struct and throw `TunnelProtocol`
 * WarrenErrors naming the field for values the schema cannot hold.
 */

/** Most entries accepted in `ClientInfo.features` when decoding. */
const MAX_FEATURES = 256;
const NS_PER_MS = 1_000_000n;
const INT64_MAX = 2n ** 63n - 1n;
const V4_MAPPED_PREFIX = Buffer.from('00000000000000000000ffff', 'hex');

/**
 * Checks a request before it is sent; throws a terminal `TunnelRegistration` WarrenError naming the field.
 * (Values are the connector's own, so a failure here is a bug or bad configuration, not the edge's doing.)
 */
export function validateRegistrationRequest(req: RegistrationRequest): void {
  const fail = (field: string, expected: string): never => {
    throw new WarrenError(ErrorCode.TunnelRegistration, `registerConnection: ${field} must be ${expected}`, { terminal: true });
  };
  if (req.tunnelId.length !== 16) fail('tunnelId', '16 bytes');
  if (req.options.client.clientId.length !== 16) fail('options.client.clientId', '16 bytes');
  if (!isU8(req.connIndex)) fail('connIndex', 'an integer 0–255');
  if (!isU8(req.options.compressionQuality)) fail('options.compressionQuality', 'an integer 0–255');
  if (!Number.isInteger(req.options.numPreviousAttempts) || req.options.numPreviousAttempts < 0) {
    fail('options.numPreviousAttempts', 'a non-negative integer');
  }
  const ip = req.options.originLocalIp;
  if (ip !== undefined && ip.length !== 0 && ip.length !== 4 && ip.length !== 16) fail('options.originLocalIp', '4 or 16 bytes');
}

function isU8(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 255;
}

/** Fills `registerConnection$Params` (call {@link validateRegistrationRequest} first). */
export function writeRegisterConnectionParams(p: StructBuilder, req: RegistrationRequest): void {
  p.setU8(0, req.connIndex);
  const auth = p.initStruct(0, Layout.TunnelAuth[0], Layout.TunnelAuth[1]);
  auth.setText(0, req.auth.accountTag).setData(1, req.auth.tunnelSecret);
  p.setData(1, req.tunnelId);
  const o = req.options;
  const options = p.initStruct(2, Layout.ConnectionOptions[0], Layout.ConnectionOptions[1]);
  options.setBool(0, o.replaceExisting).setU8(1, o.compressionQuality).setU8(2, Math.min(o.numPreviousAttempts, 255));
  const client = options.initStruct(0, Layout.ClientInfo[0], Layout.ClientInfo[1]);
  client.setData(0, o.client.clientId).setTextList(1, o.client.features).setText(2, o.client.version).setText(3, o.client.arch);
  if (o.originLocalIp !== undefined) {
    options.setData(1, o.originLocalIp.length === 4 ? Buffer.concat([V4_MAPPED_PREFIX, o.originLocalIp]) : o.originLocalIp);
  }
}

/** Reads `registerConnection$Params` as sent (no length checks: the edge side records what it got). */
export function readRegisterConnectionParams(p: StructReader): RegistrationRequest {
  const auth = p.struct(0, 'auth');
  const options = p.struct(2, 'options');
  const client = options.struct(0, 'client');
  const featureList = client.list(1, 'features');
  if (featureList.length > MAX_FEATURES) throw protocolError(`${featureList.path}: ${featureList.length} entries (limit ${MAX_FEATURES})`);
  const features: string[] = [];
  for (let i = 0; i < featureList.length; i++) features.push(featureList.text(i));
  const originLocalIp = options.data(1, 'originLocalIp');
  return {
    auth: { accountTag: auth.text(0, 'accountTag'), tunnelSecret: auth.data(1, 'tunnelSecret') },
    tunnelId: p.data(1, 'tunnelId'),
    connIndex: p.u8(0),
    options: {
      client: {
        clientId: client.data(0, 'clientId'),
        features,
        version: client.text(2, 'version'),
        arch: client.text(3, 'arch'),
      },
      ...(originLocalIp.length > 0 ? { originLocalIp } : {}),
      replaceExisting: options.bool(0),
      compressionQuality: options.u8(1),
      numPreviousAttempts: options.u8(2),
    },
  };
}

/** Fills `registerConnection$Results` (the edge's answer). */
export function writeRegisterConnectionResults(r: StructBuilder, result: RegistrationResult): void {
  const response = r.initStruct(0, Layout.ConnectionResponse[0], Layout.ConnectionResponse[1]);
  if (result.ok) {
    response.setU16(0, 1);
    const d = response.initStruct(0, Layout.ConnectionDetails[0], Layout.ConnectionDetails[1]);
    d.setData(0, result.details.uuid).setText(1, result.details.locationName).setBool(0, result.details.tunnelIsRemotelyManaged);
    return;
  }
  response.setU16(0, 0);
  const e = response.initStruct(0, Layout.ConnectionError[0], Layout.ConnectionError[1]);
  e.setI64(0, msToNs(result.error.retryAfterMs)).setBool(64, result.error.shouldRetry).setText(0, result.error.cause);
}

/** Reads `registerConnection$Results`; the connection UUID must be exactly 16 bytes. */
export function readRegisterConnectionResults(r: StructReader): RegistrationResult {
  const response = r.struct(0, 'result');
  const tag = response.u16(0);
  if (tag === 1) {
    const d = response.struct(0, 'connectionDetails');
    const uuid = d.data(0, 'uuid');
    if (uuid.length !== 16) throw protocolError(`${d.path}.uuid: expected 16 bytes, got ${uuid.length}`);
    return {
      ok: true,
      details: { uuid, locationName: d.text(1, 'locationName'), tunnelIsRemotelyManaged: d.bool(0) },
    };
  }
  if (tag === 0) {
    const e = response.struct(0, 'error');
    const error: ConnectionErrorInfo = { cause: e.text(0, 'cause'), retryAfterMs: nsToMs(e.i64(0)), shouldRetry: e.bool(64) };
    return { ok: false, error };
  }
  throw protocolError(`${response.path}: unknown union tag ${tag}`);
}

/** Fills `updateLocalConfiguration$Params`. */
export function writeUpdateLocalConfigurationParams(p: StructBuilder, config: Buffer): void {
  p.setData(0, config);
}

/** Reads `updateLocalConfiguration$Params`. */
export function readUpdateLocalConfigurationParams(p: StructReader): Buffer {
  return p.data(0, 'config');
}

/** Whole milliseconds → nanoseconds (negative and non-finite values become 0, huge ones saturate). */
export function msToNs(ms: number): bigint {
  if (!Number.isFinite(ms) || ms <= 0) return 0n;
  const ns = BigInt(Math.round(ms)) * NS_PER_MS;
  return ns > INT64_MAX ? INT64_MAX : ns;
}

/** Nanoseconds → milliseconds, rounded up so that a minimum delay stays a minimum; negative values become 0. */
export function nsToMs(ns: bigint): number {
  return ns <= 0n ? 0 : Number((ns + NS_PER_MS - 1n) / NS_PER_MS);
}
