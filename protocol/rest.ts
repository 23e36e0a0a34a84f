/**
 * The worker's REST API: the shape of every answer, so the worker can
 * `satisfies` what it sends and clients can validate what they get.
 */
import * as z from "zod";

/** `GET /getAllRooms`: the names of the open rooms. */
export const roomListResponse = z.array(z.string());
export type RoomListResponse = z.infer<typeof roomListResponse>;

/** `GET /getClientConfig`: the demo's options and the media filters every attached media server can apply. */
export const clientConfigResponse = z.object({
  loopbackRemote: z.boolean().default(false),
  loopbackAndLocal: z.boolean().default(false),
  filters: z.array(z.string()).default([]),
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
