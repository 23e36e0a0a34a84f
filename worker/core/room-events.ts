/**
 * The room's events for webhooks, read off two successive states (what an
 * input changed), not off the effects: whichever input seats, frees or
 * (un)publishes someone (a join, a leave, an expired window, an eviction, a
 * media loss, an admin close), the event follows from the state alone.
 */
import { streamIdOf } from "../../protocol/room.ts";
import type { WebhookEventType } from "../../protocol/webhooks.ts";
import type { RoomState } from "./types.ts";
import { liveStreams } from "./streams.ts";

export interface RoomEvent {
  readonly type: WebhookEventType;
  readonly data: {
    readonly user?: string;
    readonly streamId?: string;
    readonly recording?: string;
    readonly reason?: string;
  };
}

/**
 * In order: roomCreated first, then who joined, published, unpublished or left, roomClosed last;
 * a recording that started follows the streams it records, one that stopped comes before the
 * leave that stopped it.
 */
export function roomEvents(before: RoomState, after: RoomState): RoomEvent[] {
  if (before.participants === after.participants && before.recording === after.recording) return [];
  const stopped = before.recording && before.recording.id !== after.recording?.id ? before.recording.id : null;
  const started = after.recording && after.recording.id !== before.recording?.id ? after.recording.id : null;
  const events = participantEvents(before, after);
  if (stopped !== null) {
    // Before the departures and the room's close (the last leave or a close is what stops it).
    const firstDeparture = events.findIndex((e) => e.type === "participantLeft" || e.type === "roomClosed");
    const at = firstDeparture === -1 ? events.length : firstDeparture;
    events.splice(at, 0, { type: "recordingStopped", data: { recording: stopped } });
  }
  if (started !== null) events.push({ type: "recordingStarted", data: { recording: started } });
  return events;
}

function participantEvents(before: RoomState, after: RoomState): RoomEvent[] {
  if (before.participants === after.participants) return [];
  const events: RoomEvent[] = [];
  if (before.participants.size === 0 && after.participants.size > 0) events.push({ type: "roomCreated", data: {} });
  for (const [session, now] of after.participants) {
    const then = before.participants.get(session);
    if (then === now) continue;
    if (!then) events.push({ type: "participantJoined", data: { user: now.user } });
    // One event per stream (webcam, screen…) that went live or ended.
    const wasLive = then ? liveStreams(then) : [];
    const isLive = liveStreams(now);
    for (const stream of isLive) {
      if (!wasLive.includes(stream))
        events.push({ type: "streamPublished", data: { user: now.user, streamId: streamIdOf(now.user, stream) } });
    }
    for (const stream of wasLive) {
      if (!isLive.includes(stream))
        events.push({ type: "streamUnpublished", data: { user: now.user, streamId: streamIdOf(now.user, stream) } });
    }
  }
  for (const [session, then] of before.participants) {
    if (after.participants.has(session)) continue;
    for (const stream of liveStreams(then)) {
      events.push({ type: "streamUnpublished", data: { user: then.user, streamId: streamIdOf(then.user, stream) } });
    }
    events.push({ type: "participantLeft", data: { user: then.user } });
  }
  if (before.participants.size > 0 && after.participants.size === 0) events.push({ type: "roomClosed", data: {} });
  return events;
}
