/**
 * A stay in one room: joins (`connect()`), keeps the roster and the streams,
 * turns server notifications into typed events, and keeps the session alive
 * across network drops (reconnect with backoff, `connect {sessionId}`, then
 * restore media that did not survive).
 */
import { z } from "zod";
import { INVALID_SESSION_CODE, JsonRpcCode, RoomCode, rpcError } from "../../../protocol/errors.ts";
import { CloseCode } from "../../../protocol/close-codes.ts";
import { describeIssues } from "../../../protocol/jsonrpc.ts";
import {
  name as nameSchema,
  notifications,
  peerDescriptor,
  results,
  type NotificationMethod,
  type NotificationParams,
  type PeerDescriptor,
  type RoomMethod,
  type RoomResult,
} from "../../../protocol/room.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import { Connection, transportError, type CloseInfo, type ConnectionOptions, type RequestInput } from "./connection.ts";
import { Emitter } from "./emitter.ts";
import { Participant } from "./participant.ts";
import { canSend, canTransition, type CloseReason, type ConnectionState } from "./state.ts";
import { Stream, type StreamHost, type StreamOptions } from "./stream.ts";

export interface RoomOptions {
  /** The room's name (created if it does not exist). */
  readonly room: string;
  /** This participant's name in the room. */
  readonly user: string;
  /** Receive every published stream automatically (default true). With false, call `stream.subscribe()` yourself. */
  readonly subscribeToStreams?: boolean;
  /** Ask the server for DataChannels on this participant's endpoints. */
  readonly dataChannels?: boolean;
}

export interface ReconnectOptions {
  /** Give up after this long without getting the session back (default 30 s). */
  readonly timeoutMs: number;
  /** Delay before the second attempt; it doubles up to `maxDelayMs` (the first attempt is immediate). */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/** What a Room gets from its KurentoRoom. */
export interface RoomEnvironment {
  readonly url: string;
  readonly connection: ConnectionOptions;
  readonly rtcConfiguration: RTCConfiguration;
  /** null: never reconnect (a drop closes the room). */
  readonly reconnect: ReconnectOptions | null;
  /** After `mediaError` or failed ICE, publish / subscribe again where the media is gone (default true). */
  readonly autoRecoverMedia: boolean;
  readonly rpcParams: Record<string, unknown>;
}

export interface RoomConnectedEvent {
  /** The participants already in the room (not including the local one). */
  readonly participants: Participant[];
  /** Their published streams. */
  readonly streams: Stream[];
}

export interface RoomEvents {
  "room-connected": RoomConnectedEvent;
  "error-room": { error: RpcRequestError };
  "room-closed": { room: string };
  "participant-joined": { participant: Participant };
  "participant-left": { participant: Participant };
  "participant-evicted": { localParticipant: Participant };
  "participant-published": { participant: Participant };
  "participant-unpublished": { participant: Participant };
  /** The local stream is published (the server's answer is applied). */
  "stream-published": { stream: Stream };
  "stream-unpublished": { stream: Stream };
  /** A remote stream is being received (the server's answer is applied). */
  "stream-subscribed": { stream: Stream };
  "stream-unsubscribed": { stream: Stream };
  /** A remote stream became available (subscribed automatically unless `subscribeToStreams: false`). */
  "stream-added": { stream: Stream };
  /** A remote stream is gone (its participant unpublished or left). */
  "stream-removed": { stream: Stream };
  /** Media was negotiated again after a loss (publish or subscription restored). */
  "stream-recovered": { stream: Stream };
  "error-media": { error: string; stream?: Stream };
  newMessage: { room: string; user: string; message: string };
  "lost-connection": { room: string };
  reconnecting: { room: string; attempt: number; delayMs: number };
  reconnected: { room: string };
  "connection-state-changed": { state: ConnectionState; previous: ConnectionState };
}

/** `connect`'s result; `value` (the roster) is used when a server sends it. */
const connectResult = results.connect.extend({ value: z.array(peerDescriptor).optional() });

/** Automatic subscriptions that failed on the media side are tried again this many times (0.5 s, 1 s, 2 s, 4 s). */
const AUTO_SUBSCRIBE_RETRIES = 4;

function usageError(message: string, code: number = RoomCode.USER_GENERIC): RpcRequestError {
  return new RpcRequestError(rpcError(code as typeof RoomCode.USER_GENERIC, message));
}

function asRpcError(error: unknown): RpcRequestError {
  if (error instanceof RpcRequestError) return error;
  return new RpcRequestError(rpcError(RoomCode.GENERIC, error instanceof Error ? error.message : String(error)));
}

const NOTIFICATION_METHODS = Object.keys(notifications) as NotificationMethod[];

function isNotificationMethod(method: string): method is NotificationMethod {
  return (NOTIFICATION_METHODS as string[]).includes(method);
}

export class Room extends Emitter<RoomEvents> {
  readonly name: string;
  readonly user: string;
  readonly subscribeToStreams: boolean;
  readonly dataChannels: boolean;
  readonly #env: RoomEnvironment;
  readonly #connection: Connection;
  readonly #host: StreamHost;
  readonly #local: Participant;
  /** Remote participants by name. */
  readonly #participants = new Map<string, Participant>();
  /** Every local stream made for this room (published or not). */
  readonly #localStreams = new Set<Stream>();
  readonly #recovering = new Set<Stream>();
  #state: ConnectionState = "new";
  #closeReason: CloseReason | null = null;
  #sessionId: string | null = null;
  #evicted = false;
  #joining: Promise<RoomConnectedEvent> | null = null;
  #leaving: Promise<void> | null = null;
  /** Candidates gathered while reconnecting: sent once the session is back. */
  #queuedIce: Array<{ endpointName: string; candidate: RTCIceCandidateInit }> = [];
  #wakeReconnect: (() => void) | null = null;
  #mediaCheck: Promise<void> | null = null;

  constructor(options: RoomOptions, env: RoomEnvironment) {
    super();
    this.name = options.room;
    this.user = options.user;
    this.subscribeToStreams = options.subscribeToStreams ?? true;
    this.dataChannels = options.dataChannels ?? false;
    this.#env = env;
    this.#local = new Participant(options.user, true);
    this.#connection = new Connection(env.connection, {
      onNotification: (method, params) => this.#onNotification(method, params),
      onLost: (info) => this.#onLost(info),
    });
    this.#connection.rpcParams = { ...env.rpcParams };
    this.#host = {
      rtcConfiguration: env.rtcConfiguration,
      localUser: () => this.user,
      request: (method, params) => this.#request(method, params),
      sendIceCandidate: (endpointName, candidate) => this.#sendIceCandidate(endpointName, candidate),
      negotiated: (stream) => this.#negotiated(stream),
      released: (stream) => this.#released(stream),
      iceFailed: (stream) => {
        if (this.#env.autoRecoverMedia && this.#state === "connected") void this.#recover(stream, true);
      },
    };
  }

  // ── state ─────────────────────────────────────────────────────────────────
  get state(): ConnectionState {
    return this.#state;
  }

  /** Why the room is closed (null while it is not). */
  get closeReason(): CloseReason | null {
    return this.#closeReason;
  }

  get sessionId(): string | null {
    return this.#sessionId;
  }

  /** Reads the state without TypeScript's narrowing (it changes across awaits). */
  #isIn(state: ConnectionState): boolean {
    return this.#state === state;
  }

  /** The one place the state changes. */
  #transition(next: ConnectionState): boolean {
    const previous = this.#state;
    if (previous === next || !canTransition(previous, next)) return false;
    this.#state = next;
    this.emit("connection-state-changed", { state: next, previous });
    return true;
  }

  // ── roster ────────────────────────────────────────────────────────────────
  getName(): string {
    return this.name;
  }

  getLocalParticipant(): Participant {
    return this.#local;
  }

  /** Every participant, the local one first. */
  getParticipants(): Participant[] {
    return [this.#local, ...this.#participants.values()];
  }

  getRemoteParticipants(): Participant[] {
    return [...this.#participants.values()];
  }

  getParticipant(id: string): Participant | undefined {
    return id === this.user ? this.#local : this.#participants.get(id);
  }

  /** The local published stream(s) and every remote stream. */
  getStreams(): Stream[] {
    const remote = [...this.#participants.values()].flatMap((p) => p.getStreams());
    return [...this.#local.getStreams(), ...remote];
  }

  /** A local stream for this room (the KurentoRoom's `Stream(room, options)`). */
  createLocalStream(options: StreamOptions = {}): Stream {
    const stream = new Stream(this.#host, this.#local, true, options);
    this.#localStreams.add(stream);
    return stream;
  }

  setRpcParams(params: Record<string, unknown> | null | undefined): void {
    this.#connection.rpcParams = { ...(params ?? {}) };
  }

  // ── joining ───────────────────────────────────────────────────────────────
  /**
   * Joins the room. Emits `room-connected` or `error-room`; the promise
   * settles the same way (ignoring it is fine: it is never an unhandled rejection).
   */
  connect(): Promise<RoomConnectedEvent> {
    if (this.#joining) return this.#joining;
    const joining = this.#join();
    joining.catch(() => undefined);
    this.#joining = joining;
    return joining;
  }

  async #join(): Promise<RoomConnectedEvent> {
    if (this.#state !== "new") throw usageError("connect() was called on a closed room: create a new Room to join again");
    for (const [field, value] of [["user", this.user], ["room", this.name]] as const) {
      const checked = nameSchema.safeParse(value);
      if (!checked.success) {
        return this.#joinFailed(usageError(`Invalid ${field} name: ${describeIssues(checked.error)}`, JsonRpcCode.INVALID_PARAMS));
      }
    }
    this.#transition("connecting");
    try {
      await this.#connection.open(this.#env.url);
      if (!this.#isIn("connecting")) throw usageError("joining was cancelled");
      const joined = await this.#connection.request("joinRoom", {
        user: this.user,
        room: this.name,
        ...(this.dataChannels ? { dataChannels: true } : {}),
      });
      if (!this.#isIn("connecting")) throw usageError("joining was cancelled");
      this.#sessionId = joined.sessionId;
      const event = this.#adoptRoster(joined.value);
      this.#transition("connected");
      this.emit("room-connected", event);
      if (this.subscribeToStreams) for (const stream of event.streams) this.#autoSubscribe(stream);
      return event;
    } catch (error) {
      return this.#joinFailed(asRpcError(error));
    }
  }

  #joinFailed(error: RpcRequestError): never {
    if (this.#state !== "closed" && this.#state !== "leaving") {
      this.#finish("join-failed");
      this.emit("error-room", { error });
    }
    throw error;
  }

  #adoptRoster(peers: readonly PeerDescriptor[]): RoomConnectedEvent {
    const participants: Participant[] = [];
    const streams: Stream[] = [];
    for (const peer of peers) {
      if (peer.id === this.user) continue;
      const participant = new Participant(peer.id, false);
      this.#participants.set(peer.id, participant);
      participants.push(participant);
      for (const descriptor of peer.streams ?? []) {
        const stream = new Stream(this.#host, participant, false, { id: descriptor.id });
        participant.addStream(stream);
        streams.push(stream);
      }
    }
    return { participants, streams };
  }

  // ── requests ──────────────────────────────────────────────────────────────
  #request<M extends RoomMethod>(method: M, params: RequestInput<M>): Promise<RoomResult<M>> {
    if (!canSend(this.#state)) {
      return Promise.reject(transportError(`cannot send ${method}: the room is ${this.#state}`));
    }
    return this.#connection.request(method, params);
  }

  /** Sends a chat message to everyone in the room (the sender gets it back as `newMessage`). */
  async sendMessage(message: string): Promise<void> {
    await this.#request("sendMessage", { message, userMessage: this.user, roomMessage: this.name });
  }

  /** The original `sendMessage(room, user, message)`: the server checks that room and user are this session's. */
  async sendMessageAs(room: string, user: string, message: string): Promise<void> {
    await this.#request("sendMessage", { message, userMessage: user, roomMessage: room });
  }

  /** An application request (the demo's `{hat: true}`); resolves with the server's result. */
  async sendCustomRequest(params: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#request("customRequest", params);
  }

  subscribe(stream: Stream): Promise<void> {
    return stream.subscribe();
  }

  unsubscribe(stream: Stream): Promise<void> {
    return stream.unsubscribe();
  }

  /** The original `disconnect(stream)`: unpublish the local stream, or stop receiving a remote one. */
  disconnect(stream: Stream): Promise<void> {
    return stream.local ? stream.unpublish() : stream.unsubscribe();
  }

  /**
   * Subscribes on its own, and tries again (with backoff) when the media side
   * failed for a reason that may pass (a busy or restarting media server); a
   * stream that is gone (102, 105) or a usage error is final.
   */
  #autoSubscribe(stream: Stream, attempt = 0): void {
    stream.subscribe().catch((error: unknown) => {
      if (stream.disposed || this.#state !== "connected" || stream.status !== "idle") return;
      const rpc = asRpcError(error);
      const gone = rpc.code === RoomCode.USER_NOT_FOUND || rpc.code === RoomCode.USER_NOT_STREAMING || rpc.code === RoomCode.USER_GENERIC;
      if (!gone && attempt < AUTO_SUBSCRIBE_RETRIES) {
        setTimeout(() => {
          if (!stream.disposed && this.#state === "connected" && stream.status === "idle") this.#autoSubscribe(stream, attempt + 1);
        }, 500 * 2 ** attempt);
        return;
      }
      this.emit("error-media", { error: `Could not receive ${stream.getGlobalID()}: ${rpc.message}`, stream });
    });
  }

  #sendIceCandidate(endpointName: string, candidate: RTCIceCandidateInit): void {
    if (this.#state === "reconnecting") {
      this.#queuedIce.push({ endpointName, candidate });
      return;
    }
    if (this.#state !== "connected") return;
    this.#connection
      .request("onIceCandidate", {
        endpointName,
        candidate: candidate.candidate ?? "",
        sdpMid: candidate.sdpMid ?? null,
        sdpMLineIndex: candidate.sdpMLineIndex ?? 0,
      })
      .catch((error: unknown) => {
        // 303 after the endpoint was released meanwhile is expected; anything else is worth a line.
        if (!(error instanceof RpcRequestError && error.code === RoomCode.MEDIA_ENDPOINT)) {
          console.warn(`kurento-room: ICE candidate for '${endpointName}' not delivered: ${asRpcError(error).message}`);
        }
      });
  }

  #negotiated(stream: Stream): void {
    if (stream.local) this.#local.addStream(stream);
    if (this.#recovering.has(stream)) this.emit("stream-recovered", { stream });
    else this.emit(stream.local ? "stream-published" : "stream-subscribed", { stream });
  }

  #released(stream: Stream): void {
    if (stream.local) this.#local.removeStream(stream);
    this.emit(stream.local ? "stream-unpublished" : "stream-unsubscribed", { stream });
  }

  // ── notifications ─────────────────────────────────────────────────────────
  #onNotification(method: string, params: unknown): void {
    if (!isNotificationMethod(method)) {
      console.warn(`kurento-room: unknown notification '${method}' ignored`);
      return;
    }
    const parsed = notifications[method].safeParse(params ?? {});
    if (!parsed.success) {
      console.warn(`kurento-room: malformed '${method}' notification ignored: ${describeIssues(parsed.error)}`);
      return;
    }
    if (this.#state !== "connected") return;
    (this.#handlers[method] as (p: unknown) => void)(parsed.data);
  }

  readonly #handlers: { [M in NotificationMethod]: (params: NotificationParams<M>) => void } = {
    participantJoined: ({ id }) => {
      this.#ensureParticipant(id);
    },
    participantPublished: ({ id, streams }) => {
      const participant = this.#ensureParticipant(id);
      if (!participant) return;
      const added: Stream[] = [];
      for (const descriptor of streams) {
        const previous = participant.getStream(descriptor.id);
        if (previous) this.#removeStream(participant, previous);
        const stream = new Stream(this.#host, participant, false, { id: descriptor.id });
        participant.addStream(stream);
        added.push(stream);
      }
      this.emit("participant-published", { participant });
      for (const stream of added) {
        this.emit("stream-added", { stream });
        if (this.subscribeToStreams) this.#autoSubscribe(stream);
      }
    },
    participantUnpublished: ({ name }) => {
      const participant = this.#participants.get(name);
      if (!participant) return;
      for (const stream of participant.getStreams()) this.#removeStream(participant, stream);
      this.emit("participant-unpublished", { participant });
    },
    participantLeft: ({ name }) => {
      const participant = this.#participants.get(name);
      if (!participant) return;
      this.#participants.delete(name);
      this.emit("participant-left", { participant });
      for (const stream of participant.getStreams()) this.#removeStream(participant, stream);
    },
    participantEvicted: () => {
      this.#evicted = true;
      this.emit("participant-evicted", { localParticipant: this.#local });
    },
    roomClosed: ({ room }) => {
      this.#finish(this.#evicted ? "evicted" : "room-closed");
      this.emit("room-closed", { room });
    },
    sendMessage: ({ room, user, message }) => {
      this.emit("newMessage", { room, user, message });
    },
    iceCandidate: ({ endpointName, candidate, sdpMid, sdpMLineIndex }) => {
      const init: RTCIceCandidateInit = { candidate, sdpMid: sdpMid ?? null, sdpMLineIndex };
      if (endpointName === this.user) {
        for (const stream of this.#localStreams) if (stream.status !== "idle") stream.addRemoteCandidate(init);
        return;
      }
      for (const stream of this.#participants.get(endpointName)?.getStreams() ?? []) stream.addRemoteCandidate(init);
    },
    mediaError: ({ error }) => {
      this.emit("error-media", { error });
      if (this.#env.autoRecoverMedia) void this.#checkMedia();
    },
  } satisfies { [M in NotificationMethod]: (params: NotificationParams<M>) => void };

  #ensureParticipant(id: string): Participant | undefined {
    if (id === this.user) return undefined;
    let participant = this.#participants.get(id);
    if (!participant) {
      participant = new Participant(id, false);
      this.#participants.set(id, participant);
      this.emit("participant-joined", { participant });
    }
    return participant;
  }

  #removeStream(participant: Participant, stream: Stream): void {
    participant.removeStream(stream);
    stream.dispose();
    this.emit("stream-removed", { stream });
  }

  // ── media recovery ────────────────────────────────────────────────────────
  /** Streams the application wants live: the local published ones and the remote ones it receives. */
  #wantedStreams(): Stream[] {
    const remote = [...this.#participants.values()].flatMap((p) => p.getStreams());
    return [...this.#localStreams, ...remote].filter((s) => s.wanted && !s.disposed);
  }

  /**
   * After `mediaError`: asks the server, per live stream, whether it still
   * has the endpoint (an `onIceCandidate` with the stream's last candidate
   * answers 303 when it does not) and negotiates again where it is gone.
   */
  #checkMedia(): Promise<void> {
    if (this.#mediaCheck) return this.#mediaCheck;
    const run = async (): Promise<void> => {
      for (const stream of this.#wantedStreams()) {
        if (stream.status !== "live" || this.#state !== "connected") continue;
        if (!(await this.#serverHas(stream))) await this.#recover(stream, false);
      }
    };
    this.#mediaCheck = run().finally(() => {
      this.#mediaCheck = null;
    });
    return this.#mediaCheck;
  }

  async #serverHas(stream: Stream): Promise<boolean> {
    const candidate = stream.lastLocalCandidate;
    if (!candidate?.candidate) return false;
    try {
      await this.#request("onIceCandidate", {
        endpointName: stream.local ? this.user : stream.getParticipant().getID(),
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid ?? null,
        sdpMLineIndex: candidate.sdpMLineIndex ?? 0,
      });
      return true;
    } catch (error) {
      return !(error instanceof RpcRequestError && error.code === RoomCode.MEDIA_ENDPOINT);
    }
  }

  /** Negotiates a stream again; `release` first tells the server to drop what it may still hold. */
  async #recover(stream: Stream, release: boolean): Promise<void> {
    if (this.#recovering.has(stream) || stream.disposed) return;
    this.#recovering.add(stream);
    try {
      if (release) {
        const undo = stream.local
          ? this.#request("unpublishVideo", {})
          : this.#request("unsubscribeFromVideo", { sender: stream.getGlobalID() });
        await undo.catch(() => undefined);
      }
      stream.reset();
      if (stream.disposed || this.#state !== "connected") return;
      await stream.negotiate();
    } catch (error) {
      if (!stream.disposed && this.#state === "connected") {
        this.emit("error-media", { error: `Could not restore ${stream.getGlobalID()}: ${asRpcError(error).message}`, stream });
      }
    } finally {
      this.#recovering.delete(stream);
    }
  }

  // ── connection loss and reconnection ──────────────────────────────────────
  #onLost(info: CloseInfo): void {
    if (this.#state !== "connected") return; // joining, leaving or closed: those paths handle it
    if (this.#evicted) {
      // Evicted, and the server closed the socket without a roomClosed: the stay is over all the same.
      this.#finish("evicted");
      this.emit("room-closed", { room: this.name });
      return;
    }
    if (info.code === CloseCode.SESSION_SUPERSEDED) {
      this.#finish("superseded");
      this.emit("error-room", { error: transportError("This session was resumed on another connection") });
      return;
    }
    this.emit("lost-connection", { room: this.name });
    const reconnect = this.#env.reconnect;
    if (!reconnect) {
      this.#finish("reconnect-failed");
      this.emit("error-room", { error: transportError(`Connection to the room server lost (${info.code})`) });
      return;
    }
    this.#transition("reconnecting");
    void this.#reconnect(reconnect);
  }

  async #reconnect(options: ReconnectOptions): Promise<void> {
    const started = Date.now();
    let lastError = "";
    for (let attempt = 1; this.#state === "reconnecting"; attempt++) {
      const delayMs = attempt === 1 ? 0 : Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** (attempt - 2));
      if (Date.now() + delayMs - started > options.timeoutMs) break;
      this.emit("reconnecting", { room: this.name, attempt, delayMs });
      if (delayMs > 0) await this.#sleep(delayMs);
      if (this.#state !== "reconnecting") return;
      try {
        await this.#connection.open(this.#env.url);
      } catch (error) {
        lastError = asRpcError(error).message;
        continue;
      }
      if (this.#state !== "reconnecting") return;
      let resumed: z.infer<typeof connectResult>;
      try {
        resumed = await this.#connection.requestWith("connect", { sessionId: this.#sessionId ?? "" }, connectResult);
      } catch (error) {
        const failure = asRpcError(error);
        if (failure.code === INVALID_SESSION_CODE) {
          this.#finish("session-expired");
          this.emit("error-room", {
            error: new RpcRequestError(rpcError(INVALID_SESSION_CODE, `Your place in room '${this.name}' expired while the connection was down: join again`)),
          });
          return;
        }
        lastError = failure.message;
        this.#connection.close(CloseCode.NORMAL, "resume failed");
        continue;
      }
      if (this.#state !== "reconnecting") return;
      this.#transition("connected");
      if (resumed.value) this.#reconcileRoster(resumed.value);
      for (const { endpointName, candidate } of this.#queuedIce.splice(0)) this.#sendIceCandidate(endpointName, candidate);
      this.emit("reconnected", { room: this.name });
      this.#restoreMedia();
      return;
    }
    if (this.#state !== "reconnecting") return;
    this.#finish("reconnect-failed");
    this.emit("error-room", {
      error: transportError(`Could not reconnect to room '${this.name}' within ${Math.round(options.timeoutMs / 1000)} s${lastError ? ` (${lastError})` : ""}`),
    });
  }

  /** After a resume: negotiate again what was in flight during the drop, or whose ICE failed. */
  #restoreMedia(): void {
    if (!this.#env.autoRecoverMedia) return;
    for (const stream of this.#wantedStreams()) {
      const failed = stream.getWebRtcPeer()?.iceConnectionState === "failed";
      if (stream.status === "idle" || failed) void this.#recover(stream, true);
    }
  }

  /** A roster from the server (when `connect` returns one): applies joins and leaves missed while away. */
  #reconcileRoster(peers: readonly PeerDescriptor[]): void {
    const present = new Set(peers.map((p) => p.id));
    for (const participant of [...this.#participants.values()]) {
      if (!present.has(participant.getID())) this.#handlers.participantLeft({ name: participant.getID() });
    }
    for (const peer of peers) {
      if (peer.id === this.user) continue;
      const known = this.#participants.get(peer.id);
      const publishes = (peer.streams ?? []).length > 0;
      if (!known) {
        if (publishes) this.#handlers.participantPublished({ id: peer.id, streams: peer.streams ?? [] });
        else this.#ensureParticipant(peer.id);
      } else if (publishes && !known.isPublishing()) {
        this.#handlers.participantPublished({ id: peer.id, streams: peer.streams ?? [] });
      } else if (!publishes && known.isPublishing()) {
        this.#handlers.participantUnpublished({ name: peer.id });
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.#wakeReconnect === done) self.#wakeReconnect = null;
        resolve();
      }
      this.#wakeReconnect = done;
    });
  }

  // ── leaving ───────────────────────────────────────────────────────────────
  /**
   * Leaves the room (`leaveRoom`, unless `forced`: the server already let
   * go, e.g. after an eviction) and releases every stream and the camera.
   */
  leave(options: { forced?: boolean } = {}): Promise<void> {
    if (!this.#leaving) this.#leaving = this.#leave(options.forced ?? false);
    return this.#leaving;
  }

  async #leave(forced: boolean): Promise<void> {
    if (this.#state === "connecting" && this.#joining) await this.#joining.catch(() => undefined);
    switch (this.#state) {
      case "closed":
      case "leaving":
        return;
      case "new":
        this.#finish("left");
        return;
      case "reconnecting":
        this.#wakeReconnect?.();
        this.#finish("left");
        return;
      case "connecting":
      case "connected":
        break;
    }
    this.#transition("leaving");
    if (!forced && this.#connection.isOpen) {
      await this.#connection.request("leaveRoom", {}, 5000).catch(() => undefined);
    }
    this.#finish("left");
  }

  /** Ends the stay: closes the socket, releases every stream (and the local camera). */
  #finish(reason: CloseReason): void {
    if (this.#state === "closed") return;
    this.#closeReason = reason;
    this.#transition("closed");
    this.#wakeReconnect?.();
    this.#connection.close(CloseCode.NORMAL, reason);
    this.#queuedIce = [];
    for (const participant of this.#participants.values()) for (const stream of participant.takeStreams()) stream.dispose();
    this.#participants.clear();
    for (const stream of this.#localStreams) stream.dispose();
    this.#local.takeStreams();
  }
}
