/**
 * Error codes of the Room protocol: the JSON-RPC 2.0 codes plus the original
 * Kurento Room `RoomException` codes, which clients of the original server
 * already switch on. Shared by the worker, the bridge link and the web client.
 */
export const JsonRpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /**
   * A JSON-RPC "server error" (-32000…-32099, implementation-defined): the
   * socket sends requests faster than the room allows (README "Limits"); the
   * request was not carried out. A socket that keeps flooding is closed with
   * 1008 (CloseCode.POLICY_VIOLATION).
   */
  RATE_LIMITED: -32000,
} as const;

export const RoomCode = {
  USER_GENERIC: 101,
  USER_NOT_FOUND: 102,
  USER_CLOSED: 103,
  EXISTING_USER_IN_ROOM: 104,
  USER_NOT_STREAMING: 105,
  ROOM_GENERIC: 201,
  ROOM_NOT_FOUND: 202,
  ROOM_CLOSED: 203,
  ROOM_CANNOT_BE_CREATED: 204,
  MEDIA_GENERIC: 301,
  MEDIA_SDP: 302,
  MEDIA_ENDPOINT: 303,
  MEDIA_WEBRTC_ENDPOINT: 304,
  MEDIA_RTP_ENDPOINT: 305,
  MEDIA_NOT_A_WEB_ENDPOINT: 306,
  MEDIA_MUTE: 307,
  TRANSPORT_REQUEST: 801,
  TRANSPORT_RESPONSE: 802,
  TRANSPORT: 803,
  GENERIC: 999,
} as const;

/** Same code the Kurento JSON-RPC server uses for `connect` with an unknown session. */
export const INVALID_SESSION_CODE = 40007;

export type ErrorCode =
  | (typeof JsonRpcCode)[keyof typeof JsonRpcCode]
  | (typeof RoomCode)[keyof typeof RoomCode]
  | typeof INVALID_SESSION_CODE;

export interface RpcError {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

export function rpcError(code: ErrorCode, message: string, data?: unknown): RpcError {
  return data === undefined ? { code, message } : { code, message, data };
}
