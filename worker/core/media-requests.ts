/**
 * Client requests that need the media bridge (publish, subscribe, ICE,
 * custom requests such as the hat filter) and the bridge's answers to them
 * (`mediaResult`), matched to the waiting request by its `ref`.
 */
import { RoomCode, rpcError, type RpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import {
  MAX_STREAMS_PER_PARTICIPANT,
  splitStreamId,
  streamIdOf,
  WEBCAM_STREAM,
  type RequestParams,
} from "../../protocol/room.ts";
import type { MediaOutcome, Participant, PendingMedia } from "./types.ts";
import { findByUser, withoutSubscription, type StepBuilder } from "./step.ts";
import {
  announcePublished,
  announceUnpublished,
  endpointNameOf,
  endpointOf,
  streamField,
  unpublishCommand,
  unsubscribeCommand,
  withStream,
} from "./streams.ts";

export function publishVideo(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"publishVideo">,
): void {
  const me = b.member(session, id);
  if (!me) return;
  const stream = p.streamId;
  if (me.streams[stream]) {
    // The original's words for its one stream; other streams are named.
    const message =
      stream === WEBCAM_STREAM
        ? `User '${me.user}' is already publishing`
        : `User '${me.user}' is already publishing stream '${stream}'`;
    return b.fail(session, id, rpcError(RoomCode.USER_GENERIC, message));
  }
  const count = Object.keys(me.streams).length;
  if (count >= MAX_STREAMS_PER_PARTICIPANT) {
    const message = `User '${me.user}' already publishes ${count} streams (at most ${MAX_STREAMS_PER_PARTICIPANT} per participant); unpublish one first`;
    return b.fail(session, id, rpcError(RoomCode.USER_GENERIC, message));
  }
  b.putParticipant(withStream(me, stream, { state: "pending", loopback: p.doLoopback }));
  b.forgetIceCandidates(session, endpointNameOf(me.user, stream));
  b.mediaRequest(
    { session, id, op: "publish", ...streamField(stream) },
    {
      op: "publish",
      user: me.user,
      ...streamField(stream),
      sdpOffer: p.sdpOffer,
      loopback: p.doLoopback,
      dataChannels: me.dataChannels,
    },
  );
}

export function unpublishVideo(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"unpublishVideo">,
): void {
  const me = b.member(session, id);
  if (!me) return;
  const stream = p.streamId;
  if (me.streams[stream]?.state !== "live") {
    const message =
      stream === WEBCAM_STREAM
        ? `User '${me.user}' is not publishing`
        : `User '${me.user}' is not publishing stream '${stream}'`;
    return b.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, message));
  }
  b.stopPublishing(me, stream);
  b.media(unpublishCommand(me.user, stream));
  b.reply(session, id, {});
  announceUnpublished(b, session, me.user, stream);
}

export function receiveVideoFrom(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"receiveVideoFrom">,
): void {
  const me = b.member(session, id);
  if (!me) return;
  const { user: senderName, stream } = splitStreamId(p.sender);
  if (senderName === me.user) {
    const message = "Cannot receive your own stream; publish with doLoopback to see it";
    return b.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, message));
  }
  const sender = findByUser(b.state, senderName);
  if (!sender) {
    return b.fail(
      session,
      id,
      rpcError(RoomCode.USER_NOT_FOUND, `User '${senderName}' not found in room '${b.state.room}'`),
    );
  }
  if (sender.streams[stream]?.state !== "live") {
    return b.fail(
      session,
      id,
      rpcError(RoomCode.USER_NOT_STREAMING, `User '${senderName}' is not streaming '${stream}'`),
    );
  }
  const senderStream = streamIdOf(senderName, stream);
  const current = me.subscriptions[senderStream];
  if (current !== undefined) {
    const what = stream === WEBCAM_STREAM ? `'${senderName}'` : `'${senderStream}'`;
    const message = `User '${me.user}' is already receiving media from ${what} (${current === "pending" ? "a request is in progress" : "live"}); unsubscribeFromVideo first`;
    return b.fail(session, id, rpcError(RoomCode.USER_GENERIC, message));
  }
  b.putParticipant({ ...me, subscriptions: { ...me.subscriptions, [senderStream]: "pending" } });
  b.forgetIceCandidates(session, endpointNameOf(senderName, stream));
  b.mediaRequest(
    { session, id, op: "subscribe", sender: senderStream },
    {
      op: "subscribe",
      user: me.user,
      sender: senderName,
      ...streamField(stream),
      sdpOffer: p.sdpOffer,
      ...(p.quality ? { quality: p.quality } : {}),
    },
  );
}

/**
 * The member asking and the stream it names (`alice` or `alice_screen`), if it receives that
 * stream; otherwise the request is failed with 101 and undefined returned.
 */
function subscriptionOf(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  sender: string,
):
  | { me: NonNullable<ReturnType<StepBuilder["member"]>>; senderName: string; stream: string; senderStream: string }
  | undefined {
  const me = b.member(session, id);
  if (!me) return undefined;
  const { user: senderName, stream } = splitStreamId(sender);
  const senderStream = streamIdOf(senderName, stream);
  if (!(senderStream in me.subscriptions)) {
    const what = stream === WEBCAM_STREAM ? `'${senderName}'` : `'${senderStream}'`;
    b.fail(session, id, rpcError(RoomCode.USER_GENERIC, `User '${me.user}' is not receiving media from ${what}`));
    return undefined;
  }
  return { me, senderName, stream, senderStream };
}

/**
 * Which simulcast layer `me` receives of a stream it subscribes to (or is subscribing to: the
 * bridge runs a user's commands in order, so this follows the subscribe). Answered at once: the
 * switch itself waits for a keyframe on the media server, and a server without simulcast has
 * nothing to switch.
 */
export function setVideoQuality(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"setVideoQuality">,
): void {
  const found = subscriptionOf(b, session, id, p.sender);
  if (!found) return;
  const { me, senderName, stream } = found;
  b.media({ op: "setVideoQuality", user: me.user, sender: senderName, ...streamField(stream), quality: p.quality });
  b.reply(session, id, {});
}

export function unsubscribeFromVideo(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"unsubscribeFromVideo">,
): void {
  const found = subscriptionOf(b, session, id, p.sender);
  if (!found) return;
  const { me, senderName, senderStream } = found;
  const inFlight = (entry: PendingMedia) =>
    entry.session === session && entry.op === "subscribe" && entry.sender === senderStream;
  if ([...b.state.pending.values()].some(inFlight)) {
    // The try in flight is given up (and undone on the bridge): its answer, if one still comes,
    // must not be taken for a later try.
    const message = `Receiving from '${senderName}' was interrupted: unsubscribed meanwhile`;
    b.abandonMediaRequestsOf(session, rpcError(RoomCode.MEDIA_GENERIC, message), inFlight);
  } else {
    b.media(unsubscribeCommand(me.user, senderStream));
  }
  const current = b.state.participants.get(session) ?? me;
  if (senderStream in current.subscriptions) b.putParticipant(withoutSubscription(current, senderStream));
  b.reply(session, id, {});
}

export function onIceCandidate(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"onIceCandidate">,
): void {
  const me = b.member(session, id);
  if (!me) return;
  const known = endpointOf(me, p.endpointName);
  if (!known) {
    const message = `No media endpoint '${p.endpointName}' for user '${me.user}'`;
    return b.fail(session, id, rpcError(RoomCode.MEDIA_ENDPOINT, message));
  }
  const { maxIceCandidates } = b.ctx.config;
  if (!b.countIceCandidate(session, p.endpointName, maxIceCandidates)) {
    const message = `Too many ICE candidates for endpoint '${p.endpointName}' (at most ${maxIceCandidates} per negotiation)`;
    return b.fail(session, id, rpcError(RoomCode.MEDIA_ENDPOINT, message));
  }
  b.media({
    op: "addIceCandidate",
    user: me.user,
    endpoint: known.user,
    ...streamField(known.stream),
    candidate: p.candidate,
    sdpMid: p.sdpMid ?? null,
    sdpMLineIndex: p.sdpMLineIndex,
  });
  b.reply(session, id, {});
}

/** Application-defined requests, through the `customRequest` hook (the demo's hat filter). */
export function customRequest(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  params: Record<string, unknown>,
): void {
  const me = b.member(session, id);
  if (!me) return;
  const handler = b.ctx.hooks.customRequest;
  if (!handler) return b.fail(session, id, rpcError(RoomCode.GENERIC, "customRequest is not supported by this server"));
  const outcome = handler.handle({ participant: me, params, state: b.state });
  if ("error" in outcome) return b.fail(session, id, outcome.error);
  if ("result" in outcome) {
    if (outcome.attributes) b.putParticipant({ ...me, attributes: outcome.attributes });
    return b.reply(session, id, outcome.result);
  }
  b.mediaRequest(
    { session, id, op: "custom", data: outcome.data, ...(outcome.undo ? { undo: outcome.undo } : {}) },
    outcome.media,
  );
}

/**
 * The bridge answered the media command `ref`: finish the client request that waited for it.
 * Matched by ref alone: a ref the room no longer waits for (it timed out, was unsubscribed, reset by
 * a media loss, or its asker left or dropped) was undone on the bridge when it was given up, so its
 * late answer changes nothing, and can never be taken for a newer request of the same user.
 */
export function mediaResult(b: StepBuilder, ref: string, outcome: MediaOutcome): void {
  const pending = b.state.pending.get(ref);
  if (!pending) return;
  const me = b.state.participants.get(pending.session);
  if (!me) return b.dropPending(ref);
  if (me.disconnectedAt !== null) {
    // The asker's socket is gone: it never gets the answer, so nobody may use what was built.
    // (socketClosed gives up its requests already; this covers rows stored before it did.)
    b.dropPending(ref);
    return interrupted(b, me, pending, outcome);
  }
  b.dropPending(ref);
  const { session, id } = pending;
  switch (pending.op) {
    case "publish": {
      const stream = pending.stream ?? WEBCAM_STREAM;
      const publication = me.streams[stream];
      if (publication?.state !== "pending") {
        // Its media was reset meanwhile: drop what the bridge built and say so.
        if (outcome.ok) b.media(unpublishCommand(me.user, stream));
        const message = "Publishing was interrupted: the media connection was reset";
        return b.fail(session, id, rpcError(RoomCode.MEDIA_GENERIC, message));
      }
      const answer = sdpAnswerOf(outcome);
      if ("error" in answer) {
        b.putParticipant(withStream(me, stream, null));
        return b.fail(session, id, answer.error);
      }
      const live = withStream(me, stream, { ...publication, state: "live" });
      b.putParticipant(live);
      b.reply(session, id, { sdpAnswer: answer.sdp });
      announcePublished(b, live, stream);
      return;
    }
    case "subscribe": {
      const sender = pending.sender ?? "";
      if (me.subscriptions[sender] !== "pending") {
        if (outcome.ok) b.media(unsubscribeCommand(me.user, sender));
        const message = `Receiving from '${splitStreamId(sender).user}' was interrupted: the stream is gone`;
        return b.fail(session, id, rpcError(RoomCode.MEDIA_GENERIC, message));
      }
      const answer = sdpAnswerOf(outcome);
      if ("error" in answer) {
        b.putParticipant(withoutSubscription(me, sender));
        return b.fail(session, id, answer.error);
      }
      b.putParticipant({ ...me, subscriptions: { ...me.subscriptions, [sender]: "live" } });
      return b.reply(session, id, { sdpAnswer: answer.sdp });
    }
    case "custom": {
      if (!outcome.ok) return b.fail(session, id, outcome.error);
      const handler = b.ctx.hooks.customRequest;
      if (handler) b.putParticipant({ ...me, attributes: handler.complete(me, pending.data ?? null) });
      return b.reply(session, id, {});
    }
  }
}

/** A result for an asker whose socket dropped: what it negotiated goes back to nothing, undone on the bridge; no answer, no broadcast. */
function interrupted(b: StepBuilder, me: Participant, pending: PendingMedia, outcome: MediaOutcome): void {
  switch (pending.op) {
    case "publish": {
      const stream = pending.stream ?? WEBCAM_STREAM;
      if (me.streams[stream]?.state === "pending") b.putParticipant(withStream(me, stream, null));
      if (outcome.ok) b.media(unpublishCommand(me.user, stream));
      return;
    }
    case "subscribe": {
      const sender = pending.sender ?? "";
      if (me.subscriptions[sender] === "pending") b.putParticipant(withoutSubscription(me, sender));
      if (outcome.ok) b.media(unsubscribeCommand(me.user, sender));
      return;
    }
    case "custom":
      if (outcome.ok && pending.undo) b.media(pending.undo);
      return;
  }
}

/** The room stops waiting for media request `ref` (deadline passed, or its link is gone): `error` to the asker, the command undone on the bridge. */
export function mediaGiveUp(b: StepBuilder, ref: string, error: RpcError): void {
  b.abandonMediaRequest(ref, error);
}

/**
 * The alarm: every media request past its deadline gets 301 and is undone on the bridge (the
 * adapter may have answered some already, worded by what it knows of them).
 */
export function expireMediaRequests(b: StepBuilder): void {
  const { now, config } = b.ctx;
  for (const [ref, pending] of b.state.pending) {
    if (pending.deadline > now) continue;
    const what = pending.op === "custom" ? "customRequest" : pending.op;
    b.abandonMediaRequest(ref, rpcError(RoomCode.MEDIA_GENERIC, `${what} timed out after ${config.mediaTimeoutMs} ms`));
  }
}

function sdpAnswerOf(outcome: MediaOutcome): { sdp: string } | { error: RpcError } {
  if (!outcome.ok) return { error: outcome.error };
  const value = outcome.value;
  if (typeof value === "object" && value !== null && "sdpAnswer" in value && typeof value.sdpAnswer === "string") {
    return { sdp: value.sdpAnswer };
  }
  return { error: rpcError(RoomCode.MEDIA_SDP, "Media server returned no SDP answer") };
}
