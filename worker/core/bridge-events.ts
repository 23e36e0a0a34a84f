/**
 * What the media bridge tells the room on its own (not as an answer):
 * server ICE candidates, media errors, and media lost with a media server.
 */
import type { MediaEvent } from "../../protocol/bridge.ts";
import { RoomCode, rpcError } from "../../protocol/errors.ts";
import { streamIdOf } from "../../protocol/room.ts";
import type { Participant } from "./types.ts";
import { findByUser, type StepBuilder } from "./step.ts";
import { announceUnpublished, endpointNameOf } from "./streams.ts";

export function mediaEvent(b: StepBuilder, event: MediaEvent): void {
  switch (event.event) {
    case "iceCandidate": {
      const target = findByUser(b.state, event.user);
      if (!target || target.disconnectedAt !== null) return;
      const { endpoint, candidate, sdpMid, sdpMLineIndex } = event;
      const endpointName = event.stream === undefined ? endpoint : endpointNameOf(endpoint, event.stream);
      b.notify(target.session, {
        method: "iceCandidate",
        params: { endpointName, candidate, sdpMid: sdpMid ?? null, sdpMLineIndex },
      });
      return;
    }
    case "mediaError": {
      // The bridge may name the streams that failed; they reach the client as they are.
      const params =
        event.streams === undefined ? { error: event.error } : { error: event.error, streams: event.streams };
      const notification = { method: "mediaError", params } as const;
      if (event.user === undefined) return b.broadcast(null, notification);
      const target = findByUser(b.state, event.user);
      if (target && target.disconnectedAt === null) b.notify(target.session, notification);
      return;
    }
    case "mediaState":
      // Informational: nothing in the original protocol carries it to clients.
      return;
    case "mediaLost":
      return mediaLost(b, event.users, event.error);
  }
}

/**
 * The media server lost these users' endpoints (it restarted, or a new
 * bridge took the room over). Their streams are gone for everyone; each is
 * told with mediaError which of its streams are gone (its own, and those it
 * received) and can publish and subscribe again.
 */
function mediaLost(b: StepBuilder, users: readonly string[] | undefined, error: string): void {
  const affected: Participant[] = [];
  for (const p of b.state.participants.values()) {
    if (users !== undefined && !users.includes(p.user)) continue;
    if (Object.keys(p.streams).length > 0 || Object.keys(p.subscriptions).length > 0) affected.push(p);
  }
  for (const p of affected) {
    for (const stream of Object.keys(p.streams)) {
      const current = b.state.participants.get(p.session);
      if (current?.streams[stream]) b.stopPublishing(current, stream);
    }
    const after = b.state.participants.get(p.session);
    if (after && Object.keys(after.subscriptions).length > 0) b.putParticipant({ ...after, subscriptions: {} });
    for (const [stream, publication] of Object.entries(p.streams)) {
      if (publication.state === "live") announceUnpublished(b, p.session, p.user, stream);
    }
  }
  // Their negotiations in flight are reset too: an answer to one of them must not be taken for a
  // later try (the bridge is told to undo them, in case it still builds them).
  const reset = rpcError(RoomCode.MEDIA_GENERIC, "Interrupted: the media connection was reset; try again");
  for (const p of affected) b.abandonMediaRequestsOf(p.session, reset, (entry) => entry.op !== "custom");
  for (const p of affected) {
    if (p.disconnectedAt === null)
      b.notify(p.session, { method: "mediaError", params: { error, streams: lostStreams(p) } });
  }
}

/** The stream ids a participant had media for, as it was before the loss: its own, then its subscriptions'. */
function lostStreams(p: Participant): string[] {
  const own = Object.keys(p.streams).map((stream) => streamIdOf(p.user, stream));
  return [...own, ...Object.keys(p.subscriptions)];
}
