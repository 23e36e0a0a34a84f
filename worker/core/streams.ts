/**
 * A participant's published streams (webcam, screen…) and who hears of
 * them. The original protocol knows one stream per participant, the webcam;
 * clients that join with `multiStream` know more. Everything another client
 * is told about streams goes through here, so the rule "a legacy client only
 * ever hears of webcams" lives in one place. Pure.
 */
import type { MediaCommand } from "../../protocol/bridge.ts";
import { type PeerDescriptor, splitStreamId, streamIdOf, WEBCAM_STREAM } from "../../protocol/room.ts";
import type { StepBuilder } from "./step.ts";
import type { Participant, PublishedStream, PublishState } from "./types.ts";

/** Where stream `stream` of `p` stands (`none`: not published). */
export function publishState(p: Participant | undefined, stream: string = WEBCAM_STREAM): PublishState {
  return p?.streams[stream]?.state ?? "none";
}

/** The names of `p`'s live streams, the webcam first (the order clients list them in). */
export function liveStreams(p: Participant): string[] {
  const names = Object.keys(p.streams).filter((s) => p.streams[s]?.state === "live");
  return names.sort((a, b) => (a === WEBCAM_STREAM ? -1 : b === WEBCAM_STREAM ? 1 : a < b ? -1 : a > b ? 1 : 0));
}

export function hasLiveStream(p: Participant): boolean {
  return Object.values(p.streams).some((s) => s.state === "live");
}

/** `p` with stream `stream` set to `value`, or removed (null). */
export function withStream(p: Participant, stream: string, value: PublishedStream | null): Participant {
  const { [stream]: _old, ...rest } = p.streams;
  return { ...p, streams: value === null ? rest : { ...rest, [stream]: value } };
}

/** What `viewer` is told `p` publishes: every live stream to a multiStream client, the webcam alone to others. */
export function visibleStreams(p: Participant, viewer: { multiStream: boolean }): Array<{ id: string }> {
  const live = liveStreams(p);
  const shown = viewer.multiStream ? live : live.filter((s) => s === WEBCAM_STREAM);
  return shown.map((id) => ({ id }));
}

/** `p` as a roster entry for `viewer` (joinRoom's and connect's `value`). */
export function peerFor(p: Participant, viewer: { multiStream: boolean }): PeerDescriptor {
  const streams = visibleStreams(p, viewer);
  return streams.length > 0 ? { id: p.user, streams } : { id: p.user };
}

/**
 * The ICE endpoint name of a stream, as clients use it in `onIceCandidate` and `iceCandidate`:
 * the user's name for its webcam (as the original), `<user>_<stream>` for any other stream.
 */
export function endpointNameOf(user: string, stream: string): string {
  return stream === WEBCAM_STREAM ? user : streamIdOf(user, stream);
}

/** The media command fields naming a stream: none for the webcam, so webcam commands are as they always were. */
export function streamField(stream: string): { stream?: string } {
  return stream === WEBCAM_STREAM ? {} : { stream };
}

/**
 * Which of `me`'s endpoints an `onIceCandidate {endpointName}` is for: its own stream or a
 * subscription; null when it has none of that name. A name that is both a user's webcam and
 * another user's `<user>_<stream>` (users `bob_screen` and `bob`) means the webcam, as it always did.
 */
export function endpointOf(me: Participant, endpointName: string): { user: string; stream: string } | null {
  // Candidates may arrive before the SDP answer: a pending endpoint counts.
  if (endpointName === me.user) return me.streams[WEBCAM_STREAM] ? { user: me.user, stream: WEBCAM_STREAM } : null;
  if (streamIdOf(endpointName) in me.subscriptions) return { user: endpointName, stream: WEBCAM_STREAM };
  const cut = endpointName.lastIndexOf("_");
  if (cut <= 0 || cut === endpointName.length - 1) return null;
  const { user, stream } = splitStreamId(endpointName);
  if (stream === WEBCAM_STREAM) return null;
  if (user === me.user) return me.streams[stream] ? { user, stream } : null;
  return endpointName in me.subscriptions ? { user, stream } : null;
}

/** `unpublish` (or `unsubscribe`) of one stream, for the bridge. */
export function unpublishCommand(user: string, stream: string): MediaCommand {
  return { op: "unpublish", user, ...streamField(stream) };
}

export function unsubscribeCommand(user: string, senderStreamId: string): MediaCommand {
  const { user: sender, stream } = splitStreamId(senderStreamId);
  return { op: "unsubscribe", user, sender, ...streamField(stream) };
}

/**
 * `me`'s stream `stream` went live: multiStream clients get every live stream of `me`; legacy
 * clients hear only of the webcam going live, listing only the webcam (exactly the original).
 */
export function announcePublished(b: StepBuilder, me: Participant, stream: string): void {
  b.broadcast(
    me.session,
    { method: "participantPublished", params: { id: me.user, streams: visibleStreams(me, { multiStream: true }) } },
    "multiStream",
  );
  if (stream === WEBCAM_STREAM) {
    b.broadcast(
      me.session,
      { method: "participantPublished", params: { id: me.user, streams: [{ id: WEBCAM_STREAM }] } },
      "legacy",
    );
  }
}

/**
 * `user`'s stream `stream` ended: multiStream clients are told which (`streamId`); legacy clients
 * only when it is the webcam, since they drop all of the user's media on `participantUnpublished`.
 */
export function announceUnpublished(b: StepBuilder, session: string, user: string, stream: string): void {
  const streamId = streamIdOf(user, stream);
  b.broadcast(session, { method: "participantUnpublished", params: { name: user, streamId } }, "multiStream");
  if (stream === WEBCAM_STREAM) {
    b.broadcast(session, { method: "participantUnpublished", params: { name: user } }, "legacy");
  }
}

/** One word for all of `p`'s streams (the admin view): `live` if any is, `pending` if any is negotiating. */
export function publishing(p: Participant): PublishState {
  const states = Object.values(p.streams).map((s) => s.state);
  return states.includes("live") ? "live" : states.includes("pending") ? "pending" : "none";
}
