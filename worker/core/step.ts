/**
 * One step of the room core: the state being changed and the effects
 * produced so far, with the primitives every handler uses (answer, notify,
 * seat or unseat a participant, ask for media). The handlers themselves live
 * by concern in membership.ts, media-requests.ts, bridge-events.ts and
 * recording.ts.
 *
 * State is immutable and shared structurally: an input that changes nothing
 * (chat, ping, ICE) leaves the same state object, so the adapter knows there
 * is nothing to persist.
 */
import { RoomCode, rpcError, type RpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import { splitStreamId, streamIdOf, WEBCAM_STREAM, type Notification } from "../../protocol/room.ts";
import type { MediaCommand } from "../../protocol/bridge.ts";
import type { CoreContext } from "./hooks.ts";
import type { Audience, Effect, Participant, PendingMedia, RoomState, Step } from "./types.ts";
import { endRecording } from "./recording.ts";
import { unpublishCommand, unsubscribeCommand, withStream } from "./streams.ts";

export class StepBuilder {
  state: RoomState;
  readonly effects: Effect[] = [];
  readonly initial: RoomState;
  readonly ctx: CoreContext;

  constructor(state: RoomState, ctx: CoreContext) {
    this.state = state;
    this.initial = state;
    this.ctx = ctx;
  }

  /** The step's result; names the next alarm when the earliest deadline (seat expiry, media timeout) moved. */
  finish(): Step {
    if (this.state !== this.initial) {
      const windowMs = this.ctx.config.reconnectWindowMs;
      const before = nextDeadline(this.initial, windowMs);
      const after = nextDeadline(this.state, windowMs);
      if (before !== after) this.effects.push({ kind: "alarm", at: after });
    }
    return { state: this.state, effects: this.effects };
  }

  /** The session's participant, or an error answer (and undefined) when it has not joined. */
  member(session: string, id: RequestId | null): Participant | undefined {
    const me = this.state.participants.get(session);
    if (!me)
      this.fail(
        session,
        id,
        rpcError(RoomCode.USER_NOT_FOUND, "This session has not joined a room (send joinRoom first)"),
      );
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
    const isTheirs = (streamId: string) => splitStreamId(streamId).user === me.user;
    dropSubscriptionsTo(participants, isTheirs);
    // Its media requests in flight will find no asker: their results are ignored (releaseUser undoes them).
    const pending = new Map(this.state.pending);
    for (const [ref, entry] of this.state.pending) if (entry.session === me.session) pending.delete(ref);
    this.state = { ...this.state, participants, pending };
    this.abandonSubscriptionsTo(isTheirs);
    this.forgetIceCandidates(me.session);
    // The last one out stops the recording, before the media it records is released.
    if (participants.size === 0) endRecording(this);
    this.media({ op: "releaseUser", user: me.user });
    this.broadcast(me.session, { method: "participantLeft", params: { name: me.user } });
    if (participants.size === 0) {
      this.media({ op: "releaseRoom" });
      this.effects.push({ kind: "directory", open: false });
    }
  }

  /** Restarts the ICE candidate count of one endpoint (a new negotiation), or of all of a session's. */
  forgetIceCandidates(session: string, endpoint?: string): void {
    const own = this.state.iceCandidates.get(session);
    if (!own || (endpoint !== undefined && !own.has(endpoint))) return;
    const counts = new Map(this.state.iceCandidates);
    if (endpoint === undefined) counts.delete(session);
    else {
      const rest = new Map(own);
      rest.delete(endpoint);
      counts.set(session, rest);
    }
    this.state = { ...this.state, iceCandidates: counts };
  }

  /** Counts one more ICE candidate for the endpoint; false (nothing counted) when it already has `max`. */
  countIceCandidate(session: string, endpoint: string, max: number): boolean {
    const own = this.state.iceCandidates.get(session);
    const count = own?.get(endpoint) ?? 0;
    if (count >= max) return false;
    const counts = new Map(this.state.iceCandidates);
    counts.set(session, new Map(own).set(endpoint, count + 1));
    this.state = { ...this.state, iceCandidates: counts };
    return true;
  }

  /** `me`'s stream `stream` ends: nobody receives it any more. The hat is on the webcam: it goes with it. */
  stopPublishing(me: Participant, stream: string): void {
    const participants = new Map(this.state.participants);
    const after = withStream(me, stream, null);
    participants.set(me.session, stream === WEBCAM_STREAM ? { ...after, attributes: {} } : after);
    const id = streamIdOf(me.user, stream);
    const isIt = (streamId: string) => streamId === id;
    dropSubscriptionsTo(participants, isIt);
    this.state = { ...this.state, participants };
    this.abandonSubscriptionsTo(isIt);
  }

  /** Those streams are gone: the subscriptions to them still being negotiated are given up (301 to each asker). */
  abandonSubscriptionsTo(gone: (streamId: string) => boolean): void {
    for (const [ref, entry] of this.state.pending) {
      if (entry.op !== "subscribe" || entry.sender === undefined || !gone(entry.sender)) continue;
      const message = `Receiving from '${splitStreamId(entry.sender).user}' was interrupted: the stream is gone`;
      this.abandonMediaRequest(ref, rpcError(RoomCode.MEDIA_GENERIC, message));
    }
  }

  /**
   * A media command whose result answers a client request: remembered (persisted) until it comes
   * back or its deadline passes. The ref is short (`media-<seq>`, seq is persisted and only grows):
   * it is also the command's JSON-RPC id on the bridge link.
   */
  mediaRequest(pending: Omit<PendingMedia, "deadline">, command: MediaCommand): void {
    const seq = this.state.seq + 1;
    const ref = `media-${seq}`;
    const pendingMap = new Map(this.state.pending);
    pendingMap.set(ref, { ...pending, deadline: this.ctx.now + this.ctx.config.mediaTimeoutMs });
    this.state = { ...this.state, seq, pending: pendingMap };
    this.effects.push({ kind: "media", command, ref });
  }

  /** Forgets the media request `ref` (its result, if one still comes, is ignored). */
  dropPending(ref: string): void {
    if (!this.state.pending.has(ref)) return;
    const pendingMap = new Map(this.state.pending);
    pendingMap.delete(ref);
    this.state = { ...this.state, pending: pendingMap };
  }

  /**
   * The room stops waiting for media request `ref` before its result: what it was negotiating goes
   * back to nothing, the bridge is told to undo it (in case it did it, or still does: the bridge
   * runs a user's commands in order), and the asker gets `error` (null: no answer, its socket is
   * gone). Its result, if one still comes, is ignored.
   */
  abandonMediaRequest(ref: string, error: RpcError | null): void {
    const pending = this.state.pending.get(ref);
    if (!pending) return;
    this.dropPending(ref);
    const me = this.state.participants.get(pending.session);
    if (!me) return;
    switch (pending.op) {
      case "publish": {
        const stream = pending.stream ?? WEBCAM_STREAM;
        if (me.streams[stream]?.state === "pending") this.putParticipant(withStream(me, stream, null));
        this.media(unpublishCommand(me.user, stream));
        break;
      }
      case "subscribe": {
        const sender = pending.sender ?? "";
        if (me.subscriptions[sender] === "pending") this.putParticipant(withoutSubscription(me, sender));
        this.media(unsubscribeCommand(me.user, sender));
        break;
      }
      case "custom":
        if (pending.undo) this.media(pending.undo);
        break;
    }
    if (error) this.fail(pending.session, pending.id, error);
  }

  /** Abandons every media request of `session` that matches (see `abandonMediaRequest`). */
  abandonMediaRequestsOf(
    session: string,
    error: RpcError | null,
    match: (pending: PendingMedia) => boolean = () => true,
  ): void {
    for (const [ref, pending] of this.state.pending) {
      if (pending.session === session && match(pending)) this.abandonMediaRequest(ref, error);
    }
  }

  /** A media command nobody waits for. */
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

  broadcast(except: string | null, notification: Notification, audience?: Audience): void {
    this.effects.push(
      audience === undefined
        ? { kind: "broadcast", except, notification }
        : { kind: "broadcast", except, notification, audience },
    );
  }
}

/** Earliest moment a dropped participant's seat expires or a media request times out, or null. */
export function nextDeadline(state: RoomState, windowMs: number): number | null {
  let at: number | null = null;
  for (const p of state.participants.values()) {
    if (p.disconnectedAt !== null && (at === null || p.disconnectedAt + windowMs < at))
      at = p.disconnectedAt + windowMs;
  }
  for (const pending of state.pending.values()) {
    if (at === null || pending.deadline < at) at = pending.deadline;
  }
  return at;
}

export function findByUser(state: RoomState, user: string): Participant | undefined {
  for (const p of state.participants.values()) if (p.user === user) return p;
  return undefined;
}

export function withoutSubscription(p: Participant, sender: string): Participant {
  const { [sender]: _dropped, ...rest } = p.subscriptions;
  return { ...p, subscriptions: rest };
}

/** Those streams are gone: nobody receives them any more. */
function dropSubscriptionsTo(participants: Map<string, Participant>, gone: (streamId: string) => boolean): void {
  for (const other of participants.values()) {
    const kept = Object.keys(other.subscriptions).filter((id) => !gone(id));
    if (kept.length === Object.keys(other.subscriptions).length) continue;
    const subscriptions = Object.fromEntries(kept.map((id) => [id, other.subscriptions[id] ?? "pending"]));
    participants.set(other.session, { ...other, subscriptions });
  }
}
