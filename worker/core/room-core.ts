/**
 * The room core: the Room SDK of this project. A pure function from
 * (state, input) to (state, effects); sockets, storage, clock and media live
 * in the adapters (DESIGN §8). Tests drive it directly.
 *
 * State is immutable and shared structurally: an input that changes nothing
 * (chat, ping, ICE) returns the same state object, so the adapter knows there
 * is nothing to persist.
 */
import { INVALID_SESSION_CODE, JsonRpcCode, RoomCode, rpcError, type RpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import { describeIssues } from "../../protocol/jsonrpc.ts";
import {
  isRoomMethod,
  requestParams,
  splitStreamId,
  WEBCAM_STREAM,
  type Notification,
  type PeerDescriptor,
  type RequestParams,
  type RoomMethod,
} from "../../protocol/room.ts";
import type { MediaCommand, MediaEvent } from "../../protocol/bridge.ts";
import type { CoreContext } from "./hooks.ts";
import type { Effect, Input, MediaOutcome, Participant, PendingMedia, RoomState, Step } from "./types.ts";

const WEBCAM_STREAMS = [{ id: WEBCAM_STREAM }];
/** Close code sent after leaveRoom, eviction and room close: a normal, intended end. */
export const CLOSE_NORMAL = 1000;

export function apply(state: RoomState, input: Input, ctx: CoreContext): Step {
  const step = new StepBuilder(state, ctx);
  switch (input.type) {
    case "request":
      step.request(input.session, input.id, input.method, input.params);
      break;
    case "socketClosed":
      step.socketClosed(input.session);
      break;
    case "mediaResult":
      step.mediaResult(input.ref, input.outcome);
      break;
    case "mediaEvent":
      step.mediaEvent(input.event);
      break;
    case "tick":
      step.expireDisconnected();
      // The alarm that delivered this tick is spent: always name the next one.
      step.effects.push({ kind: "alarm", at: nextDeadline(step.state, ctx.config.reconnectWindowMs) });
      return { state: step.state, effects: step.effects };
    case "close":
      step.closeRoom();
      break;
  }
  return step.finish();
}

/** Earliest moment a dropped participant's seat expires, or null. */
export function nextDeadline(state: RoomState, windowMs: number): number | null {
  let at: number | null = null;
  for (const p of state.participants.values()) {
    if (p.disconnectedAt !== null && (at === null || p.disconnectedAt + windowMs < at)) at = p.disconnectedAt + windowMs;
  }
  return at;
}

export function findByUser(state: RoomState, user: string): Participant | undefined {
  for (const p of state.participants.values()) if (p.user === user) return p;
  return undefined;
}

type Handler<M extends RoomMethod> = (step: StepBuilder, session: string, id: RequestId | null, params: RequestParams<M>) => void;

/** One handler per protocol method: a method without one fails to compile. Module-level, so a request allocates no closures. */
const HANDLERS = {
  joinRoom: (b, session, id, p) => b.joinRoom(session, id, p),
  publishVideo: (b, session, id, p) => b.publishVideo(session, id, p),
  unpublishVideo: (b, session, id) => b.unpublishVideo(session, id),
  receiveVideoFrom: (b, session, id, p) => b.receiveVideoFrom(session, id, p),
  unsubscribeFromVideo: (b, session, id, p) => b.unsubscribeFromVideo(session, id, p),
  onIceCandidate: (b, session, id, p) => b.onIceCandidate(session, id, p),
  leaveRoom: (b, session, id) => b.leaveRoom(session, id),
  sendMessage: (b, session, id, p) => b.sendMessage(session, id, p),
  customRequest: (b, session, id, p) => b.customRequest(session, id, p),
  ping: (b, session, id) => b.reply(session, id, { value: "pong" }),
  connect: (b, session, id, p) => b.connect(session, id, p),
} satisfies { [M in RoomMethod]: Handler<M> };

class StepBuilder {
  state: RoomState;
  readonly effects: Effect[] = [];
  readonly initial: RoomState;
  readonly ctx: CoreContext;

  constructor(state: RoomState, ctx: CoreContext) {
    this.state = state;
    this.initial = state;
    this.ctx = ctx;
  }

  finish(): Step {
    if (this.state !== this.initial) {
      const windowMs = this.ctx.config.reconnectWindowMs;
      const before = nextDeadline(this.initial, windowMs);
      const after = nextDeadline(this.state, windowMs);
      if (before !== after) this.effects.push({ kind: "alarm", at: after });
    }
    return { state: this.state, effects: this.effects };
  }

  // ── requests ──────────────────────────────────────────────────────────────
  request(session: string, id: RequestId | null, method: string, rawParams: unknown): void {
    if (!isRoomMethod(method)) {
      // JSON-RPC: a notification is never answered, not even with an error.
      if (id !== null) this.fail(session, id, rpcError(JsonRpcCode.METHOD_NOT_FOUND, `Method not found: ${method}`));
      return;
    }
    const parsed = requestParams[method].safeParse(rawParams ?? {});
    if (!parsed.success) {
      this.fail(session, id, rpcError(JsonRpcCode.INVALID_PARAMS, `Invalid params for ${method}: ${describeIssues(parsed.error)}`));
      return;
    }
    (HANDLERS[method] as Handler<typeof method>)(this, session, id, parsed.data as never);
  }

  joinRoom(session: string, id: RequestId | null, p: RequestParams<"joinRoom">): void {
    const { room } = this.state;
    const existing = this.state.participants.get(session);
    if (existing) {
      return this.fail(session, id, rpcError(RoomCode.USER_GENERIC, `Already joined room '${room}' as '${existing.user}'`));
    }
    if (p.room !== room) {
      return this.fail(session, id, rpcError(RoomCode.ROOM_GENERIC, `This connection belongs to room '${room}', not '${p.room}'`));
    }
    if (findByUser(this.state, p.user)) {
      return this.fail(session, id, rpcError(RoomCode.EXISTING_USER_IN_ROOM, `User '${p.user}' already exists in room '${room}'`));
    }
    const creating = this.state.participants.size === 0;
    if (creating && !this.ctx.config.authRegex.test(p.user)) {
      return this.fail(
        session,
        id,
        rpcError(RoomCode.ROOM_CANNOT_BE_CREATED, `User '${p.user}' is not allowed to create room '${room}'`),
      );
    }
    const refusal = this.ctx.hooks.authorizeJoin?.({ user: p.user, room, creating });
    if (refusal) return this.fail(session, id, refusal);

    const peers = this.peersOf(session);
    this.putParticipant({
      session,
      user: p.user,
      publish: "none",
      loopback: false,
      dataChannels: p.dataChannels ?? false,
      subscriptions: {},
      attributes: {},
      disconnectedAt: null,
    });
    if (creating) this.effects.push({ kind: "directory", open: true });
    // The original order: the others hear of the newcomer before it gets its answer.
    this.broadcast(session, { method: "participantJoined", params: { id: p.user } });
    this.reply(session, id, { value: peers });
  }

  publishVideo(session: string, id: RequestId | null, p: RequestParams<"publishVideo">): void {
    const me = this.member(session, id);
    if (!me) return;
    if (me.publish !== "none") {
      return this.fail(session, id, rpcError(RoomCode.USER_GENERIC, `User '${me.user}' is already publishing`));
    }
    this.putParticipant({ ...me, publish: "pending", loopback: p.doLoopback });
    this.mediaRequest({ session, id, op: "publish" }, {
      op: "publish",
      user: me.user,
      sdpOffer: p.sdpOffer,
      loopback: p.doLoopback,
      dataChannels: me.dataChannels,
    });
  }

  unpublishVideo(session: string, id: RequestId | null): void {
    const me = this.member(session, id);
    if (!me) return;
    if (me.publish !== "live") {
      return this.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, `User '${me.user}' is not publishing`));
    }
    this.stopPublishing(me);
    this.media({ op: "unpublish", user: me.user });
    this.reply(session, id, {});
    this.broadcast(session, { method: "participantUnpublished", params: { name: me.user } });
  }

  receiveVideoFrom(session: string, id: RequestId | null, p: RequestParams<"receiveVideoFrom">): void {
    const me = this.member(session, id);
    if (!me) return;
    const { user: senderName, stream } = splitStreamId(p.sender);
    if (senderName === me.user) {
      return this.fail(
        session,
        id,
        rpcError(RoomCode.USER_NOT_STREAMING, "Cannot receive your own stream; publish with doLoopback to see it"),
      );
    }
    const sender = findByUser(this.state, senderName);
    if (!sender) return this.fail(session, id, rpcError(RoomCode.USER_NOT_FOUND, `User '${senderName}' not found in room '${this.state.room}'`));
    if (stream !== WEBCAM_STREAM || sender.publish !== "live") {
      return this.fail(session, id, rpcError(RoomCode.USER_NOT_STREAMING, `User '${senderName}' is not streaming '${stream}'`));
    }
    this.putParticipant({ ...me, subscriptions: { ...me.subscriptions, [senderName]: "pending" } });
    this.mediaRequest({ session, id, op: "subscribe", sender: senderName }, {
      op: "subscribe",
      user: me.user,
      sender: senderName,
      sdpOffer: p.sdpOffer,
    });
  }

  unsubscribeFromVideo(session: string, id: RequestId | null, p: RequestParams<"unsubscribeFromVideo">): void {
    const me = this.member(session, id);
    if (!me) return;
    const { user: senderName } = splitStreamId(p.sender);
    if (!(senderName in me.subscriptions)) {
      return this.fail(session, id, rpcError(RoomCode.USER_GENERIC, `User '${me.user}' is not receiving media from '${senderName}'`));
    }
    this.putParticipant(withoutSubscription(me, senderName));
    this.media({ op: "unsubscribe", user: me.user, sender: senderName });
    this.reply(session, id, {});
  }

  onIceCandidate(session: string, id: RequestId | null, p: RequestParams<"onIceCandidate">): void {
    const me = this.member(session, id);
    if (!me) return;
    // Candidates may arrive before the SDP answer: a pending endpoint counts.
    const known = p.endpointName === me.user ? me.publish !== "none" : p.endpointName in me.subscriptions;
    if (!known) {
      return this.fail(session, id, rpcError(RoomCode.MEDIA_ENDPOINT, `No media endpoint '${p.endpointName}' for user '${me.user}'`));
    }
    this.media({
      op: "addIceCandidate",
      user: me.user,
      endpoint: p.endpointName,
      candidate: p.candidate,
      sdpMid: p.sdpMid ?? null,
      sdpMLineIndex: p.sdpMLineIndex,
    });
    this.reply(session, id, {});
  }

  leaveRoom(session: string, id: RequestId | null): void {
    const me = this.member(session, id);
    if (!me) return;
    this.removeParticipant(me);
    this.reply(session, id, {});
    this.effects.push({ kind: "close", session, code: CLOSE_NORMAL, reason: "left the room" });
  }

  sendMessage(session: string, id: RequestId | null, p: RequestParams<"sendMessage">): void {
    const me = this.member(session, id);
    if (!me) return;
    if (p.userMessage !== me.user) {
      return this.fail(session, id, rpcError(RoomCode.USER_NOT_FOUND, `Message sender '${p.userMessage}' is not this session's user '${me.user}'`));
    }
    if (p.roomMessage !== this.state.room) {
      return this.fail(session, id, rpcError(RoomCode.ROOM_NOT_FOUND, `Room '${p.roomMessage}' not found (this session is in '${this.state.room}')`));
    }
    this.reply(session, id, {});
    this.broadcast(null, { method: "sendMessage", params: { room: this.state.room, user: me.user, message: p.message } });
  }

  customRequest(session: string, id: RequestId | null, params: Record<string, unknown>): void {
    const me = this.member(session, id);
    if (!me) return;
    const handler = this.ctx.hooks.customRequest;
    if (!handler) return this.fail(session, id, rpcError(RoomCode.GENERIC, "customRequest is not supported by this server"));
    const outcome = handler.handle({ participant: me, params, state: this.state });
    if ("error" in outcome) return this.fail(session, id, outcome.error);
    if ("result" in outcome) {
      if (outcome.attributes) this.putParticipant({ ...me, attributes: outcome.attributes });
      return this.reply(session, id, outcome.result);
    }
    this.mediaRequest({ session, id, op: "custom", data: outcome.data }, outcome.media);
  }

  connect(session: string, id: RequestId | null, p: RequestParams<"connect">): void {
    const target = p.sessionId;
    if (target === undefined || target === session) return this.reply(session, id, {});
    const resumed = this.state.participants.get(target);
    if (!resumed) {
      return this.fail(session, id, rpcError(INVALID_SESSION_CODE, "Invalid session: unknown, or its reconnection window has expired"));
    }
    if (this.state.participants.has(session)) {
      return this.fail(session, id, rpcError(RoomCode.USER_GENERIC, "This connection already joined the room; it cannot resume another session"));
    }
    this.effects.push({ kind: "bind", from: session, to: target });
    if (resumed.disconnectedAt !== null) this.putParticipant({ ...resumed, disconnectedAt: null });
    // Notifications sent while the socket was gone are lost: the roster as it is
    // now (like joinRoom's) lets the client catch up on joins, leaves and streams.
    this.reply(target, id, { value: this.peersOf(target) });
  }

  peersOf(session: string): PeerDescriptor[] {
    const peers: PeerDescriptor[] = [];
    for (const other of this.state.participants.values()) {
      if (other.session === session) continue;
      peers.push(other.publish === "live" ? { id: other.user, streams: WEBCAM_STREAMS } : { id: other.user });
    }
    return peers;
  }

  // ── other inputs ──────────────────────────────────────────────────────────
  socketClosed(session: string): void {
    const me = this.state.participants.get(session);
    if (!me || me.disconnectedAt !== null) return;
    if (this.ctx.config.reconnectWindowMs <= 0) return this.removeParticipant(me);
    this.putParticipant({ ...me, disconnectedAt: this.ctx.now });
  }

  expireDisconnected(): void {
    const windowMs = this.ctx.config.reconnectWindowMs;
    for (const p of this.state.participants.values()) {
      if (p.disconnectedAt !== null && p.disconnectedAt + windowMs <= this.ctx.now) this.removeParticipant(p);
    }
  }

  closeRoom(): void {
    const room = this.state.room;
    if (this.state.participants.size === 0) return;
    for (const p of this.state.participants.values()) {
      if (p.disconnectedAt !== null) continue;
      this.notify(p.session, { method: "participantEvicted", params: {} });
      this.notify(p.session, { method: "roomClosed", params: { room } });
      this.effects.push({ kind: "close", session: p.session, code: CLOSE_NORMAL, reason: "room closed" });
    }
    this.state = { ...this.state, participants: new Map(), pending: new Map() };
    this.media({ op: "releaseRoom" });
    this.effects.push({ kind: "directory", open: false });
  }

  mediaResult(ref: string, outcome: MediaOutcome): void {
    const pending = this.state.pending.get(ref);
    // The asker left (and its media was released) while the bridge was working.
    if (!pending) return;
    const pendingMap = new Map(this.state.pending);
    pendingMap.delete(ref);
    this.state = { ...this.state, pending: pendingMap };
    const me = this.state.participants.get(pending.session);
    if (!me) return;
    const { session, id } = pending;
    switch (pending.op) {
      case "publish": {
        if (me.publish !== "pending") {
          // Its media was reset meanwhile (mediaLost): drop what the bridge built and say so.
          if (outcome.ok) this.media({ op: "unpublish", user: me.user });
          return this.fail(session, id, rpcError(RoomCode.MEDIA_GENERIC, "Publishing was interrupted: the media connection was reset"));
        }
        const answer = sdpAnswerOf(outcome);
        if ("error" in answer) {
          this.putParticipant({ ...me, publish: "none", loopback: false });
          return this.fail(session, id, answer.error);
        }
        this.putParticipant({ ...me, publish: "live" });
        this.reply(session, id, { sdpAnswer: answer.sdp });
        this.broadcast(session, { method: "participantPublished", params: { id: me.user, streams: WEBCAM_STREAMS } });
        return;
      }
      case "subscribe": {
        const sender = pending.sender ?? "";
        if (me.subscriptions[sender] !== "pending") {
          if (outcome.ok) this.media({ op: "unsubscribe", user: me.user, sender });
          return this.fail(session, id, rpcError(RoomCode.MEDIA_GENERIC, `Receiving from '${sender}' was interrupted: the stream is gone`));
        }
        const answer = sdpAnswerOf(outcome);
        if ("error" in answer) {
          this.putParticipant(withoutSubscription(me, sender));
          return this.fail(session, id, answer.error);
        }
        this.putParticipant({ ...me, subscriptions: { ...me.subscriptions, [sender]: "live" } });
        return this.reply(session, id, { sdpAnswer: answer.sdp });
      }
      case "custom": {
        if (!outcome.ok) return this.fail(session, id, outcome.error);
        const handler = this.ctx.hooks.customRequest;
        if (handler) this.putParticipant({ ...me, attributes: handler.complete(me, pending.data ?? null) });
        return this.reply(session, id, {});
      }
    }
  }

  mediaEvent(event: MediaEvent): void {
    switch (event.event) {
      case "iceCandidate": {
        const target = findByUser(this.state, event.user);
        if (!target || target.disconnectedAt !== null) return;
        this.notify(target.session, {
          method: "iceCandidate",
          params: {
            endpointName: event.endpoint,
            candidate: event.candidate,
            sdpMid: event.sdpMid ?? null,
            sdpMLineIndex: event.sdpMLineIndex,
          },
        });
        return;
      }
      case "mediaError": {
        const notification = { method: "mediaError", params: { error: event.error } } as const;
        if (event.user === undefined) return this.broadcast(null, notification);
        const target = findByUser(this.state, event.user);
        if (target && target.disconnectedAt === null) this.notify(target.session, notification);
        return;
      }
      case "mediaState":
        // Informational: nothing in the original protocol carries it to clients.
        return;
      case "mediaLost":
        return this.mediaLost(event.users, event.error);
    }
  }

  /**
   * The media server lost these users' endpoints (it restarted, or a new
   * bridge took the room over). Their streams are gone for everyone; each is
   * told with mediaError and can publish and subscribe again.
   */
  mediaLost(users: readonly string[] | undefined, error: string): void {
    const affected: Participant[] = [];
    for (const p of this.state.participants.values()) {
      if (users !== undefined && !users.includes(p.user)) continue;
      if (p.publish !== "none" || Object.keys(p.subscriptions).length > 0) affected.push(p);
    }
    for (const p of affected) {
      const current = this.state.participants.get(p.session);
      if (!current) continue;
      if (current.publish !== "none") this.stopPublishing(current);
      const after = this.state.participants.get(p.session);
      if (after && Object.keys(after.subscriptions).length > 0) this.putParticipant({ ...after, subscriptions: {} });
      if (p.publish === "live") this.broadcast(p.session, { method: "participantUnpublished", params: { name: p.user } });
    }
    for (const p of affected) {
      if (p.disconnectedAt === null) this.notify(p.session, { method: "mediaError", params: { error } });
    }
  }

  // ── helpers ───────────────────────────────────────────────────────────────
  member(session: string, id: RequestId | null): Participant | undefined {
    const me = this.state.participants.get(session);
    if (!me) this.fail(session, id, rpcError(RoomCode.USER_NOT_FOUND, "This session has not joined a room (send joinRoom first)"));
    return me;
  }

  putParticipant(p: Participant): void {
    const participants = new Map(this.state.participants);
    participants.set(p.session, p);
    this.state = { ...this.state, participants };
  }

  /** Leaves the room: others forget the user's stream, media is released, the last one out closes the room. */
  removeParticipant(me: Participant): void {
    const participants = new Map(this.state.participants);
    participants.delete(me.session);
    dropSubscriptionsTo(participants, me.user);
    // Its media requests in flight will find no asker: their results are ignored.
    const pending = new Map(this.state.pending);
    for (const [ref, entry] of this.state.pending) if (entry.session === me.session) pending.delete(ref);
    this.state = { ...this.state, participants, pending };
    this.media({ op: "releaseUser", user: me.user });
    this.broadcast(me.session, { method: "participantLeft", params: { name: me.user } });
    if (participants.size === 0) {
      this.media({ op: "releaseRoom" });
      this.effects.push({ kind: "directory", open: false });
    }
  }

  stopPublishing(me: Participant): void {
    const participants = new Map(this.state.participants);
    participants.set(me.session, { ...me, publish: "none", loopback: false, attributes: {} });
    dropSubscriptionsTo(participants, me.user);
    this.state = { ...this.state, participants };
  }

  mediaRequest(pending: PendingMedia, command: MediaCommand): void {
    const seq = this.state.seq + 1;
    const ref = `${pending.session}#${seq}`;
    const pendingMap = new Map(this.state.pending);
    pendingMap.set(ref, pending);
    this.state = { ...this.state, seq, pending: pendingMap };
    this.effects.push({ kind: "media", command, ref });
  }

  media(command: MediaCommand): void {
    this.effects.push({ kind: "media", command, ref: null });
  }

  reply(session: string, id: RequestId | null, result: Record<string, unknown>): void {
    if (id === null) return;
    this.effects.push({ kind: "reply", session, id, result: { ...result, sessionId: session } });
  }

  fail(session: string, id: RequestId | null, error: RpcError): void {
    if (id === null) return;
    this.effects.push({ kind: "error", session, id, error });
  }

  notify(session: string, notification: Notification): void {
    this.effects.push({ kind: "notify", session, notification });
  }

  broadcast(except: string | null, notification: Notification): void {
    this.effects.push({ kind: "broadcast", except, notification });
  }
}

function withoutSubscription(p: Participant, sender: string): Participant {
  const { [sender]: _dropped, ...rest } = p.subscriptions;
  return { ...p, subscriptions: rest };
}

/** The stream of `user` is gone: nobody receives it any more. */
function dropSubscriptionsTo(participants: Map<string, Participant>, user: string): void {
  for (const other of participants.values()) {
    if (user in other.subscriptions) participants.set(other.session, withoutSubscription(other, user));
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
