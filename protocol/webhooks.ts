/**
 * Webhooks: what the worker POSTs to each `WEBHOOK_URLS` receiver, how it
 * signs it, and how a receiver checks it (README "Webhooks"; a sample
 * receiver is in examples/webhook-receiver.ts).
 *
 * The signature covers the timestamp and the body:
 *   X-Room-Timestamp: <unix seconds when this attempt was sent>
 *   X-Room-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, "<timestamp>.<body>")>
 * so a captured request cannot be replayed later than the receiver's
 * tolerance (5 minutes by default), and a body cannot be changed.
 */
import * as z from "zod";
import { constantTimeEqual } from "./tokens/constant-time.ts";
import { hmac } from "./tokens/hmac.ts";

export const WEBHOOK_EVENT_TYPES = [
  "roomCreated",
  "roomClosed",
  "participantJoined",
  "participantLeft",
  "streamPublished",
  "streamUnpublished",
  "recordingStarted",
  "recordingStopped",
  /** From the recording ledger, once every file is delivered (`seq`: see `webhookEvent`). */
  "recordingReady",
  /** From the recording ledger, once every file is settled and one failed (`data.reason` says which). */
  "recordingFailed",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const SIGNATURE_HEADER = "x-room-signature";
export const TIMESTAMP_HEADER = "x-room-timestamp";
/** The event's id again, so a receiver can drop a duplicate before parsing the body. */
export const EVENT_ID_HEADER = "x-room-event-id";
/** How far a request's timestamp may be from the receiver's clock. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export const webhookEvent = z.object({
  /** Unique per event; a retry carries the same id (delivery is at least once). */
  id: z.string(),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  room: z.string(),
  /** When it happened (ms since the epoch). */
  timestamp: z.number(),
  /**
   * The room's own order of events (per room, starting at 1): a receiver can sort or spot a gap.
   * `recordingReady` and `recordingFailed` come from the recording ledger, which outlives rooms:
   * they are numbered in the ledger's own sequence (across rooms), not the room's.
   */
  seq: z.number().int().min(1),
  data: z.object({
    user: z.string().optional(),
    streamId: z.string().optional(),
    /** The recording's id (`recording*` events). */
    recording: z.string().optional(),
    /** Why a recording failed (`recordingFailed`). */
    reason: z.string().optional(),
  }),
});
export type WebhookEvent = z.infer<typeof webhookEvent>;

async function hmacHex(secret: string, text: string): Promise<string> {
  let hex = "";
  for (const byte of await hmac(secret, text)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** The `X-Room-Signature` value for `body` sent at `timestampSeconds`. */
export async function signWebhook(secret: string, timestampSeconds: number, body: string): Promise<string> {
  return `sha256=${await hmacHex(secret, `${timestampSeconds}.${body}`)}`;
}

export type WebhookCheck = { ok: true; event: WebhookEvent } | { ok: false; reason: string };

/** What a receiver does with a request: signature, timestamp, then the body's shape. */
export async function verifyWebhook(
  secret: string,
  request: { signature: string | null | undefined; timestamp: string | null | undefined; body: string },
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): Promise<WebhookCheck> {
  const timestamp = Number(request.timestamp);
  if (!request.timestamp || !Number.isInteger(timestamp))
    return { ok: false, reason: "missing or malformed timestamp" };
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return { ok: false, reason: "timestamp too far from now" };
  const expected = await signWebhook(secret, timestamp, request.body);
  if (!request.signature || !constantTimeEqual(request.signature, expected))
    return { ok: false, reason: "bad signature" };
  let raw: unknown;
  try {
    raw = JSON.parse(request.body);
  } catch {
    return { ok: false, reason: "body is not JSON" };
  }
  const parsed = webhookEvent.safeParse(raw);
  return parsed.success ? { ok: true, event: parsed.data } : { ok: false, reason: "not a room event" };
}
