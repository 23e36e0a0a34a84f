/**
 * Who is in the room: joining, leaving, chat, resuming a session on a new
 * socket, a dropped socket's reconnection window, and closing the room.
 */
import { INVALID_SESSION_CODE, RoomCode, rpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import type { PeerDescriptor, RequestParams } from "../../protocol/room.ts";
import { CloseCode } from "../../protocol/close-codes.ts";
import { findByUser, type StepBuilder } from "./step.ts";
import { peerFor } from "./streams.ts";
import type { Grant } from "./types.ts";
import { announceRecording, endRecording } from "./recording.ts";

export function joinRoom(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"joinRoom">,
  grant: Grant = {},
): void {
  const role = grant.role ?? "participant";
  const { room } = b.state;
  const existing = b.state.participants.get(session);
  if (existing) {
    return b.fail(session, id, rpcError(RoomCode.USER_GENERIC, `Already joined room '${room}' as '${existing.user}'`));
  }
  if (p.room !== room) {
    return b.fail(
      session,
      id,
      rpcError(RoomCode.ROOM_GENERIC, `This connection belongs to room '${room}', not '${p.room}'`),
    );
  }
  if (findByUser(b.state, p.user)) {
    return b.fail(
      session,
      id,
      rpcError(RoomCode.EXISTING_USER_IN_ROOM, `User '${p.user}' already exists in room '${room}'`),
    );
  }
  const { maxParticipants } = b.ctx.config;
  if (b.state.participants.size >= maxParticipants) {
    const message = `Room '${room}' is full (at most ${maxParticipants} participants)`;
    return b.fail(session, id, rpcError(RoomCode.ROOM_GENERIC, message));
  }
  const creating = b.state.participants.size === 0;
  if (creating && !b.ctx.config.authRegex.test(p.user)) {
    const message = `User '${p.user}' is not allowed to create room '${room}'`;
    return b.fail(session, id, rpcError(RoomCode.ROOM_CANNOT_BE_CREATED, message));
  }
  const refusal = b.ctx.hooks.authorizeJoin?.({ user: p.user, room, creating });
  if (refusal) return b.fail(session, id, refusal);

  const multiStream = p.multiStream ?? false;
  const peers = peersOf(b, session, multiStream);
  b.putParticipant({
    session,
    user: p.user,
    multiStream,
    streams: {},
    dataChannels: p.dataChannels ?? false,
    subscriptions: {},
    attributes: {},
    disconnectedAt: null,
    role,
  });
  if (creating) b.effects.push({ kind: "directory", open: true });
  // The original order: the others hear of the newcomer before it gets its answer.
  b.broadcast(session, { method: "participantJoined", params: { id: p.user } });
  // Additions the original client ignores: `role` only for moderators, `iceServers` when configured.
  b.reply(session, id, {
    value: peers,
    ...(role === "moderator" ? { role } : {}),
    ...(grant.iceServers?.length ? { iceServers: grant.iceServers } : {}),
    // Only when true: a room without simulcast answers as it always did.
    ...(grant.simulcast ? { simulcast: true } : {}),
  });
  announceRecording(b, session);
}

export function leaveRoom(b: StepBuilder, session: string, id: RequestId | null): void {
  const me = b.member(session, id);
  if (!me) return;
  b.removeParticipant(me);
  b.reply(session, id, {});
  b.effects.push({ kind: "close", session, code: CloseCode.NORMAL, reason: "left the room" });
}

export function sendMessage(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"sendMessage">,
): void {
  const me = b.member(session, id);
  if (!me) return;
  const { room } = b.state;
  if (p.userMessage !== me.user) {
    const message = `Message sender '${p.userMessage}' is not this session's user '${me.user}'`;
    return b.fail(session, id, rpcError(RoomCode.USER_NOT_FOUND, message));
  }
  if (p.roomMessage !== room) {
    const message = `Room '${p.roomMessage}' not found (this session is in '${room}')`;
    return b.fail(session, id, rpcError(RoomCode.ROOM_NOT_FOUND, message));
  }
  b.reply(session, id, {});
  b.broadcast(null, { method: "sendMessage", params: { room, user: me.user, message: p.message } });
}

/** Resumes the seat of `sessionId` on this socket (kurento-jsonrpc's `connect`). */
export function connect(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"connect">,
  grant: Grant = {},
): void {
  const target = p.sessionId;
  if (target === undefined || target === session) return b.reply(session, id, {});
  const resumed = b.state.participants.get(target);
  if (!resumed) {
    return b.fail(
      session,
      id,
      rpcError(INVALID_SESSION_CODE, "Invalid session: unknown, or its reconnection window has expired"),
    );
  }
  if (b.state.participants.has(session)) {
    const message = "This connection already joined the room; it cannot resume another session";
    return b.fail(session, id, rpcError(RoomCode.USER_GENERIC, message));
  }
  b.effects.push({ kind: "bind", from: session, to: target });
  // Requests still in flight belong to the socket that sent them, which is gone (or is being
  // replaced now): their answers must not reach this one under ids it never used.
  b.abandonMediaRequestsOf(target, null);
  const current = b.state.participants.get(target) ?? resumed;
  if (current.disconnectedAt !== null) b.putParticipant({ ...current, disconnectedAt: null });
  // Notifications sent while the socket was gone are lost: the roster as it is
  // now (like joinRoom's) lets the client catch up on joins, leaves and streams.
  b.reply(target, id, {
    value: peersOf(b, target, current.multiStream),
    ...(grant.iceServers?.length ? { iceServers: grant.iceServers } : {}),
  });
  announceRecording(b, target);
}

/** Everyone but `session`, as joinRoom's answer lists them: only webcams unless the viewer is `multiStream`. */
function peersOf(b: StepBuilder, session: string, multiStream: boolean): PeerDescriptor[] {
  const peers: PeerDescriptor[] = [];
  for (const other of b.state.participants.values()) {
    if (other.session !== session) peers.push(peerFor(other, { multiStream }));
  }
  return peers;
}

/** The socket dropped: the seat is kept for the reconnection window (or freed now when it is 0). */
export function socketClosed(b: StepBuilder, session: string): void {
  const me = b.state.participants.get(session);
  if (!me || me.disconnectedAt !== null) return;
  if (b.ctx.config.reconnectWindowMs <= 0) return b.removeParticipant(me);
  b.putParticipant({ ...me, disconnectedAt: b.ctx.now });
  // Its media requests in flight die with the socket: nobody can read their answers (an SDP
  // answer the client never gets makes an endpoint nobody can use), so the room stops waiting and
  // tells the bridge to undo them. Live media is kept for the window.
  b.abandonMediaRequestsOf(session, null);
}

export function expireDisconnected(b: StepBuilder): void {
  const windowMs = b.ctx.config.reconnectWindowMs;
  for (const p of b.state.participants.values()) {
    if (p.disconnectedAt !== null && p.disconnectedAt + windowMs <= b.ctx.now) b.removeParticipant(p);
  }
}

/** The administrator closed the room: everyone connected is evicted, the media released. */
export function closeRoom(b: StepBuilder): void {
  const room = b.state.room;
  if (b.state.participants.size === 0) return;
  // Everyone still connected hears that the recording stopped before the room closes.
  endRecording(b);
  for (const p of b.state.participants.values()) {
    if (p.disconnectedAt !== null) continue;
    b.notify(p.session, { method: "participantEvicted", params: {} });
    b.notify(p.session, { method: "roomClosed", params: { room } });
    b.effects.push({ kind: "close", session: p.session, code: CloseCode.NORMAL, reason: "room closed" });
  }
  b.state = { ...b.state, participants: new Map(), pending: new Map(), iceCandidates: new Map() };
  b.media({ op: "releaseRoom" });
  b.effects.push({ kind: "directory", open: false });
}
