/**
 * Moderation: removing a participant or stopping its stream, by a moderator
 * in the room (a join token with `role: "moderator"`) or by the administrator
 * (the admin REST API). Everyone else is refused.
 */
import { RoomCode, rpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import { type RequestParams, splitStreamId, streamIdOf, WEBCAM_STREAM } from "../../protocol/room.ts";
import { CloseCode } from "../../protocol/close-codes.ts";
import { findByUser, type StepBuilder } from "./step.ts";
import type { AdminAction, Participant } from "./types.ts";

/** The moderator asking, or an error answer (and undefined) when the session may not moderate. */
function moderator(b: StepBuilder, session: string, id: RequestId | null, what: string): Participant | undefined {
  const me = b.member(session, id);
  if (!me) return undefined;
  if (me.role === "moderator") return me;
  const message = `Only moderators can ${what} (a join token with role 'moderator' grants it)`;
  b.fail(session, id, rpcError(RoomCode.USER_GENERIC, message));
  return undefined;
}

function target(b: StepBuilder, session: string, id: RequestId | null, user: string): Participant | undefined {
  const found = findByUser(b.state, user);
  if (!found)
    b.fail(session, id, rpcError(RoomCode.USER_NOT_FOUND, `User '${user}' not found in room '${b.state.room}'`));
  return found;
}

export function evictParticipant(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"evictParticipant">,
): void {
  const me = moderator(b, session, id, "evict participants");
  if (!me) return;
  const them = target(b, session, id, p.user);
  if (!them) return;
  if (them.session === me.session) {
    return b.fail(
      session,
      id,
      rpcError(RoomCode.USER_GENERIC, "Moderators leave with leaveRoom, not by evicting themselves"),
    );
  }
  evict(b, them, me.user);
  b.reply(session, id, {});
}

export function forceUnpublish(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"forceUnpublish">,
): void {
  const me = moderator(b, session, id, "stop other participants' streams");
  if (!me) return;
  const them = target(b, session, id, p.user);
  if (!them) return;
  if (p.streamId !== undefined) {
    const stream = splitStreamId(p.streamId);
    if (stream.user !== them.user || stream.stream !== WEBCAM_STREAM) {
      const message = `Stream '${p.streamId}' is not a stream of '${them.user}' (it publishes '${streamIdOf(them.user)}')`;
      return b.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, message));
    }
  }
  if (them.publish === "none") {
    return b.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, `User '${them.user}' is not publishing`));
  }
  unpublish(b, them, me.user);
  b.reply(session, id, {});
}

/** What the admin REST API asks for; the adapter checked that the user exists (and publishes, to unpublish). */
export function adminAction(b: StepBuilder, action: AdminAction): void {
  const them = findByUser(b.state, action.user);
  if (!them) return;
  if (action.kind === "evict") return evict(b, them, undefined);
  if (them.publish !== "none") unpublish(b, them, undefined);
}

/** `them` is told (with who did it), its socket closed, its seat and media released; the others get participantLeft. */
function evict(b: StepBuilder, them: Participant, by: string | undefined): void {
  if (them.disconnectedAt === null) {
    b.notify(them.session, { method: "participantEvicted", params: by === undefined ? {} : { by } });
    b.effects.push({ kind: "close", session: them.session, code: CloseCode.NORMAL, reason: "evicted" });
  }
  b.removeParticipant(them);
}

/** Its stream stops as if it had unpublished; it is told, the others get participantUnpublished. */
function unpublish(b: StepBuilder, them: Participant, by: string | undefined): void {
  const streamId = streamIdOf(them.user);
  if (them.publish === "pending") {
    // Still negotiating: the publish request fails (and is undone on the bridge).
    const message =
      by === undefined ? "Publishing was stopped by the administrator" : `Publishing was stopped by '${by}'`;
    b.abandonMediaRequestsOf(
      them.session,
      rpcError(RoomCode.MEDIA_GENERIC, message),
      (pending) => pending.op === "publish",
    );
    return;
  }
  b.stopPublishing(them);
  b.media({ op: "unpublish", user: them.user });
  if (them.disconnectedAt === null) {
    b.notify(them.session, {
      method: "streamForceUnpublished",
      params: by === undefined ? { streamId } : { streamId, by },
    });
  }
  b.broadcast(them.session, { method: "participantUnpublished", params: { name: them.user } });
}
