/**
 * A media stream in the room: the local camera and microphone (published with
 * `publish()`), or a remote participant's published stream (received with
 * `subscribe()`). This file holds what the application calls and the
 * stream's state; each negotiation is a PeerSession (negotiation.ts), the
 * DOM is the StreamRenderer's (rendering.ts), the DataChannel the
 * DataChannelLink's (data-channel.ts).
 *
 * Over 400 lines for a reason: Stream is the original KurentoRoom.js object,
 * and its ~40 public methods (most a line or two) stay on it.
 */
import { RoomCode } from "../../../protocol/errors.ts";
import {
  streamIdOf,
  type VideoQuality,
  WEBCAM_STREAM,
  type RoomMethod,
  type RoomResult,
} from "../../../protocol/room.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import type { RequestInput } from "./connection.ts";
import { DataChannelLink } from "./data-channel.ts";
import { Emitter } from "./emitter.ts";
import { cancelled, RoomClientError } from "./errors.ts";
import { PeerSession } from "./negotiation.ts";
import type { Participant } from "./participant.ts";
import { StreamRenderer } from "./rendering.ts";

export const DEFAULT_STREAM_ID = WEBCAM_STREAM;
/** The id of a shared screen (`room.shareScreen()`), remote ones `<user>_screen`. */
export const SCREEN_STREAM_ID = "screen";

/** What a stream carries: a camera (and microphone), or a shared screen. */
export type StreamKind = "webcam" | "screen";

export interface StreamOptions {
  /**
   * Stream id (default `webcam`): `screen` for a shared screen (its media comes
   * from getDisplayMedia). Others match `^[a-z0-9-]{1,32}$` on servers that take
   * several streams per participant.
   */
  readonly id?: string;
  /** Microphone: true (default), false, or constraints. For a screen: the shared tab's or system's sound (default false). */
  readonly audio?: boolean | MediaTrackConstraints;
  /** Camera: true, false, or constraints (default: about 640 px wide, 15 fps, as the original). */
  readonly video?: boolean | MediaTrackConstraints;
  /** Open a DataChannel with the published stream (`sendData`). */
  readonly data?: boolean;
  /** Use this MediaStream instead of asking for the camera in `init()`. */
  readonly mediaStream?: MediaStream;
  /**
   * For the local webcam: publish it in simulcast layers when the room offers it (default true;
   * `Room.simulcast` says whether it does). Screens are never layered.
   */
  readonly simulcast?: boolean;
  /** For remote streams: which simulcast layer to receive first (`setVideoQuality` changes it); default the best. */
  readonly videoQuality?: VideoQuality;
  /** For remote streams: receive audio / video (both default to true). */
  readonly recvAudio?: boolean;
  readonly recvVideo?: boolean;
}

export interface StreamEvents {
  "access-accepted": { stream: Stream; mediaStream: MediaStream };
  "access-denied": { stream: Stream; error: Error };
  /** The media to show changed (a track arrived, or it went away: `mediaStream` null). */
  "media-changed": { stream: Stream; mediaStream: MediaStream | null };
  "ice-state-changed": { stream: Stream; state: RTCIceConnectionState };
  /** A message on the stream's DataChannel. */
  data: { stream: Stream; data: string | ArrayBuffer };
}

/** Where a stream's negotiation stands. */
export type StreamStatus = "idle" | "negotiating" | "live";

/** What a stream needs from its room (the Room implements it). */
export interface StreamHost {
  /** The configuration of the next peer connection (the app's own, plus the ICE servers the room gave). */
  rtcConfiguration(): RTCConfiguration;
  localUser(): string;
  request<M extends RoomMethod>(method: M, params: RequestInput<M>): Promise<RoomResult<M>>;
  sendIceCandidate(endpointName: string, candidate: RTCIceCandidateInit): void;
  negotiated(stream: Stream): void;
  released(stream: Stream): void;
  iceFailed(stream: Stream): void;
  /** Whether the room's media server forwards simulcast (its joinRoom answer said so). */
  simulcastAvailable(): boolean;
  /** The stream's peer connection can never connect (no local ICE candidate at all). */
  unreachable(stream: Stream, reason: string): void;
}

function wrongKind(message: string): RoomClientError {
  return new RoomClientError("wrong-stream-kind", message);
}

export class Stream extends Emitter<StreamEvents> {
  readonly local: boolean;
  readonly options: StreamOptions;
  readonly #host: StreamHost;
  readonly #participant: Participant;
  readonly #id: string;
  readonly #renderer: StreamRenderer;
  readonly #channel = new DataChannelLink();
  #status: StreamStatus = "idle";
  /** What the application asked for (publish/subscribe), kept across reconnections. */
  #wanted = false;
  #videoQuality: VideoQuality | undefined;
  #userMedia: MediaStream | null = null;
  #remoteMedia: MediaStream | null = null;
  #session: PeerSession | null = null;
  #showMyRemote = false;
  #mirrored = false;
  #disposed = false;

  constructor(host: StreamHost, participant: Participant, local: boolean, options: StreamOptions = {}) {
    super();
    this.#host = host;
    this.#participant = participant;
    this.#videoQuality = options.videoQuality;
    this.local = local;
    this.options = options;
    this.#id = options.id ?? DEFAULT_STREAM_ID;
    if (options.mediaStream) this.#userMedia = options.mediaStream;
    this.#renderer = new StreamRenderer(this);
  }

  // ── identity ──────────────────────────────────────────────────────────────
  getID(): string {
    return this.#id;
  }

  /** `<user>_<id>`, e.g. `alice_webcam`: the stream's name in the protocol. */
  getGlobalID(): string {
    return streamIdOf(this.#participant.getID(), this.#id);
  }

  /** The stream's id within its participant (`webcam`, `screen`…): the same as `getID()`. */
  getStreamId(): string {
    return this.#id;
  }

  /** `screen` for a shared screen, `webcam` for anything else (the camera, as the original). */
  get kind(): StreamKind {
    return this.#id === SCREEN_STREAM_ID ? "screen" : "webcam";
  }

  /**
   * The name this stream's endpoint has in ICE messages: the user name for
   * the webcam (as the original), `<user>_<id>` for any other stream.
   */
  get endpointName(): string {
    const user = this.#participant.getID();
    return this.#id === DEFAULT_STREAM_ID ? user : streamIdOf(user, this.#id);
  }

  getParticipant(): Participant {
    return this.#participant;
  }

  isLocal(): boolean {
    return this.local;
  }

  get status(): StreamStatus {
    return this.#status;
  }

  /** Whether the application wants this stream published / received. */
  get wanted(): boolean {
    return this.#wanted;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  // ── media access ──────────────────────────────────────────────────────────
  /**
   * Asks for the camera and microphone; emits `access-accepted` or
   * `access-denied` (and resolves / rejects the same way).
   */
  async init(): Promise<MediaStream> {
    if (!this.local) throw wrongKind("init() is for local streams");
    const promise = this.#acquire();
    promise.catch(() => undefined); // The event reports it; an ignored promise is not an unhandled rejection.
    return promise;
  }

  async #acquire(): Promise<MediaStream> {
    try {
      let media = this.#userMedia;
      if (!media) {
        media = this.kind === "screen" ? await this.#captureScreen() : await this.#captureCamera();
        if (this.#disposed) {
          for (const track of media.getTracks()) track.stop();
          throw cancelled("Camera access");
        }
        this.#userMedia = media;
      }
      this.emit("access-accepted", { stream: this, mediaStream: media });
      this.#renderer.refresh();
      return media;
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      this.emit("access-denied", { stream: this, error: failure });
      throw failure;
    }
  }

  async #captureCamera(): Promise<MediaStream> {
    const devices = mediaDevices();
    if (!devices?.getUserMedia) {
      const why = "getUserMedia is not available here (not a browser, or not a secure context)";
      throw new RoomClientError("unsupported", why);
    }
    return devices.getUserMedia({
      audio: this.options.audio ?? true,
      video: this.options.video ?? { width: { ideal: 640 }, frameRate: { ideal: 15 } },
    });
  }

  async #captureScreen(): Promise<MediaStream> {
    const devices = mediaDevices();
    if (!devices?.getDisplayMedia) {
      throw new RoomClientError("unsupported", "getDisplayMedia is not available here: screens cannot be shared");
    }
    return devices.getDisplayMedia({
      audio: this.options.audio ?? false,
      video: this.options.video ?? { frameRate: { ideal: 15 } },
    });
  }

  // ── loopback and mirror (the original's names) ────────────────────────────
  /** Publish with server loopback and show the looped-back video instead of the local one. */
  subscribeToMyRemote(): void {
    this.#showMyRemote = true;
  }

  displayMyRemote(): boolean {
    return this.#showMyRemote;
  }

  /** Make this (local, never published) stream show another stream's local media, unchanged. */
  mirrorLocalStream(media: MediaStream | null | undefined): void {
    this.#showMyRemote = true;
    this.#mirrored = true;
    if (media) this.#userMedia = media;
    this.#renderer.refresh();
  }

  isLocalMirrored(): boolean {
    return this.#mirrored;
  }

  /**
   * The original `getWrStream()`: the camera stream for a local stream, the
   * received media for a remote one.
   */
  getWrStream(): MediaStream | null {
    return this.local ? this.#userMedia : this.#remoteMedia;
  }

  /** What the video elements show: the received media, or the local camera. */
  getDisplayedMediaStream(): MediaStream | null {
    if (!this.local) return this.#remoteMedia;
    if (this.#showMyRemote && !this.#mirrored) return this.#remoteMedia;
    return this.#userMedia;
  }

  /** The media received from the server (a remote stream, or a local stream's loopback). */
  getRemoteMediaStream(): MediaStream | null {
    return this.#remoteMedia;
  }

  /** The current peer connection (the original `getWebRtcPeer()`). */
  getWebRtcPeer(): RTCPeerConnection | null {
    return this.#session?.pc ?? null;
  }

  // ── mute ──────────────────────────────────────────────────────────────────
  muteAudio(muted = true): void {
    for (const track of this.#userMedia?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  unmuteAudio(): void {
    this.muteAudio(false);
  }

  muteVideo(muted = true): void {
    for (const track of this.#userMedia?.getVideoTracks() ?? []) track.enabled = !muted;
  }

  unmuteVideo(): void {
    this.muteVideo(false);
  }

  isAudioMuted(): boolean {
    return allDisabled(this.#userMedia?.getAudioTracks() ?? []);
  }

  isVideoMuted(): boolean {
    return allDisabled(this.#userMedia?.getVideoTracks() ?? []);
  }

  /** The original demo's property spelling. */
  get audioEnabled(): boolean {
    return !this.isAudioMuted();
  }

  set audioEnabled(enabled: boolean) {
    this.muteAudio(!enabled);
  }

  get videoEnabled(): boolean {
    return !this.isVideoMuted();
  }

  set videoEnabled(enabled: boolean) {
    this.muteVideo(!enabled);
  }

  // ── publish / subscribe ───────────────────────────────────────────────────
  /** Publishes the local media (call `init()` first). Resolves once the server's answer is applied. */
  async publish(): Promise<void> {
    if (!this.local) throw wrongKind("publish() is for the local stream; use subscribe() for remote ones");
    this.#checkUsable("publish()");
    if (this.#mirrored) throw new RoomClientError("mirror-stream", "a mirror stream cannot be published");
    if (!this.#userMedia) throw new RoomClientError("not-initialized", "call init() before publish()");
    if (this.#status !== "idle") {
      const state = this.#status === "live" ? "published" : "being published";
      throw new RoomClientError("already-active", `stream ${this.getGlobalID()} is already ${state}`);
    }
    this.#wanted = true;
    await this.negotiate();
  }

  /** Receives this remote stream. Resolves once the server's answer is applied. */
  async subscribe(): Promise<void> {
    if (this.local) throw wrongKind("subscribe() is for remote streams");
    this.#checkUsable("subscribe()");
    if (this.#status !== "idle") {
      const state = this.#status === "live" ? "subscribed to" : "subscribing to";
      throw new RoomClientError("already-active", `already ${state} ${this.getGlobalID()}`);
    }
    this.#wanted = true;
    await this.negotiate();
  }

  /**
   * For a remote stream: which simulcast layer to receive (`high`, `medium`, `low`). Kept across
   * reconnections; with a publisher (or media server) without simulcast, nothing changes.
   * The server switches at the new layer's next keyframe, so the picture never breaks.
   */
  async setVideoQuality(quality: VideoQuality): Promise<void> {
    if (this.local) throw wrongKind("setVideoQuality() is for remote streams");
    this.#checkUsable("setVideoQuality()");
    if (this.#videoQuality === quality) return;
    this.#videoQuality = quality;
    // Not receiving yet: the next receiveVideoFrom carries it.
    if (this.#status === "idle") return;
    await this.#host.request("setVideoQuality", { sender: this.getGlobalID(), quality });
  }

  /** The simulcast layer asked for (remote streams), if any. */
  get videoQuality(): VideoQuality | undefined {
    return this.#videoQuality;
  }

  /** Stops publishing; the camera stays on (publish again at will). */
  async unpublish(): Promise<void> {
    if (!this.local) throw wrongKind("unpublish() is for the local stream");
    // 105: the server already dropped it (media lost); nothing left to undo.
    await this.#stop(() => this.#host.request("unpublishVideo", this.unpublishParams()), RoomCode.USER_NOT_STREAMING);
  }

  /** Stops receiving this remote stream; its video elements stay (empty) until disposed. */
  async unsubscribe(): Promise<void> {
    if (this.local) throw wrongKind("unsubscribe() is for remote streams");
    // 101: not receiving (already gone on the server).
    const release = () => this.#host.request("unsubscribeFromVideo", { sender: this.getGlobalID() });
    await this.#stop(release, RoomCode.USER_GENERIC);
  }

  async #stop(release: () => Promise<unknown>, alreadyGone: number): Promise<void> {
    this.#wanted = false;
    const wasActive = this.#status !== "idle";
    this.#closePeer();
    if (!wasActive) return;
    try {
      await release();
    } catch (error) {
      if (!(error instanceof RpcRequestError && error.code === alreadyGone)) throw error;
    } finally {
      this.#host.released(this);
    }
  }

  /**
   * One full negotiation (a fresh peer connection): used by publish and
   * subscribe, and by the room to recover media after a loss.
   */
  async negotiate(): Promise<void> {
    this.#checkUsable("negotiate()");
    const Peer = (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
    if (!Peer) throw new RoomClientError("unsupported", "WebRTC (RTCPeerConnection) is not available here");
    const sendMedia = this.local ? this.#userMedia : null;
    if (this.local && !sendMedia) throw new RoomClientError("not-initialized", "no local media");
    this.#closePeer();
    const host = this.#host;
    const endpointName = this.endpointName;
    const session: PeerSession = new PeerSession(Peer, {
      rtcConfiguration: host.rtcConfiguration(),
      streamId: this.getGlobalID(),
      what: this.local ? "publishing" : `subscribing to ${this.getGlobalID()}`,
      sendMedia,
      loopback: this.#showMyRemote,
      recvAudio: this.options.recvAudio ?? true,
      recvVideo: this.options.recvVideo ?? true,
      dataChannelLabel: this.local && this.options.data ? this.getGlobalID() : null,
      simulcast: this.local && this.kind === "webcam" && this.options.simulcast !== false && host.simulcastAvailable(),
      offer: (sdpOffer) =>
        this.local
          ? host.request("publishVideo", { sdpOffer, doLoopback: this.#showMyRemote, ...this.#streamIdParam() })
          : host.request("receiveVideoFrom", {
              sender: this.getGlobalID(),
              sdpOffer,
              ...(this.#videoQuality ? { quality: this.#videoQuality } : {}),
            }),
      sendCandidate: (candidate) => host.sendIceCandidate(endpointName, candidate),
      // Unpublished / unsubscribed while the server was working: undo what it built.
      staleAnswer: () => {
        if (!this.#wanted && !this.#disposed) this.#releaseOnServer();
      },
      onTrack: (track) => this.#addRemoteTrack(track),
      onIceState: (state) => {
        this.emit("ice-state-changed", { stream: this, state });
        if (state === "failed" && this.#status === "live" && this.#session === session) host.iceFailed(this);
      },
      onNoCandidates: () => {
        if (this.#session !== session) return;
        const relayOnly = host.rtcConfiguration().iceTransportPolicy === "relay";
        host.unreachable(
          this,
          relayOnly
            ? `No relay candidate for ${this.getGlobalID()}: the TURN server refused this client or cannot be reached (iceTransportPolicy is "relay")`
            : `No ICE candidate for ${this.getGlobalID()}: this browser found no network path`,
        );
      },
      onDataChannel: (channel) => this.#channel.attach(channel, (data) => this.emit("data", { stream: this, data })),
    });
    this.#session = session;
    this.#status = "negotiating";
    try {
      await session.run();
      this.#status = "live";
      host.negotiated(this);
    } catch (error) {
      if (this.#session === session) this.#closePeer();
      throw error;
    }
  }

  #addRemoteTrack(track: MediaStreamTrack): void {
    const media = this.#remoteMedia ?? new MediaStream();
    if (!media.getTracks().includes(track)) media.addTrack(track);
    this.#remoteMedia = media;
    this.emit("media-changed", { stream: this, mediaStream: this.getDisplayedMediaStream() });
    this.#renderer.refresh();
  }

  #releaseOnServer(): void {
    const undo = this.local
      ? this.#host.request("unpublishVideo", this.unpublishParams())
      : this.#host.request("unsubscribeFromVideo", { sender: this.getGlobalID() });
    undo.catch(() => undefined);
  }

  /**
   * `streamId` for any stream but the webcam: the webcam's requests stay the
   * original's, so an older server (one stream per participant) takes them.
   */
  #streamIdParam(): { streamId?: string } {
    return this.#id === DEFAULT_STREAM_ID ? {} : { streamId: this.#id };
  }

  /** The params of this (local) stream's `unpublishVideo`. */
  unpublishParams(): { streamId?: string } {
    return this.#streamIdParam();
  }

  /** A candidate the server gathered for this stream's endpoint. */
  addRemoteCandidate(candidate: RTCIceCandidateInit): void {
    this.#session?.addRemoteCandidate(candidate);
  }

  #checkUsable(call: string): void {
    if (this.#disposed) throw new RoomClientError("disposed", `${call}: stream ${this.getGlobalID()} was disposed`);
  }

  // ── data channel ──────────────────────────────────────────────────────────
  /** Sends on the published stream's DataChannel (needs `data: true` and an open channel). */
  sendData(data: string | ArrayBuffer): void {
    if (!this.local || !this.options.data) {
      throw new RoomClientError("data-channel", "sendData() needs a local stream created with data: true");
    }
    this.#channel.send(data, this.getGlobalID());
  }

  // ── playback (rendering.ts) ───────────────────────────────────────────────
  /**
   * Appends a `<video>` (autoplay, no controls, muted for local streams) to
   * `parentElement` (an element or its id). The element with id
   * `thumbnailId`, if given, is shown once there is media to play.
   */
  playOnlyVideo(
    parentElement: string | HTMLElement,
    thumbnailId?: string,
    options: { id?: string } = {},
  ): HTMLVideoElement {
    return this.#renderer.playOnlyVideo(parentElement, thumbnailId, options);
  }

  /**
   * Creates `<div class="participant" id="<globalId>">` with a name tag
   * (`<div class="name">`) inside the element `thumbnailId` and plays the
   * video in it.
   */
  playThumbnail(thumbnailId: string): HTMLElement {
    return this.#renderer.playThumbnail(thumbnailId);
  }

  /** Stops showing the stream in `video` and removes the element. */
  stopPlaying(video: HTMLVideoElement): void {
    this.#renderer.stopPlaying(video);
  }

  // ── teardown ──────────────────────────────────────────────────────────────
  #closePeer(): void {
    const session = this.#session;
    this.#session = null;
    this.#channel.detach();
    this.#status = "idle";
    session?.close();
    if (this.#remoteMedia) {
      for (const track of this.#remoteMedia.getTracks()) track.stop();
      this.#remoteMedia = null;
      this.emit("media-changed", { stream: this, mediaStream: this.getDisplayedMediaStream() });
      this.#renderer.refresh();
    }
  }

  /** Forgets the server side without telling it (it already knows: the media was lost, or the room ended). */
  reset(): void {
    this.#closePeer();
  }

  /**
   * Releases everything: the peer connection, the video elements and, for a
   * local stream, the camera (unless `keepLocalMedia`).
   */
  dispose(options: { keepLocalMedia?: boolean } = {}): void {
    this.#disposed = true;
    this.#wanted = false;
    this.#closePeer();
    this.#renderer.clear();
    if (this.local && !this.#mirrored && !options.keepLocalMedia) {
      for (const track of this.#userMedia?.getTracks() ?? []) track.stop();
    }
  }
}

function allDisabled(tracks: readonly MediaStreamTrack[]): boolean {
  return tracks.length > 0 && tracks.every((t) => !t.enabled);
}

function mediaDevices(): MediaDevices | undefined {
  return (globalThis as { navigator?: { mediaDevices?: MediaDevices } }).navigator?.mediaDevices;
}
