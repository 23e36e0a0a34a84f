/**
 * The worker's REST API: the shape of every answer, so the worker can
 * `satisfies` what it sends and clients can validate what they get.
 */
import * as z from "zod";
import { iceServer } from "./ice-servers.ts";

/** `GET /getAllRooms`: the names of the open rooms. */
export const roomListResponse = z.array(z.string());
export type RoomListResponse = z.infer<typeof roomListResponse>;

/** `GET /getClientConfig`: the demo's options and the media filters every attached media server can apply. */
export const clientConfigResponse = z.object({
  loopbackRemote: z.boolean().default(false),
  loopbackAndLocal: z.boolean().default(false),
  filters: z.array(z.string()).default([]),
  /** STUN/TURN servers for pages that make peer connections before joining (TURN credentials for user `client-config`). */
  iceServers: z.array(iceServer).default([]),
  /** Whether participants may start and stop recordings themselves (ALLOW_RECORDING_FROM_CLIENTS). */
  recordingFromClients: z.boolean().optional(),
  /** Whether publishers may send simulcast (every attached media server forwards it by layer). */
  simulcast: z.boolean().optional(),
});
export type ClientConfigResponse = z.infer<typeof clientConfigResponse>;

/** `GET /health`. */
export const healthResponse = z.object({ status: z.literal("ok"), bridges: z.number().int().min(0) });
export type HealthResponse = z.infer<typeof healthResponse>;

/** `GET /close?room=`, on success. */
export const closeResponse = z.object({ room: z.string(), closed: z.literal(true) });
export type CloseResponse = z.infer<typeof closeResponse>;

/** Every refusal (4xx/5xx) carries one readable sentence. */
export const errorResponse = z.object({ error: z.string() });
export type ErrorResponse = z.infer<typeof errorResponse>;

// ── Moderation (admin token) ────────────────────────────────────────────────
/** One participant as `GET /api/rooms/:room` shows it. */
export const participantInfo = z.object({
  user: z.string(),
  role: z.enum(["participant", "moderator"]),
  /** False while its socket is gone (inside the reconnection window). */
  connected: z.boolean(),
  publishing: z.enum(["none", "pending", "live"]),
  /** Its published streams (`<user>_webcam` while live). */
  streams: z.array(z.object({ id: z.string() })),
  /** The streams it receives, with the state of each subscription. */
  subscriptions: z.array(z.object({ stream: z.string(), state: z.enum(["pending", "live"]) })),
});
export type ParticipantInfo = z.infer<typeof participantInfo>;

/** `GET /api/rooms/:room`. */
export const roomInfoResponse = z.object({ room: z.string(), participants: z.array(participantInfo) });
export type RoomInfoResponse = z.infer<typeof roomInfoResponse>;

/** `GET /api/rooms`: every open room with its participant count. */
export const roomsResponse = z.array(z.object({ room: z.string(), participants: z.number().int().min(0) }));
export type RoomsResponse = z.infer<typeof roomsResponse>;

/** `POST /api/rooms/:room/participants/:user/unpublish` body (optional). */
export const forceUnpublishBody = z.strictObject({ streamId: z.string().max(256).optional() });

/** `POST …/evict` and `POST …/unpublish`, on success. */
export const moderationResponse = z.object({
  room: z.string(),
  user: z.string(),
  done: z.enum(["evicted", "unpublished"]),
});
export type ModerationResponse = z.infer<typeof moderationResponse>;
