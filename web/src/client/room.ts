/**
 * A stay in one room: joins (`connect()`), sends the requests, and ties
 * together the parts it is made of: the roster (roster.ts), the server's
 * notifications (notifications.ts), media recovery (media-recovery.ts) and
 * the reconnection loop (reconnect.ts). Its connection state changes in one
 * place (`#transition`).
 *
 * A little over 400 lines for a reason: Room is the original KurentoRoom.js
 * object; its public methods and the wiring of the parts above stay here.
 */
import { INVALID_SESSION_CODE, JsonRpcCode, RoomCode, rpcError } from "../../../protocol/errors.ts";
import { CloseCode } from "../../../protocol/close-codes.ts";
import { describeIssues } from "../../../protocol/jsonrpc.ts";
import { name as nameSchema, type RoomMethod, type RoomResult, type VideoQuality } from "../../../protocol/room.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import { Connection, transportError, type CloseInfo, type RequestInput } from "./connection.ts";
import { autoSubscribe } from "./auto-subscribe.ts";
import { Emitter } from "./emitter.ts";
import { asRpcError, messageOf, RoomClientError } from "./errors.ts";
import { MediaRecovery } from "./media-recovery.ts";
import {
  dispatchNotification,
  notificationHandlers,
  reconcileRoster,
  type NotificationHandlers,
} from "./notifications.ts";
import type { Participant } from "./participant.ts";
import { connectResult, reconnectLoop, WakeableSleep } from "./reconnect.ts";
import type {
  Eviction,
  ReconnectOptions,
  RoomConnectedEvent,
  RoomEnvironment,
  RoomEvents,
  RoomOptions,
} from "./room-types.ts";
import { Roster } from "./roster.ts";
import { canSend, canTransition, type CloseReason, type ConnectionState } from "./state.ts";
import { SpeakerDetection } from "./speaker-detection.ts";
import { SCREEN_STREAM_ID, Stream, type StreamHost, type StreamOptions } from "./stream.ts";

export type {
  MediaErrorEvent,
  ReconnectOptions,
  RoomConnectedEvent,
  RoomEnvironment,
  RoomEvents,
  Eviction,
  RoomOptions,
} from "./room-types.ts";

/** Timeout of the `leaveRoom` request: leaving never hangs on a silent server. */
const LEAVE_TIMEOUT_MS = 5000;

export class Room extends Emitter<RoomEvents> {
  readonly name: string;
  readonly user: string;
  readonly subscribeToStreams: boolean;
  readonly dataChannels: boolean;
  readonly #env: RoomEnvironment;
  readonly #connection: Connection;
  readonly #host: StreamHost;
  readonly #roster: Roster;
  readonly #handlers: NotificationHandlers;
  readonly #recovery: MediaRecovery;
  readonly #reconnectSleep = new WakeableSleep();
  /** null: turned off, or no WebAudio here. */
  readonly #speakers: SpeakerDetection | null;
  /** The local screen share, while there is one. */
  #screen: Stream | null = null;
  #state: ConnectionState = "new";
  #closeReason: CloseReason | null = null;
  #sessionId: string | null = null;
  #evicted = false;
  #role: "participant" | "moderator" = "participant";
  /** The id of the room's running recording, as the server last said. */
  #recording: string | null = null;
  #eviction: Eviction | null = null;
  /** The STUN/TURN servers the room gave in its joinRoom / connect answer (fresh TURN credentials each time). */
  #serverIceServers: RTCIceServer[] = [];
  /** The joinRoom answer said the media server forwards simulcast: webcams are published in layers. */
  #simulcast = false;
  #joining: Promise<RoomConnectedEvent> | null = null;
  #leaving: Promise<void> | null = null;
  /** Candidates gathered while reconnecting: sent once the session is back. */
  #queuedIce: Array<{ endpointName: string; candidate: RTCIceCandidateInit }> = [];

  constructor(options: RoomOptions, env: RoomEnvironment) {
    super();
    this.name = options.room;
    this.user = options.user;
    this.subscribeToStreams = options.subscribeToStreams ?? true;
    this.dataChannels = options.dataChannels ?? false;
    this.#env = env;
    const emit = this.emit.bind(this);
    const connected = (): boolean => this.#state === "connected";
    this.#connection = new Connection(env.connection, {
      onNotification: (method, params) => dispatchNotification(this.#handlers, method, params, connected),
      onLost: (info) => this.#onLost(info),
    });
    this.#connection.rpcParams = { ...env.rpcParams };
    this.#host = {
      rtcConfiguration: () => this.#rtcConfiguration(),
      localUser: () => this.user,
      simulcastAvailable: () => this.#simulcast,
      request: (method, params) => this.#request(method, params),
      sendIceCandidate: (endpointName, candidate) => this.#sendIceCandidate(endpointName, candidate),
      negotiated: (stream) => this.#negotiated(stream),
      released: (stream) => this.#released(stream),
      iceFailed: (stream) => this.#recovery.iceFailed(stream),
      // Not recovered by negotiating again: it would fail the same way.
      unreachable: (stream, reason) => this.emit("error-media", { error: reason, stream }),
    };
    const remoteStream = (participant: Participant, id: string) => new Stream(this.#host, participant, false, { id });
    this.#roster = new Roster(options.user, emit, remoteStream);
    this.#recovery = new MediaRecovery({
      enabled: env.autoRecoverMedia,
      emit,
      request: (method, params) => this.#request(method, params),
      connected,
      wantedStreams: () => this.#roster.wantedStreams(),
    });
    this.#speakers = SpeakerDetection.create(options.speakerDetection, {
      emit,
      streams: () => this.#roster.streams(),
    });
    this.#handlers = notificationHandlers({
      user: this.user,
      roster: this.#roster,
      emit,
      streamAdded: (stream) => {
        if (this.subscribeToStreams) this.#autoSubscribe(stream);
      },
      evicted: (by) => {
        this.#evicted = true;
        this.#eviction = by === undefined ? { roomClosed: false } : { by, roomClosed: false };
      },
      roomClosed: (room) => {
        if (this.#eviction) this.#eviction = { ...this.#eviction, roomClosed: true };
        this.#finish(this.#evicted ? "evicted" : "room-closed");
        this.emit("room-closed", { room });
      },
      mediaError: (streams) => this.#recovery.mediaError(streams),
      forceUnpublished: (streamId, by) => this.#forceUnpublished(streamId, by),
      recording: (id, stopped) => this.#recordingChanged(id, stopped),
    });
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
    return this.#roster.local;
  }

  /** Every participant, the local one first. */
  getParticipants(): Participant[] {
    return this.#roster.participants();
  }

  getRemoteParticipants(): Participant[] {
    return this.#roster.remoteParticipants();
  }

  getParticipant(id: string): Participant | undefined {
    return this.#roster.get(id);
  }

  /** The local published stream(s) and every remote stream. */
  getStreams(): Stream[] {
    return this.#roster.streams();
  }

  /** A local stream for this room (the KurentoRoom's `Stream(room, options)`). */
  createLocalStream(options: StreamOptions = {}): Stream {
    const stream = new Stream(this.#host, this.#roster.local, true, options);
    this.#roster.addLocalStream(stream);
    return stream;
  }

  // ── screen sharing ────────────────────────────────────────────────────────
  /**
   * Shares a screen (a window, a tab: the browser asks which): a local Stream
   * with id `screen`, published beside the camera; others see `<user>_screen`.
   * Resolves with it once published. Sharing again while a share is on
   * returns the same stream. Ends by `stopScreenShare()` or by the browser's
   * own "Stop sharing" (`screen-share-stopped` either way).
   */
  async shareScreen(options: Omit<StreamOptions, "id" | "mediaStream"> = {}): Promise<Stream> {
    if (this.#screen && !this.#screen.disposed) return this.#screen;
    const screen = this.createLocalStream({ ...options, id: SCREEN_STREAM_ID });
    this.#screen = screen;
    try {
      const media = await screen.init();
      for (const track of media.getVideoTracks()) {
        // The browser's "Stop sharing" ends the track: the share ends with it.
        track.addEventListener("ended", () => {
          if (this.#screen === screen) void this.stopScreenShare();
        });
      }
      if (this.#screen !== screen) throw new RoomClientError("cancelled", "the screen share was stopped");
      await screen.publish();
      return screen;
    } catch (error) {
      if (this.#screen === screen) this.#screen = null;
      screen.dispose();
      throw error;
    }
  }

  /** The local screen share, if any. */
  getScreenShare(): Stream | null {
    return this.#screen;
  }

  /** Stops sharing the screen: unpublishes it and releases the capture. */
  async stopScreenShare(): Promise<void> {
    const screen = this.#screen;
    if (!screen) return;
    this.#screen = null;
    try {
      if (screen.status !== "idle" && canSend(this.#state)) await screen.unpublish();
    } finally {
      screen.dispose();
      this.emit("screen-share-stopped", { stream: screen });
    }
  }

  // ── speakers ──────────────────────────────────────────────────────────────
  /** The loudest speaking stream (null: nobody, or detection off). */
  getActiveSpeaker(): Stream | null {
    return this.#speakers?.activeSpeaker ?? null;
  }

  /** Whether `stream` is speaking now (false when detection is off). */
  isSpeaking(stream: Stream): boolean {
    return this.#speakers?.isSpeaking(stream) ?? false;
  }

  /** Whether speakers are detected here (on, and WebAudio available). */
  get speakerDetection(): boolean {
    return this.#speakers !== null;
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
    if (this.#state !== "new") {
      const message = "connect() was called on a closed room: create a new Room to join again";
      throw new RoomClientError("room-closed", message);
    }
    for (const [field, value] of [
      ["user", this.user],
      ["room", this.name],
    ] as const) {
      const checked = nameSchema.safeParse(value);
      if (!checked.success) {
        // The server's own rule and answer (-32602), given before anything is sent.
        const message = `Invalid ${field} name: ${describeIssues(checked.error)}`;
        return this.#joinFailed(new RpcRequestError(rpcError(JsonRpcCode.INVALID_PARAMS, message)));
      }
    }
    this.#transition("connecting");
    try {
      await this.#connection.open(this.#env.url);
      if (!this.#isIn("connecting")) throw new RoomClientError("room-closed", "joining was cancelled");
      const joined = await this.#connection.request("joinRoom", {
        user: this.user,
        room: this.name,
        // Always: this client tells several streams per participant apart (a screen beside the webcam,
        // `participantUnpublished`'s streamId). Servers without multi-stream support drop the field.
        multiStream: true,
        ...(this.dataChannels ? { dataChannels: true } : {}),
      });
      if (!this.#isIn("connecting")) throw new RoomClientError("room-closed", "joining was cancelled");
      this.#sessionId = joined.sessionId;
      this.#role = joined.role ?? "participant";
      this.#serverIceServers = (joined.iceServers ?? []).map(toRtcIceServer);
      this.#simulcast = joined.simulcast === true;
      const event = this.#roster.adopt(joined.value);
      this.#transition("connected");
      this.#speakers?.start();
      this.emit("room-connected", event);
      if (this.subscribeToStreams) for (const stream of event.streams) this.#autoSubscribe(stream);
      return event;
    } catch (error) {
      // Cancelled by leave(): the stay is already over, nothing to report.
      if (error instanceof RoomClientError) throw error;
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

  // ── requests ──────────────────────────────────────────────────────────────
  #request<M extends RoomMethod>(method: M, params: RequestInput<M>): Promise<RoomResult<M>> {
    if (!canSend(this.#state)) {
      return Promise.reject(transportError(`cannot send ${method}: the room is ${this.#state}`));
    }
    return this.#connection.request(method, params);
  }

  /** The app's RTCConfiguration with the room's ICE servers after its own. */
  #rtcConfiguration(): RTCConfiguration {
    const own = this.#env.rtcConfiguration;
    if (this.#serverIceServers.length === 0) return own;
    return { ...own, iceServers: [...(own.iceServers ?? []), ...this.#serverIceServers] };
  }

  /** How this participant was evicted, once it was: by whom (a moderator; absent: the server) and whether the whole room closed. */
  get eviction(): Eviction | null {
    return this.#eviction;
  }

  /** `moderator` when the join token granted it (the server says so in the join answer). */
  get role(): "participant" | "moderator" {
    return this.#role;
  }

  /** The running recording's id, or null when the room is not being recorded. */
  get recording(): string | null {
    return this.#recording;
  }

  /**
   * Starts recording the room; resolves with the recording's id. The server
   * refuses unless it allows recording from clients (ALLOW_RECORDING_FROM_CLIENTS,
   * moderators only when join tokens are in use).
   */
  async startRecording(name?: string): Promise<string> {
    const result = await this.#request("startRecording", name === undefined ? {} : { name });
    // The caller sees the recording at once, whichever of the reply and the notification comes first.
    this.#recordingChanged(result.id, undefined);
    return result.id;
  }

  /** Stops the room's recording; resolves with its id. Same permission as startRecording. */
  async stopRecording(): Promise<string> {
    const result = await this.#request("stopRecording", {});
    this.#recordingChanged(null, result.id);
    return result.id;
  }

  #recordingChanged(id: string | null, stopped: string | undefined): void {
    if (id !== null) {
      // Sent again after a resumed session: only a change is an event.
      if (this.#recording === id) return;
      this.#recording = id;
      this.emit("recording-started", { id });
      return;
    }
    if (stopped === undefined || this.#recording !== stopped) return;
    this.#recording = null;
    this.emit("recording-stopped", { id: stopped });
  }

  /** Moderators: removes `user` from the room (it gets `participant-evicted`). */
  async evictParticipant(user: string): Promise<void> {
    await this.#request("evictParticipant", { user });
  }

  /** Moderators: stops `user`'s stream (it gets `stream-force-unpublished`). */
  async forceUnpublish(user: string, streamId?: string): Promise<void> {
    await this.#request("forceUnpublish", streamId === undefined ? { user } : { user, streamId });
  }

  /** The server stopped our stream: it is released here too (no recovery), and the app is told who did it. */
  #forceUnpublished(streamId: string, by: string | undefined): void {
    for (const stream of this.#roster.localStreams()) {
      if (stream.getGlobalID() !== streamId) continue;
      // The server already dropped it: unpublish's own request gets 105, which it takes as done.
      if (stream === this.#screen) this.stopScreenShare().catch(() => undefined);
      else stream.unpublish().catch(() => undefined);
      this.emit("stream-force-unpublished", by === undefined ? { stream } : { stream, by });
    }
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

  /** Whether this room's media server forwards simulcast (webcams are then published in layers). */
  get simulcast(): boolean {
    return this.#simulcast;
  }

  /** Which simulcast layer of a remote stream to receive: `stream.setVideoQuality(quality)`. */
  setVideoQuality(stream: Stream, quality: VideoQuality): Promise<void> {
    return stream.setVideoQuality(quality);
  }

  unsubscribe(stream: Stream): Promise<void> {
    return stream.unsubscribe();
  }

  /** The original `disconnect(stream)`: unpublish the local stream, or stop receiving a remote one. */
  disconnect(stream: Stream): Promise<void> {
    return stream.local ? stream.unpublish() : stream.unsubscribe();
  }

  /** See auto-subscribe.ts. */
  #autoSubscribe(stream: Stream): void {
    autoSubscribe(stream, {
      connected: () => this.#state === "connected",
      emit: this.emit.bind(this),
      release: (released) => this.#request("unsubscribeFromVideo", { sender: released.getGlobalID() }),
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
          console.warn(`kurento-room: ICE candidate for '${endpointName}' not delivered: ${messageOf(error)}`);
        }
      });
  }

  #negotiated(stream: Stream): void {
    if (stream.local) this.#roster.local.addStream(stream);
    if (this.#recovery.isRecovering(stream)) this.emit("stream-recovered", { stream });
    else this.emit(stream.local ? "stream-published" : "stream-subscribed", { stream });
  }

  #released(stream: Stream): void {
    if (stream.local) this.#roster.local.removeStream(stream);
    this.emit(stream.local ? "stream-unpublished" : "stream-unsubscribed", { stream });
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
    const outcome = await reconnectLoop(options, {
      reconnecting: () => this.#state === "reconnecting",
      announce: (attempt, delayMs) => this.emit("reconnecting", { room: this.name, attempt, delayMs }),
      open: () => this.#connection.open(this.#env.url),
      resume: async () => {
        const resumed = await this.#connection.requestWith(
          "connect",
          { sessionId: this.#sessionId ?? "" },
          connectResult,
        );
        // Fresh TURN credentials for the peer connections made from now on.
        if (resumed.iceServers) this.#serverIceServers = resumed.iceServers.map(toRtcIceServer);
        return resumed;
      },
      abandon: () => this.#connection.close(CloseCode.NORMAL, "resume failed"),
      sleep: (ms) => this.#reconnectSleep.sleep(ms),
    });
    switch (outcome.kind) {
      case "stopped":
        return;
      case "resumed":
        this.#transition("connected");
        if (outcome.roster) reconcileRoster(outcome.roster, this.user, this.#roster, this.#handlers);
        for (const queued of this.#queuedIce.splice(0)) this.#sendIceCandidate(queued.endpointName, queued.candidate);
        this.emit("reconnected", { room: this.name });
        this.#recovery.resumed();
        return;
      case "expired": {
        this.#finish("session-expired");
        const message = `Your place in room '${this.name}' expired while the connection was down: join again`;
        this.emit("error-room", { error: new RpcRequestError(rpcError(INVALID_SESSION_CODE, message)) });
        return;
      }
      case "gave-up": {
        this.#finish("reconnect-failed");
        const seconds = Math.round(options.timeoutMs / 1000);
        const detail = outcome.lastError ? ` (${outcome.lastError})` : "";
        this.emit("error-room", {
          error: transportError(`Could not reconnect to room '${this.name}' within ${seconds} s${detail}`),
        });
        return;
      }
    }
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
        this.#reconnectSleep.wake();
        this.#finish("left");
        return;
      case "connecting":
      case "connected":
        break;
    }
    this.#transition("leaving");
    if (!forced && this.#connection.isOpen) {
      await this.#connection.request("leaveRoom", {}, LEAVE_TIMEOUT_MS).catch(() => undefined);
    }
    this.#finish("left");
  }

  /** Ends the stay: closes the socket, releases every stream (and the local camera). */
  #finish(reason: CloseReason): void {
    if (this.#state === "closed") return;
    this.#closeReason = reason;
    this.#transition("closed");
    this.#reconnectSleep.wake();
    this.#connection.close(CloseCode.NORMAL, reason);
    this.#queuedIce = [];
    this.#speakers?.stop();
    this.#screen = null;
    this.#roster.clear();
  }
}

function toRtcIceServer(server: {
  urls: string | string[];
  username?: string | undefined;
  credential?: string | undefined;
}): RTCIceServer {
  return {
    urls: server.urls,
    ...(server.username === undefined ? {} : { username: server.username }),
    ...(server.credential === undefined ? {} : { credential: server.credential }),
  };
}
