import { z } from "zod";
import { ErrorCodes, type JsonRpcErrorBody, KurentoError } from "./errors.ts";

// The Kurento Protocol: JSON-RPC 2.0 over WebSocket. This file is its only
// framing: every frame the server reads is decoded here and every frame it
// writes (replies, transaction results, onEvent notifications) is built here.
// Its schemas are the only way a frame's content reaches the rest of the server.

const jsonRpcId = z.union([z.number().int(), z.string().max(200)]);
const sessionId = z.string().min(1).max(200);
const objectId = z.string().min(1).max(500);
const paramBag = z.record(z.string(), z.unknown());

export type JsonRpcId = z.infer<typeof jsonRpcId>;

const requestFrameSchema = z.object({
  jsonrpc: z.literal("2.0"),
  id: jsonRpcId.optional(),
  method: z.string().min(1).max(100),
  params: paramBag.optional(),
});
export type RequestFrame = z.infer<typeof requestFrameSchema>;

/** Frames a server may ignore: the client's answers to server requests (there are none) and stray results. */
const responseFrameSchema = z
  .object({
    jsonrpc: z.literal("2.0"),
    id: jsonRpcId.nullable(),
    result: z.unknown().optional(),
    error: z.unknown().optional(),
  })
  .refine((frame) => "result" in frame || "error" in frame);

/** What one incoming text frame is: a request to serve, a frame to ignore, or garbage with its error reply. */
export type DecodedFrame =
  | { kind: "request"; request: RequestFrame }
  | { kind: "ignored" }
  | { kind: "invalid"; reply: ErrorFrame };

export function decodeFrame(text: string): DecodedFrame {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : "invalid JSON";
    return invalid(null, ErrorCodes.PARSE_ERROR, "PARSE_ERROR", `Parse error: ${reason}`);
  }
  if (Array.isArray(frame)) {
    return invalid(
      null,
      ErrorCodes.INVALID_REQUEST,
      "INVALID_REQUEST",
      "Invalid Request: batch requests are not supported by the Kurento protocol",
    );
  }
  if (typeof frame !== "object" || frame === null) {
    return invalid(
      null,
      ErrorCodes.INVALID_REQUEST,
      "INVALID_REQUEST",
      "Invalid Request: a frame must be a JSON-RPC 2.0 object",
    );
  }
  if (!("method" in frame) && responseFrameSchema.safeParse(frame).success) return { kind: "ignored" };
  const request = requestFrameSchema.safeParse(frame);
  if (!request.success) {
    const rawId = (frame as { id?: unknown }).id;
    const id = typeof rawId === "number" || typeof rawId === "string" ? rawId : null;
    const reason = describeIssues(request.error);
    return invalid(id, ErrorCodes.INVALID_REQUEST, "INVALID_REQUEST", `Invalid Request: ${reason}`);
  }
  return { kind: "request", request: request.data };
}

function invalid(
  id: JsonRpcId | null,
  code: number,
  type: "PARSE_ERROR" | "INVALID_REQUEST",
  message: string,
): DecodedFrame {
  return { kind: "invalid", reply: errorFrame(id, { code, message, data: { type } }) };
}

export interface ResultFrame {
  jsonrpc: "2.0";
  id: JsonRpcId;
  result: Record<string, unknown>;
}

export interface ErrorFrame {
  jsonrpc: "2.0";
  id: JsonRpcId | null;
  error: JsonRpcErrorBody;
}

/** What `result` holds: KMS answers void operations with `{sessionId}` and others with `{value, sessionId}`. */
export function resultFrame(id: JsonRpcId, result: Record<string, unknown>): ResultFrame {
  return { jsonrpc: "2.0", id, result };
}

export function errorFrame(id: JsonRpcId | null, error: JsonRpcErrorBody): ErrorFrame {
  return { jsonrpc: "2.0", id, error };
}

/** The notification KMS sends a subscriber when an object raises an event. */
export function eventFrame(object: string, type: string, data: Record<string, unknown>) {
  return { jsonrpc: "2.0", method: "onEvent", params: { value: { data, object, type } } } as const;
}

export function encodeFrame(frame: unknown): string {
  return JSON.stringify(frame);
}

export const methodParamSchemas = {
  ping: z.object({ interval: z.number().nonnegative().optional(), sessionId: sessionId.optional() }),
  connect: z.object({ sessionId: sessionId.optional() }),
  describe: z.object({ object: objectId, sessionId: sessionId.optional() }),
  create: z.object({
    type: z.string().min(1).max(100),
    constructorParams: paramBag.optional(),
    properties: paramBag.optional(),
    sessionId: sessionId.optional(),
  }),
  invoke: z.object({
    object: objectId,
    operation: z.string().min(1).max(100),
    operationParams: paramBag.optional(),
    sessionId: sessionId.optional(),
  }),
  subscribe: z.object({ object: objectId, type: z.string().min(1).max(100), sessionId: sessionId.optional() }),
  unsubscribe: z.object({
    object: objectId,
    subscription: z.string().min(1).max(200),
    sessionId: sessionId.optional(),
  }),
  release: z.object({ object: objectId, sessionId: sessionId.optional() }),
  transaction: z.object({
    operations: z
      .array(z.object({ method: z.string().min(1).max(100), params: paramBag.optional(), id: jsonRpcId.optional() }))
      .max(1000),
    sessionId: sessionId.optional(),
  }),
} as const;

export type RpcMethod = keyof typeof methodParamSchemas;
export type MethodParams<M extends RpcMethod> = z.infer<(typeof methodParamSchemas)[M]>;

export function isRpcMethod(method: string): method is RpcMethod {
  return Object.hasOwn(methodParamSchemas, method);
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(params)"}: ${issue.message}`)
    .join("; ");
}

/** Parses with a schema, turning a mismatch into the JSON-RPC invalid-params error that names the offending fields. */
export function parseParams<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) {
    throw new KurentoError("INVALID_PARAMS", `Invalid params for ${what}: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

export const mediaTypeSchema = z.enum(["AUDIO", "VIDEO", "DATA"]);
export type MediaType = z.infer<typeof mediaTypeSchema>;
export const MEDIA_TYPES: readonly MediaType[] = ["AUDIO", "VIDEO", "DATA"];

export const iceCandidateSchema = z.object({
  candidate: z.string().max(2000),
  sdpMid: z.string().max(100).nullish(),
  sdpMLineIndex: z.number().int().min(0).max(1000).nullish(),
});
