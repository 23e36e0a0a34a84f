/**
 * Client requests that need the media bridge (publish, subscribe, ICE,
 * custom requests such as the hat filter) and the bridge's answers to them
 * (`mediaResult`), matched to the waiting request by its `ref`.
 */
import { RoomCode, rpcError, type RpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import { splitStreamId, WEBCAM_STREAM, type RequestParams } from "../../protocol/room.ts";
import type { MediaOutcome } from "./types.ts";
import { findByUser, WEBCAM_STREAMS, withoutSubscription, type StepBuilder } from "./step.ts";

export function publishVideo(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"publishVideo">,
): void {
  const me = b.member(session, id);
  if (!me) return;
  if (me.publish !== "none") {
    return b.fail(session, id, rpcError(RoomCode.USER_GENERIC, `User '${me.user}' is already publishing`));
  }
  b.putParticipant({ ...me, publish: "pending", loopback: p.doLoopback });
  b.forgetIceCandidates(session, me.user);
  b.mediaRequest(
    { session, id, op: "publish" },
    { op: "publish", user: me.user, sdpOffer: p.sdpOffer, loopback: p.doLoopback, dataChannels: me.dataChannels },
  );
}

export function unpublishVideo(b: StepBuilder, session: string, id: RequestId | null): void {
  const me = b.member(session, id);
  if (!me) return;
  if (me.publish !== "live") {
    return b.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, `User '${me.user}' is not publishing`));
  }
  b.stopPublishing(me);
  b.media({ op: "unpublish", user: me.user });
  b.reply(session, id, {});
  b.broadcast(session, { method: "participantUnpublished", params: { name: me.user } });
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
  if (stream !== WEBCAM_STREAM || sender.publish !== "live") {
    return b.fail(
      session,
      id,
      rpcError(RoomCode.USER_NOT_STREAMING, `User '${senderName}' is not streaming '${stream}'`),
    );
  }
  const current = me.subscriptions[senderName];
  if (current !== undefined) {
    const message = `User '${me.user}' is already receiving media from '${senderName}' (${current === "pending" ? "a request is in progress" : "live"}); unsubscribeFromVideo first`;
    return b.fail(session, id, rpcError(RoomCode.USER_GENERIC, message));
  }
  b.putParticipant({ ...me, subscriptions: { ...me.subscriptions, [senderName]: "pending" } });
  b.forgetIceCandidates(session, senderName);
  b.mediaRequest(
    { session, id, op: "subscribe", sender: senderName },
    { op: "subscribe", user: me.user, sender: senderName, sdpOffer: p.sdpOffer },
  );
}

export function unsubscribeFromVideo(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"unsubscribeFromVideo">,
): void {
  const me = b.member(session, id);
  if (!me) return;
  const { user: senderName } = splitStreamId(p.sender);
  if (!(senderName in me.subscriptions)) {
    const message = `User '${me.user}' is not receiving media from '${senderName}'`;
    return b.fail(session, id, rpcError(RoomCode.USER_GENERIC, message));
  }
  b.putParticipant(withoutSubscription(me, senderName));
  b.media({ op: "unsubscribe", user: me.user, sender: senderName });
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
  // Candidates may arrive before the SDP answer: a pending endpoint counts.
  const known = p.endpointName === me.user ? me.publish !== "none" : p.endpointName in me.subscriptions;
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
    endpoint: p.endpointName,
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
  b.mediaRequest({ session, id, op: "custom", data: outcome.data }, outcome.media);
}

/** The bridge answered the media command `ref`: finish the client request that waited for it. */
export function mediaResult(b: StepBuilder, ref: string, outcome: MediaOutcome): void {
  const pending = b.state.pending.get(ref);
  // The asker left (and its media was released) while the bridge was working.
  if (!pending) return;
  const pendingMap = new Map(b.state.pending);
  pendingMap.delete(ref);
  b.state = { ...b.state, pending: pendingMap };
  const me = b.state.participants.get(pending.session);
  if (!me) return;
  const { session, id } = pending;
  switch (pending.op) {
    case "publish": {
      if (me.publish !== "pending") {
        // Its media was reset meanwhile (mediaLost): drop what the bridge built and say so.
        if (outcome.ok) b.media({ op: "unpublish", user: me.user });
        const message = "Publishing was interrupted: the media connection was reset";
        return b.fail(session, id, rpcError(RoomCode.MEDIA_GENERIC, message));
      }
      const answer = sdpAnswerOf(outcome);
      if ("error" in answer) {
        b.putParticipant({ ...me, publish: "none", loopback: false });
        return b.fail(session, id, answer.error);
      }
      b.putParticipant({ ...me, publish: "live" });
      b.reply(session, id, { sdpAnswer: answer.sdp });
      b.broadcast(session, { method: "participantPublished", params: { id: me.user, streams: WEBCAM_STREAMS } });
      return;
    }
    case "subscribe": {
      const sender = pending.sender ?? "";
      if (me.subscriptions[sender] !== "pending") {
        if (outcome.ok) b.media({ op: "unsubscribe", user: me.user, sender });
        const message = `Receiving from '${sender}' was interrupted: the stream is gone`;
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

function sdpAnswerOf(outcome: MediaOutcome): { sdp: string } | { error: RpcError } {
  if (!outcome.ok) return { error: outcome.error };
  const value = outcome.value;
  if (typeof value === "object" && value !== null && "sdpAnswer" in value && typeof value.sdpAnswer === "string") {
    return { sdp: value.sdpAnswer };
  }
  return { error: rpcError(RoomCode.MEDIA_SDP, "Media server returned no SDP answer") };
}
