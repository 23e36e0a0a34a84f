/**
 * kurento-client failures (Kurento's numeric JSON-RPC codes, its timeout and
 * connection messages) as the bridge's MediaServerError kinds.
 */
import { MediaServerError } from "./media-server.ts";

const KURENTO_TYPE_NOT_FOUND = 40100;
const KURENTO_OBJECT_NOT_FOUND = 40101;
/** KMS's "SDP offer could not be processed" outside the 402xx range. */
const KURENTO_SDP_PARSE = 40005;

function codeOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  return JSON.stringify(error) ?? String(error);
}

/** Any failure of the kurento-client call `what` as a MediaServerError. */
export function classify(error: unknown, what: string): MediaServerError {
  if (error instanceof MediaServerError) return error;
  const code = codeOf(error);
  const message = messageOf(error);
  const text = `${what}: ${message}`;
  if (code === KURENTO_TYPE_NOT_FOUND) return new MediaServerError("unsupported", text, code);
  if (code === KURENTO_OBJECT_NOT_FOUND) return new MediaServerError("gone", text, code);
  if (code !== undefined && code >= 40200 && code < 40300) return new MediaServerError("sdp", text, code);
  if (code === KURENTO_SDP_PARSE) return new MediaServerError("sdp", text, code);
  if (code !== undefined && code >= 40400 && code < 40500) return new MediaServerError("ice", text, code);
  if (/timed out/i.test(message)) return new MediaServerError("timeout", text, code);
  if (/connection error|disconnected/i.test(message)) return new MediaServerError("unreachable", text, code);
  return new MediaServerError("other", text, code);
}
