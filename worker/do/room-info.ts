/**
 * The admin REST API's view of a room and its per-stream unpublish target
 * (README "Moderation"), read off the room's state.
 */
import * as z from "zod";
import type { ParticipantInfo, RoomInfoResponse } from "../../protocol/rest.ts";
import { splitStreamId, streamIdOf, WEBCAM_STREAM } from "../../protocol/room.ts";
import { liveStreams, publishing } from "../core/streams.ts";
import type { Participant, RoomState } from "../core/types.ts";

export const adminActionBody = z.object({ user: z.string(), streamId: z.string().optional() });

export function roomInfo(state: RoomState): RoomInfoResponse {
  const participants: ParticipantInfo[] = [];
  for (const p of state.participants.values()) {
    participants.push({
      user: p.user,
      role: p.role,
      connected: p.disconnectedAt === null,
      publishing: publishing(p),
      streams: liveStreams(p).map((stream) => ({ id: streamIdOf(p.user, stream) })),
      // Subscriptions are keyed by the sender's stream id already.
      subscriptions: Object.entries(p.subscriptions).map(([stream, state]) => ({ stream, state })),
    });
  }
  return { room: state.room, participants };
}

/** Which stream of `them` an admin unpublish stops (`streamId` absent: the webcam), or why not (404, 409). */
export function adminUnpublishTarget(
  them: Participant,
  streamId: string | undefined,
): { stream: string } | { error: string; status: 404 | 409 } {
  const stream = streamId === undefined ? WEBCAM_STREAM : splitStreamId(streamId).stream;
  if (streamId !== undefined && streamId !== streamIdOf(them.user, stream)) {
    return { error: `Stream '${streamId}' is not a stream of '${them.user}'`, status: 404 };
  }
  if (!them.streams[stream]) {
    const what = stream === WEBCAM_STREAM ? "" : ` stream '${stream}'`;
    return { error: `User '${them.user}' is not publishing${what}`, status: 409 };
  }
  return { stream };
}
