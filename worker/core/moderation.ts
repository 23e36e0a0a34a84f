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
import { announceUnpublished, unpublishCommand } from "./streams.ts";
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
  let stream = WEBCAM_STREAM;
  if (p.streamId !== undefined) {
    const named = splitStreamId(p.streamId);
    if (named.user !== them.user) {
      const message = `Stream '${p.streamId}' is not a stream of '${them.user}' (its streams are '${streamIdOf(them.user, "<stream>")}')`;
      return b.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, message));
    }
    stream = named.stream;
  }
  if (!them.streams[stream]) {
    const message =
      stream === WEBCAM_STREAM
        ? `User '${them.user}' is not publishing`
        : `User '${them.user}' is not publishing stream '${stream}'`;
    return b.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, message));
  }
  unpublish(b, them, stream, me.user);
  b.reply(session, id, {});
}

/** What the admin REST API asks for; the adapter checked that the user exists (and publishes, to unpublish). */
export function adminAction(b: StepBuilder, action: AdminAction): void {
  const them = findByUser(b.state, action.user);
  if (!them) return;
  if (action.kind === "evict") return evict(b, them, undefined);
  if (them.streams[action.stream]) unpublish(b, them, action.stream, undefined);
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
function unpublish(b: StepBuilder, them: Participant, stream: string, by: string | undefined): void {
  const streamId = streamIdOf(them.user, stream);
  if (them.streams[stream]?.state === "pending") {
    // Still negotiating: the publish request fails (and is undone on the bridge).
    const message =
      by === undefined ? "Publishing was stopped by the administrator" : `Publishing was stopped by '${by}'`;
    b.abandonMediaRequestsOf(
      them.session,
      rpcError(RoomCode.MEDIA_GENERIC, message),
      (pending) => pending.op === "publish" && (pending.stream ?? WEBCAM_STREAM) === stream,
    );
    return;
  }
  b.stopPublishing(them, stream);
  b.media(unpublishCommand(them.user, stream));
  if (them.disconnectedAt === null) {
    b.notify(them.session, {
      method: "streamForceUnpublished",
      params: by === undefined ? { streamId } : { streamId, by },
    });
  }
  announceUnpublished(b, them.session, them.user, stream);
}
