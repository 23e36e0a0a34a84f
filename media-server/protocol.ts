import { z } from "zod";
import { KurentoError } from "./errors.ts";

// The Kurento Protocol: JSON-RPC 2.0 over WebSocket. These schemas are the only
// way a frame's content reaches the rest of the server.

const jsonRpcId = z.union([z.number().int(), z.string().max(200)]);
const sessionId = z.string().min(1).max(200);
const objectId = z.string().min(1).max(500);
const paramBag = z.record(z.string(), z.unknown());

export const requestFrameSchema = z.object({
  jsonrpc: z.literal("2.0"),
  id: jsonRpcId.optional(),
  method: z.string().min(1).max(100),
  params: paramBag.optional(),
});
export type RequestFrame = z.infer<typeof requestFrameSchema>;

/** Frames a server may ignore: the client's answers to server requests (there are none) and stray results. */
export const responseFrameSchema = z.object({
  jsonrpc: z.literal("2.0"),
  id: jsonRpcId.nullable(),
  result: z.unknown().optional(),
  error: z.unknown().optional(),
}).refine((frame) => "result" in frame || "error" in frame);

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
  unsubscribe: z.object({ object: objectId, subscription: z.string().min(1).max(200), sessionId: sessionId.optional() }),
  release: z.object({ object: objectId, sessionId: sessionId.optional() }),
  transaction: z.object({
    operations: z.array(z.object({ method: z.string().min(1).max(100), params: paramBag.optional(), id: jsonRpcId.optional() })).max(1000),
    sessionId: sessionId.optional(),
  }),
} as const;

export type RpcMethod = keyof typeof methodParamSchemas;
export type MethodParams<M extends RpcMethod> = z.infer<(typeof methodParamSchemas)[M]>;

export function isRpcMethod(method: string): method is RpcMethod {
  return Object.hasOwn(methodParamSchemas, method);
}

export function describeIssues(error: z.ZodError): string {
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

/** What `result` holds: KMS answers void operations with `{sessionId}` and others with `{value, sessionId}`. */
export function resultBody(value: unknown, session: string | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (value !== undefined) body.value = value;
  if (session !== undefined) body.sessionId = session;
  return body;
}

export const mediaTypeSchema = z.enum(["AUDIO", "VIDEO", "DATA"]);
export type MediaType = z.infer<typeof mediaTypeSchema>;
export const MEDIA_TYPES: readonly MediaType[] = ["AUDIO", "VIDEO", "DATA"];

export const iceCandidateSchema = z.object({
  candidate: z.string().max(2000),
  sdpMid: z.string().max(100).nullish(),
  sdpMLineIndex: z.number().int().min(0).max(1000).nullish(),
});
