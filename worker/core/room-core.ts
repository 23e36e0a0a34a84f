/**
 * The room core: the Room SDK of this project. A pure function from
 * (state, input) to (state, effects); sockets, storage, clock and media live
 * in the adapters (worker/do/), so the core can be tested without any of them.
 *
 * This file routes an input to its handler; the handlers live by concern:
 * membership.ts (join, leave, chat, resume, close), media-requests.ts
 * (publish, subscribe, ICE, custom requests and their media results),
 * bridge-events.ts (what the media bridge reports), recording.ts (the room's
 * recording), step.ts (the shared primitives).
 */
import { JsonRpcCode, rpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import { describeIssues } from "../../protocol/jsonrpc.ts";
import { isRoomMethod, requestParams, type RequestParams, type RoomMethod } from "../../protocol/room.ts";
import type { CoreContext } from "./hooks.ts";
import type { Input, RoomState, Step } from "./types.ts";
import { nextDeadline, StepBuilder } from "./step.ts";
import {
  closeRoom,
  connect,
  expireDisconnected,
  joinRoom,
  leaveRoom,
  sendMessage,
  socketClosed,
} from "./membership.ts";
import {
  customRequest,
  expireMediaRequests,
  mediaResult,
  mediaGiveUp,
  onIceCandidate,
  publishVideo,
  receiveVideoFrom,
  setVideoQuality,
  unpublishVideo,
  unsubscribeFromVideo,
} from "./media-requests.ts";
import { mediaEvent } from "./bridge-events.ts";
import { adminAction, evictParticipant, forceUnpublish } from "./moderation.ts";
import { followStreams, recordingAction, recordingRefused, startRecording, stopRecording } from "./recording.ts";
import type { Grant } from "./types.ts";

export { findByUser, nextDeadline } from "./step.ts";

export function apply(state: RoomState, input: Input, ctx: CoreContext): Step {
  const step = new StepBuilder(state, ctx);
  switch (input.type) {
    case "request":
      request(step, input.session, input.id, input.method, input.params, input.grant ?? {});
      break;
    case "socketClosed":
      socketClosed(step, input.session);
      break;
    case "mediaResult":
      mediaResult(step, input.ref, input.outcome);
      break;
    case "mediaGiveUp":
      mediaGiveUp(step, input.ref, input.error);
      break;
    case "mediaEvent":
      mediaEvent(step, input.event);
      break;
    case "tick":
      expireMediaRequests(step);
      expireDisconnected(step);
      followStreams(step);
      // The alarm that delivered this tick is spent: always name the next one.
      step.effects.push({ kind: "alarm", at: nextDeadline(step.state, ctx.config.reconnectWindowMs) });
      return { state: step.state, effects: step.effects };
    case "close":
      closeRoom(step);
      break;
    case "admin":
      adminAction(step, input.action);
      break;
    case "recording":
      recordingAction(step, input.action);
      break;
    case "recordingRefused":
      recordingRefused(step, input.recording, input.file, input.reason);
      break;
  }
  // Whatever the input did to who publishes, the running recording's files follow it.
  followStreams(step);
  return step.finish();
}

type Handler<M extends RoomMethod> = (
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  params: RequestParams<M>,
  grant: Grant,
) => void;

/** One handler per protocol method: a method without one fails to compile. */
const HANDLERS = {
  joinRoom,
  publishVideo,
  unpublishVideo,
  receiveVideoFrom,
  unsubscribeFromVideo,
  setVideoQuality,
  onIceCandidate,
  leaveRoom,
  sendMessage,
  customRequest,
  ping: (b, session, id) => b.reply(session, id, { value: "pong" }),
  connect,
  evictParticipant,
  forceUnpublish,
  startRecording,
  stopRecording,
} satisfies { [M in RoomMethod]: Handler<M> };

function request(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  method: string,
  rawParams: unknown,
  grant: Grant,
): void {
  if (!isRoomMethod(method)) {
    // JSON-RPC: a notification is never answered, not even with an error.
    if (id !== null) b.fail(session, id, rpcError(JsonRpcCode.METHOD_NOT_FOUND, `Method not found: ${method}`));
    return;
  }
  const parsed = requestParams[method].safeParse(rawParams ?? {});
  if (!parsed.success) {
    b.fail(
      session,
      id,
      rpcError(JsonRpcCode.INVALID_PARAMS, `Invalid params for ${method}: ${describeIssues(parsed.error)}`),
    );
    return;
  }
  (HANDLERS[method] as Handler<typeof method>)(b, session, id, parsed.data as never, grant);
}
