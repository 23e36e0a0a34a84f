/**
 * JSON-RPC 2.0 framing, shared by every WebSocket this project speaks
 * (clients ⇄ room, room ⇄ bridge). Decoding never throws: a bad frame becomes
 * a value describing the error to send back, so a socket stays usable.
 */
import * as z from "zod";
import { JsonRpcCode, rpcError, type RpcError } from "./errors.ts";

/** Frames larger than this are refused before parsing (an SDP offer is ~5–20 kB). */
export const MAX_FRAME_BYTES = 1024 * 1024;

export type RequestId = string | number;

const requestId = z.union([z.string().max(128), z.number().int()]);

const envelope = z.object({
  jsonrpc: z.literal("2.0"),
  method: z.string().min(1).max(128),
  id: requestId.optional(),
  // The original client sends `{}` or nothing for parameterless methods.
  params: z.unknown().optional(),
});

const responseEnvelope = z.object({
  jsonrpc: z.literal("2.0"),
  id: z.union([requestId, z.null()]),
  result: z.unknown().optional(),
  error: z.object({ code: z.number(), message: z.string(), data: z.unknown().optional() }).optional(),
});

export type Incoming =
  | { kind: "request"; id: RequestId; method: string; params: unknown }
  | { kind: "notification"; method: string; params: unknown }
  | { kind: "response"; id: RequestId | null; result?: unknown; error?: RpcError }
  | { kind: "invalid"; id: RequestId | null; error: RpcError };

function idOf(value: unknown): RequestId | null {
  if (typeof value !== "object" || value === null || !("id" in value)) return null;
  const id = (value as { id: unknown }).id;
  return typeof id === "string" || (typeof id === "number" && Number.isInteger(id)) ? id : null;
}

/** UTF-8 size of a frame; only large strings are measured exactly (a UTF-16 unit is 1–3 UTF-8 bytes). */
function frameBytes(frame: string | ArrayBuffer): number {
  if (typeof frame !== "string") return frame.byteLength;
  if (frame.length > MAX_FRAME_BYTES || frame.length * 3 <= MAX_FRAME_BYTES) return frame.length;
  return new TextEncoder().encode(frame).byteLength;
}

export function decodeFrame(frame: string | ArrayBuffer): Incoming {
  const size = frameBytes(frame);
  if (size > MAX_FRAME_BYTES) {
    return invalid(
      null,
      rpcError(JsonRpcCode.INVALID_REQUEST, `frame too large (${size} bytes, limit ${MAX_FRAME_BYTES})`),
    );
  }
  const text = typeof frame === "string" ? frame : new TextDecoder().decode(frame);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return invalid(null, rpcError(JsonRpcCode.PARSE_ERROR, "Parse error: frame is not valid JSON"));
  }
  if (Array.isArray(value)) {
    return invalid(null, rpcError(JsonRpcCode.INVALID_REQUEST, "Invalid request: batch requests are not supported"));
  }
  if (typeof value !== "object" || value === null) {
    return invalid(null, rpcError(JsonRpcCode.INVALID_REQUEST, "Invalid request: a frame must be a JSON object"));
  }
  if ("method" in value) {
    const parsed = envelope.safeParse(value);
    if (!parsed.success) {
      return invalid(
        idOf(value),
        rpcError(JsonRpcCode.INVALID_REQUEST, `Invalid request: ${describeIssues(parsed.error)}`),
      );
    }
    const { id, method, params } = parsed.data;
    return id === undefined ? { kind: "notification", method, params } : { kind: "request", id, method, params };
  }
  const parsed = responseEnvelope.safeParse(value);
  if (!parsed.success || (parsed.data.result === undefined && parsed.data.error === undefined)) {
    return invalid(
      idOf(value),
      rpcError(JsonRpcCode.INVALID_REQUEST, "Invalid request: neither a request nor a response"),
    );
  }
  const { id, result, error } = parsed.data;
  return error ? { kind: "response", id, error } : { kind: "response", id, result };
}

function invalid(id: RequestId | null, error: RpcError): Incoming {
  return { kind: "invalid", id, error };
}

/** One line naming each offending field, e.g. `params.user: Too small`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join(".");
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}

export function encodeResult(id: RequestId, result: unknown): string {
  return JSON.stringify({ id, result, jsonrpc: "2.0" });
}

export function encodeError(id: RequestId | null, error: RpcError): string {
  return JSON.stringify({ id, error, jsonrpc: "2.0" });
}

export function encodeNotification(method: string, params: unknown): string {
  return JSON.stringify({ method, params, jsonrpc: "2.0" });
}

export function encodeRequest(id: RequestId, method: string, params: unknown): string {
  return JSON.stringify({ id, method, params, jsonrpc: "2.0" });
}
