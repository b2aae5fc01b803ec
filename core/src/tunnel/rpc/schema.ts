/**
 * Wire constants of the control-stream RPC: `capnp/rpc.capnp` (the standard RPC protocol) and the
 * `RegistrationServer` interface of the tunnel's RPC schema. Offsets are byte offsets into the data
 * section unless named `...Bit`; `Layout` gives each struct's size in words as (data, pointers).
 */

/** Interface id of `RegistrationServer` (sent on every call, also when the edge's capability is a TunnelServer). */
export const REGISTRATION_SERVER_INTERFACE_ID = 0xf71695ec7fe85497n;

/** Method ordinals of `RegistrationServer`. */
export const RegistrationMethod = {
  registerConnection: 0,
  unregisterConnection: 1,
  updateLocalConfiguration: 2,
} as const;
export type RegistrationMethodName = keyof typeof RegistrationMethod;

/** Union tags of `Message` (u16 at byte 0; every member lives in pointer 0). */
export const MessageTag = {
  unimplemented: 0,
  abort: 1,
  call: 2,
  return: 3,
  finish: 4,
  resolve: 5,
  release: 6,
  obsoleteSave: 7,
  bootstrap: 8,
  obsoleteDelete: 9,
  provide: 10,
  accept: 11,
  join: 12,
  disembargo: 13,
} as const;
export type MessageTagName = keyof typeof MessageTag;
export const MESSAGE_TAG_NAMES = Object.keys(MessageTag) as MessageTagName[];

/** Union tags of `Return` (u16 at byte 6). */
export const ReturnTag = {
  results: 0,
  exception: 1,
  canceled: 2,
  resultsSentElsewhere: 3,
  takeFromOtherQuestion: 4,
  acceptFromThirdParty: 5,
} as const;

/** Union tags of `CapDescriptor` (u16 at byte 0). */
export const CapDescriptorTag = {
  none: 0,
  senderHosted: 1,
  senderPromise: 2,
  receiverHosted: 3,
  receiverAnswer: 4,
  thirdPartyHosted: 5,
} as const;

/** `Exception.Type` (u16 at byte 4). */
export const ExceptionType = {
  failed: 0,
  overloaded: 1,
  disconnected: 2,
  unimplemented: 3,
} as const;
export type ExceptionTypeName = keyof typeof ExceptionType;
export const EXCEPTION_TYPE_NAMES = Object.keys(ExceptionType) as ExceptionTypeName[];

/** Struct sizes (data words, pointer words) as this codec writes them. */
export const Layout = {
  Message: [1, 1],
  Bootstrap: [1, 1],
  Call: [3, 3],
  MessageTarget: [1, 1],
  PromisedAnswer: [1, 1],
  PromisedAnswerOp: [1, 0],
  Payload: [0, 2],
  CapDescriptor: [1, 1],
  Return: [2, 1],
  Finish: [1, 0],
  Release: [1, 0],
  /** The older schema's layout: `reason` only; the newer `trace` pointer is read when present, never written. */
  Exception: [1, 1],
  RegisterConnectionParams: [1, 3],
  RegisterConnectionResults: [0, 1],
  UpdateLocalConfigurationParams: [0, 1],
  TunnelAuth: [0, 2],
  ConnectionOptions: [1, 2],
  ClientInfo: [0, 4],
  ConnectionResponse: [1, 1],
  ConnectionError: [2, 1],
  ConnectionDetails: [1, 2],
} as const satisfies Record<string, readonly [number, number]>;
