import { ErrorCode, WarrenError } from '../errors.js';

/**
 * Credentials of a tunnel Warren manages (created or adopted through the API). The same four fields as
 * cloudflared's credentials file; `tunnelSecret` is the raw secret (≥ 32 bytes), never logged.
 */
export interface ManagedTunnelCredentials {
  readonly accountTag: string;
  readonly tunnelId: string;
  readonly tunnelSecret: Buffer;
  readonly tunnelName?: string | undefined;
  /** `fed` for FedRAMP accounts, else absent. */
  readonly endpoint?: string | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes a tunnel token (std base64 of JSON `{a, s, t, e?}`); errors name the field, never the value. */
export function decodeTunnelToken(token: string, source = 'tunnel token'): ManagedTunnelCredentials {
  const text = token.trim();
  if (!STD_BASE64.test(text)) throw credentialsError(`${source} is not standard base64`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw credentialsError(`${source} does not hold JSON`);
  }
  if (typeof json !== 'object' || json === null) throw credentialsError(`${source} does not hold a JSON object`);
  return checked(
    { accountTag: json.a, tunnelId: json.t, secret: json.s, endpoint: json.e },
    { accountTag: `${source} field "a"`, tunnelId: `${source} field "t"`, secret: `${source} field "s"` },
  );
}

/** Encodes credentials as a tunnel token (the format `GET …/cfd_tunnel/{id}/token` returns). */
export function encodeTunnelToken(c: ManagedTunnelCredentials): string {
  const body: Record<string, string> = { a: c.accountTag, t: c.tunnelId, s: c.tunnelSecret.toString('base64') };
  if (c.endpoint) body.e = c.endpoint;
  return Buffer.from(JSON.stringify(body)).toString('base64');
}

/** True when `a` and `b` name the same tunnel with the same secret (a rotated secret makes them differ). */
export function sameCredentials(a: ManagedTunnelCredentials, b: ManagedTunnelCredentials): boolean {
  return a.tunnelId.toLowerCase() === b.tunnelId.toLowerCase() && a.tunnelSecret.equals(b.tunnelSecret);
}

/** cloudflared's credentials-file JSON (`AccountTag`, `TunnelSecret`, `TunnelID`, `TunnelName`, `Endpoint`). */
export function credentialsFileJson(c: ManagedTunnelCredentials): string {
  return JSON.stringify({
    AccountTag: c.accountTag,
    TunnelSecret: c.tunnelSecret.toString('base64'),
    TunnelID: c.tunnelId,
    ...(c.tunnelName ? { TunnelName: c.tunnelName } : {}),
    Endpoint: c.endpoint ?? '',
  });
}

/** Parses credentials-file JSON; keys are matched case-insensitively (files written by other tools differ in case). */
export function parseCredentialsJson(text: string, source = 'credentials JSON'): ManagedTunnelCredentials {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw credentialsError(`${source} is not valid JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw credentialsError(`${source} is not a JSON object`);
  const lower = new Map(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v]));
  const c = checked(
    { accountTag: lower.get('accounttag'), tunnelId: lower.get('tunnelid'), secret: lower.get('tunnelsecret'), endpoint: lower.get('endpoint') },
    { accountTag: `${source} field "AccountTag"`, tunnelId: `${source} field "TunnelID"`, secret: `${source} field "TunnelSecret"` },
  );
  const name = lower.get('tunnelname');
  return typeof name === 'string' && name ? { ...c, tunnelName: name } : c;
}

function checked(
  v: { accountTag: unknown; tunnelId: unknown; secret: unknown; endpoint: unknown },
  names: { accountTag: string; tunnelId: string; secret: string },
): ManagedTunnelCredentials {
  if (typeof v.accountTag !== 'string' || !v.accountTag) throw credentialsError(`${names.accountTag} is missing`);
  if (typeof v.tunnelId !== 'string' || !UUID.test(v.tunnelId)) throw credentialsError(`${names.tunnelId} is not a tunnel UUID`);
  if (typeof v.secret !== 'string' || !STD_BASE64.test(v.secret)) throw credentialsError(`${names.secret} is not standard base64`);
  const tunnelSecret = Buffer.from(v.secret, 'base64');
  if (tunnelSecret.length < 32) throw credentialsError(`${names.secret} decodes to ${tunnelSecret.length} bytes; at least 32 are needed`);
  return {
    accountTag: v.accountTag,
    tunnelId: v.tunnelId.toLowerCase(),
    tunnelSecret,
    ...(typeof v.endpoint === 'string' && v.endpoint ? { endpoint: v.endpoint } : {}),
  };
}

function credentialsError(message: string): WarrenError {
  return new WarrenError(ErrorCode.TunnelCredentials, message, { terminal: true });
}
