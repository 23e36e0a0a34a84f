// Error codes as Kurento Media Server sends them (kms-core KurentoException.hpp),
// plus the JSON-RPC 2.0 ones. kurento-client maps some codes to error classes
// (40100 → TypeError, 40101 → ReferenceError, 40105 → SyntaxError) and
// recognises 40007 when it resumes a session, so the numbers matter.
export const ErrorCodes = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  MARSHALL_ERROR: 40001,
  UNEXPECTED_ERROR: 40003,
  CONNECT_ERROR: 40004,
  UNSUPPORTED_MEDIA_TYPE: 40005,
  NOT_IMPLEMENTED: 40006,
  INVALID_SESSION: 40007,
  MALFORMED_TRANSACTION: 40008,
  MEDIA_OBJECT_TYPE_NOT_FOUND: 40100,
  MEDIA_OBJECT_NOT_FOUND: 40101,
  MEDIA_OBJECT_CONSTRUCTOR_NOT_FOUND: 40104,
  MEDIA_OBJECT_METHOD_NOT_FOUND: 40105,
  MEDIA_OBJECT_EVENT_NOT_SUPPORTED: 40106,
  MEDIA_OBJECT_ILLEGAL_PARAM_ERROR: 40107,
  MEDIA_OBJECT_NOT_AVAILABLE: 40108,
  MEDIA_OBJECT_TAG_KEY_NOT_FOUND: 40110,
  MEDIA_OBJECT_OPERATION_NOT_SUPPORTED: 40111,
  SDP_PARSE_ERROR: 40201,
  SDP_END_POINT_NO_LOCAL_SDP_ERROR: 40202,
  SDP_END_POINT_NO_REMOTE_SDP_ERROR: 40203,
  SDP_END_POINT_GENERATE_OFFER_ERROR: 40204,
  SDP_END_POINT_PROCESS_OFFER_ERROR: 40205,
  SDP_END_POINT_PROCESS_ANSWER_ERROR: 40206,
  SDP_END_POINT_ALREADY_NEGOTIATED: 40208,
  SDP_END_POINT_NOT_OFFER_GENERATED: 40209,
  SDP_END_POINT_ANSWER_ALREADY_PROCCESED: 40210,
  ICE_GATHER_CANDIDATES_ERROR: 40400,
  ICE_ADD_CANDIDATE_ERROR: 40401,
} as const;

export type ErrorType = keyof typeof ErrorCodes;

export interface JsonRpcErrorBody {
  code: number;
  message: string;
  data: { type: ErrorType; [key: string]: unknown };
}

export class KurentoError extends Error {
  readonly type: ErrorType;
  readonly code: number;
  readonly details: Record<string, unknown>;

  constructor(type: ErrorType, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "KurentoError";
    this.type = type;
    this.code = ErrorCodes[type];
    this.details = details;
  }

  toJson(): JsonRpcErrorBody {
    return { code: this.code, message: this.message, data: { type: this.type, ...this.details } };
  }
}

/** Anything thrown while serving a request becomes a JSON-RPC error body; internal faults keep their message so a caller can report it. */
export function toErrorBody(error: unknown): JsonRpcErrorBody {
  if (error instanceof KurentoError) return error.toJson();
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: ErrorCodes.UNEXPECTED_ERROR,
    message: `Unexpected error in the embedded media server: ${message}`,
    data: { type: "UNEXPECTED_ERROR" },
  };
}
