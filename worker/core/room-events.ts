/**
 * The room's events for webhooks, read off two successive states (what an
 * input changed), not off the effects: whichever input seats, frees or
 * (un)publishes someone (a join, a leave, an expired window, an eviction, a
 * media loss, an admin close), the event follows from the state alone.
 */
import { streamIdOf } from "../../protocol/room.ts";
import type { WebhookEventType } from "../../protocol/webhooks.ts";
import type { RoomState } from "./types.ts";

export interface RoomEvent {
  readonly type: WebhookEventType;
  readonly data: { readonly user?: string; readonly streamId?: string };
}

/** In order: roomCreated first, then who joined, published, unpublished or left, roomClosed last. */
export function roomEvents(before: RoomState, after: RoomState): RoomEvent[] {
  if (before.participants === after.participants) return [];
  const events: RoomEvent[] = [];
  if (before.participants.size === 0 && after.participants.size > 0) events.push({ type: "roomCreated", data: {} });
  for (const [session, now] of after.participants) {
    const then = before.participants.get(session);
    if (then === now) continue;
    if (!then) events.push({ type: "participantJoined", data: { user: now.user } });
    const wasLive = then?.publish === "live";
    const isLive = now.publish === "live";
    if (!wasLive && isLive)
      events.push({ type: "streamPublished", data: { user: now.user, streamId: streamIdOf(now.user) } });
    if (wasLive && !isLive)
      events.push({ type: "streamUnpublished", data: { user: now.user, streamId: streamIdOf(now.user) } });
  }
  for (const [session, then] of before.participants) {
    if (after.participants.has(session)) continue;
    if (then.publish === "live") {
      events.push({ type: "streamUnpublished", data: { user: then.user, streamId: streamIdOf(then.user) } });
    }
    events.push({ type: "participantLeft", data: { user: then.user } });
  }
  if (before.participants.size > 0 && after.participants.size === 0) events.push({ type: "roomClosed", data: {} });
  return events;
}
