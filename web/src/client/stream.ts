/**
 * A media stream in the room: the local camera and microphone (published with
 * `publish()`), or a remote participant's published stream (received with
 * `subscribe()`). Each negotiation is one RTCPeerConnection with trickle ICE
 * both ways: local candidates go out once the offer has been sent, remote
 * candidates wait until the answer is applied.
 */
import { RoomCode, rpcError } from "../../../protocol/errors.ts";
import type { RoomMethod, RoomResult } from "../../../protocol/room.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import type { RequestInput } from "./connection.ts";
import { Emitter } from "./emitter.ts";
import type { Participant } from "./participant.ts";

export const DEFAULT_STREAM_ID = "webcam";

export interface StreamOptions {
  /** Stream id (default `webcam`, the only one the server accepts for publishing). */
  readonly id?: string;
  /** Microphone: true (default), false, or constraints. */
  readonly audio?: boolean | MediaTrackConstraints;
  /** Camera: true, false, or constraints (default: about 640 px wide, 15 fps, as the original). */
  readonly video?: boolean | MediaTrackConstraints;
  /** Open a DataChannel with the published stream (`sendData`). */
  readonly data?: boolean;
  /** Use this MediaStream instead of asking for the camera in `init()`. */
  readonly mediaStream?: MediaStream;
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
  readonly rtcConfiguration: RTCConfiguration;
  localUser(): string;
  request<M extends RoomMethod>(method: M, params: RequestInput<M>): Promise<RoomResult<M>>;
  sendIceCandidate(endpointName: string, candidate: RTCIceCandidateInit): void;
  negotiated(stream: Stream): void;
  released(stream: Stream): void;
  iceFailed(stream: Stream): void;
}

function cancelled(what: string): RpcRequestError {
  return new RpcRequestError(rpcError(RoomCode.GENERIC, `${what} was cancelled: the stream was released meanwhile`));
}

function usageError(message: string): RpcRequestError {
  return new RpcRequestError(rpcError(RoomCode.USER_GENERIC, message));
}

interface VideoBinding {
  readonly video: HTMLVideoElement;
  readonly thumbnailId: string | undefined;
}

export class Stream extends Emitter<StreamEvents> {
  readonly local: boolean;
  readonly options: StreamOptions;
  readonly #host: StreamHost;
  readonly #participant: Participant;
  readonly #id: string;
  #status: StreamStatus = "idle";
  /** What the application asked for (publish/subscribe), kept across reconnections. */
  #wanted = false;
  #userMedia: MediaStream | null = null;
  #remoteMedia: MediaStream | null = null;
  #pc: RTCPeerConnection | null = null;
  #channel: RTCDataChannel | null = null;
  #generation = 0;
  #signalled = false;
  #localCandidates: RTCIceCandidateInit[] = [];
  #lastLocalCandidate: RTCIceCandidateInit | null = null;
  #remoteDescriptionSet = false;
  #remoteCandidates: RTCIceCandidateInit[] = [];
  #showMyRemote = false;
  #mirrored = false;
  #disposed = false;
  readonly #videos: VideoBinding[] = [];
  readonly #elements: HTMLElement[] = [];

  constructor(host: StreamHost, participant: Participant, local: boolean, options: StreamOptions = {}) {
    super();
    this.#host = host;
    this.#participant = participant;
    this.local = local;
    this.options = options;
    this.#id = options.id ?? DEFAULT_STREAM_ID;
    if (options.mediaStream) this.#userMedia = options.mediaStream;
  }

  // ── identity ──────────────────────────────────────────────────────────────
  getID(): string {
    return this.#id;
  }

  /** `<user>_<id>`, e.g. `alice_webcam`: the stream's name in the protocol. */
  getGlobalID(): string {
    return `${this.#participant.getID()}_${this.#id}`;
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

  // ── media access ──────────────────────────────────────────────────────────
  /**
   * Asks for the camera and microphone; emits `access-accepted` or
   * `access-denied` (and resolves / rejects the same way).
   */
  async init(): Promise<MediaStream> {
    if (!this.local) throw usageError("init() is for local streams");
    const promise = this.#acquire();
    promise.catch(() => undefined); // The event reports it; an ignored promise is not an unhandled rejection.
    return promise;
  }

  async #acquire(): Promise<MediaStream> {
    try {
      let media = this.#userMedia;
      if (!media) {
        const devices = (globalThis as { navigator?: { mediaDevices?: MediaDevices } }).navigator?.mediaDevices;
        if (!devices?.getUserMedia) throw new Error("getUserMedia is not available here (not a browser, or not a secure context)");
        media = await devices.getUserMedia({
          audio: this.options.audio ?? true,
          video: this.options.video ?? { width: { ideal: 640 }, frameRate: { ideal: 15 } },
        });
        if (this.#disposed) {
          for (const track of media.getTracks()) track.stop();
          throw cancelled("Camera access");
        }
        this.#userMedia = media;
      }
      this.emit("access-accepted", { stream: this, mediaStream: media });
      this.#refreshVideos();
      return media;
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      this.emit("access-denied", { stream: this, error: failure });
      throw failure;
    }
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
    this.#refreshVideos();
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
    return this.#pc;
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
    const tracks = this.#userMedia?.getAudioTracks() ?? [];
    return tracks.length > 0 && tracks.every((t) => !t.enabled);
  }

  isVideoMuted(): boolean {
    const tracks = this.#userMedia?.getVideoTracks() ?? [];
    return tracks.length > 0 && tracks.every((t) => !t.enabled);
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
    if (!this.local) throw usageError("publish() is for the local stream; use subscribe() for remote ones");
    if (this.#mirrored) throw usageError("a mirror stream cannot be published");
    if (!this.#userMedia) throw usageError("call init() before publish()");
    if (this.#status !== "idle") throw usageError(`stream ${this.getGlobalID()} is already ${this.#status === "live" ? "published" : "being published"}`);
    this.#wanted = true;
    await this.negotiate();
  }

  /** Receives this remote stream. Resolves once the server's answer is applied. */
  async subscribe(): Promise<void> {
    if (this.local) throw usageError("subscribe() is for remote streams");
    if (this.#status !== "idle") throw usageError(`already ${this.#status === "live" ? "subscribed to" : "subscribing to"} ${this.getGlobalID()}`);
    this.#wanted = true;
    await this.negotiate();
  }

  /** Stops publishing; the camera stays on (publish again at will). */
  async unpublish(): Promise<void> {
    if (!this.local) throw usageError("unpublish() is for the local stream");
    this.#wanted = false;
    const wasActive = this.#status !== "idle";
    this.#closePeer();
    if (wasActive) {
      try {
        await this.#host.request("unpublishVideo", {});
      } catch (error) {
        // 105: the server already dropped it (media lost); nothing left to undo.
        if (!(error instanceof RpcRequestError && error.code === RoomCode.USER_NOT_STREAMING)) throw error;
      } finally {
        this.#host.released(this);
      }
    }
  }

  /** Stops receiving this remote stream; its video elements stay (empty) until disposed. */
  async unsubscribe(): Promise<void> {
    if (this.local) throw usageError("unsubscribe() is for remote streams");
    this.#wanted = false;
    const wasActive = this.#status !== "idle";
    this.#closePeer();
    if (wasActive) {
      try {
        await this.#host.request("unsubscribeFromVideo", { sender: this.getGlobalID() });
      } catch (error) {
        // 101: not receiving (already gone on the server).
        if (!(error instanceof RpcRequestError && error.code === RoomCode.USER_GENERIC)) throw error;
      } finally {
        this.#host.released(this);
      }
    }
  }

  /**
   * One full negotiation (a fresh peer connection): used by publish and
   * subscribe, and by the room to recover media after a loss.
   */
  async negotiate(): Promise<void> {
    const Peer = (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
    if (!Peer) throw usageError("WebRTC (RTCPeerConnection) is not available here");
    this.#closePeer();
    const generation = ++this.#generation;
    const current = (): boolean => generation === this.#generation && !this.#disposed;
    const pc = new Peer(this.#host.rtcConfiguration);
    this.#pc = pc;
    this.#status = "negotiating";
    const endpointName = this.local ? this.#host.localUser() : this.#participant.getID();

    pc.onicecandidate = (event) => {
      if (!current() || !event.candidate || !event.candidate.candidate) return;
      const candidate = event.candidate.toJSON();
      this.#lastLocalCandidate = candidate;
      if (this.#signalled) this.#host.sendIceCandidate(endpointName, candidate);
      else this.#localCandidates.push(candidate);
    };
    pc.oniceconnectionstatechange = () => {
      if (!current()) return;
      const state = pc.iceConnectionState;
      this.emit("ice-state-changed", { stream: this, state });
      if (state === "failed" && this.#status === "live") this.#host.iceFailed(this);
    };
    pc.ontrack = (event) => {
      if (!current()) return;
      const media = this.#remoteMedia ?? new MediaStream();
      if (!media.getTracks().includes(event.track)) media.addTrack(event.track);
      this.#remoteMedia = media;
      this.emit("media-changed", { stream: this, mediaStream: this.getDisplayedMediaStream() });
      this.#refreshVideos();
    };

    if (this.local) {
      const media = this.#userMedia;
      if (!media) throw usageError("no local media");
      const direction: RTCRtpTransceiverDirection = this.#showMyRemote ? "sendrecv" : "sendonly";
      for (const track of media.getTracks()) pc.addTransceiver(track, { direction, streams: [media] });
      if (this.options.data) this.#openChannel(pc.createDataChannel(this.getGlobalID()));
    } else {
      if (this.options.recvAudio ?? true) pc.addTransceiver("audio", { direction: "recvonly" });
      if (this.options.recvVideo ?? true) pc.addTransceiver("video", { direction: "recvonly" });
    }

    const what = this.local ? "publishing" : `subscribing to ${this.getGlobalID()}`;
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      if (!current()) throw cancelled(what);
      const sdpOffer = offer.sdp ?? "";
      const answered = this.local
        ? this.#host.request("publishVideo", { sdpOffer, doLoopback: this.#showMyRemote })
        : this.#host.request("receiveVideoFrom", { sender: this.getGlobalID(), sdpOffer });
      // The request is on the wire: candidates may follow it now (same socket, in order).
      this.#signalled = true;
      for (const candidate of this.#localCandidates.splice(0)) this.#host.sendIceCandidate(endpointName, candidate);
      const { sdpAnswer } = await answered;
      if (!current()) {
        // Unpublished / unsubscribed while the server was working: undo what it built.
        if (!this.#wanted && !this.#disposed) this.#releaseOnServer();
        throw cancelled(what);
      }
      await pc.setRemoteDescription({ type: "answer", sdp: sdpAnswer });
      if (!current()) throw cancelled(what);
      this.#remoteDescriptionSet = true;
      for (const candidate of this.#remoteCandidates.splice(0)) await this.#addRemote(pc, candidate);
      this.#status = "live";
      this.#host.negotiated(this);
    } catch (error) {
      if (current()) this.#closePeer();
      throw error;
    }
  }

  #releaseOnServer(): void {
    const undo = this.local
      ? this.#host.request("unpublishVideo", {})
      : this.#host.request("unsubscribeFromVideo", { sender: this.getGlobalID() });
    undo.catch(() => undefined);
  }

  /** A candidate the server gathered for this stream's endpoint. */
  addRemoteCandidate(candidate: RTCIceCandidateInit): void {
    const pc = this.#pc;
    if (!pc) return;
    if (!this.#remoteDescriptionSet) {
      this.#remoteCandidates.push(candidate);
      return;
    }
    void this.#addRemote(pc, candidate);
  }

  async #addRemote(pc: RTCPeerConnection, candidate: RTCIceCandidateInit): Promise<void> {
    try {
      await pc.addIceCandidate(candidate);
    } catch (error) {
      console.warn(`kurento-room: ${this.getGlobalID()}: ICE candidate refused`, error);
    }
  }

  /** The last local candidate gathered (the room uses it to ask whether the server still has the endpoint). */
  get lastLocalCandidate(): RTCIceCandidateInit | null {
    return this.#lastLocalCandidate;
  }

  // ── data channel ──────────────────────────────────────────────────────────
  #openChannel(channel: RTCDataChannel): void {
    this.#channel = channel;
    channel.onmessage = (event: MessageEvent) => {
      const data: unknown = event.data;
      if (typeof data === "string" || data instanceof ArrayBuffer) this.emit("data", { stream: this, data });
    };
  }

  /** Sends on the published stream's DataChannel (needs `data: true` and an open channel). */
  sendData(data: string | ArrayBuffer): void {
    const channel = this.#channel;
    if (!this.local || !this.options.data) throw usageError("sendData() needs a local stream created with data: true");
    if (!channel || channel.readyState !== "open") {
      throw usageError(`the data channel of ${this.getGlobalID()} is not open${channel ? ` (${channel.readyState})` : ""}`);
    }
    if (typeof data === "string") channel.send(data);
    else channel.send(data);
  }

  // ── playback ──────────────────────────────────────────────────────────────
  /**
   * Appends a `<video>` (autoplay, no controls, muted for local streams) to
   * `parentElement` (an element or its id). The element with id
   * `thumbnailId`, if given, is shown once there is media to play.
   */
  playOnlyVideo(parentElement: string | HTMLElement, thumbnailId?: string, options: { id?: string } = {}): HTMLVideoElement {
    const parent = typeof parentElement === "string" ? document.getElementById(parentElement) : parentElement;
    if (!parent) throw usageError(`no element '${String(parentElement)}' to play ${this.getGlobalID()} in`);
    const video = document.createElement("video");
    video.id = options.id ?? `video-${this.getGlobalID()}`;
    video.autoplay = true;
    video.playsInline = true;
    video.controls = false;
    video.muted = this.local;
    this.#videos.push({ video, thumbnailId });
    parent.appendChild(video);
    this.#bind({ video, thumbnailId });
    return video;
  }

  /**
   * Creates `<div class="participant" id="<globalId>">` with a name tag
   * (`<div class="name">`) inside the element `thumbnailId` and plays the
   * video in it.
   */
  playThumbnail(thumbnailId: string): HTMLElement {
    const host = document.getElementById(thumbnailId);
    if (!host) throw usageError(`no element '${thumbnailId}' for the thumbnail of ${this.getGlobalID()}`);
    const container = document.createElement("div");
    container.className = "participant";
    container.id = this.getGlobalID();
    const name = document.createElement("div");
    name.className = "name";
    name.id = `name-${this.getGlobalID()}`;
    name.textContent = this.getGlobalID();
    container.appendChild(name);
    host.appendChild(container);
    this.#elements.push(container);
    this.playOnlyVideo(container, thumbnailId);
    return container;
  }

  /** Stops showing the stream in `video` and removes the element. */
  stopPlaying(video: HTMLVideoElement): void {
    const index = this.#videos.findIndex((b) => b.video === video);
    if (index >= 0) this.#videos.splice(index, 1);
    video.srcObject = null;
    video.remove();
  }

  #refreshVideos(): void {
    for (const binding of this.#videos) this.#bind(binding);
  }

  #bind(binding: VideoBinding): void {
    const media = this.getDisplayedMediaStream();
    const { video, thumbnailId } = binding;
    if (video.srcObject !== media) video.srcObject = media;
    if (!media) return;
    if (thumbnailId) {
      const thumb = document.getElementById(thumbnailId);
      if (thumb) thumb.style.removeProperty("display");
    }
    // Autoplay with sound needs a user gesture; fall back to muted playback rather than none.
    video.play().catch((error: unknown) => {
      if (error instanceof DOMException && error.name === "NotAllowedError" && !video.muted) {
        video.muted = true;
        void video.play().catch(() => undefined);
      }
    });
  }

  // ── teardown ──────────────────────────────────────────────────────────────
  #closePeer(): void {
    this.#generation++;
    const pc = this.#pc;
    this.#pc = null;
    this.#channel = null;
    this.#status = "idle";
    this.#signalled = false;
    this.#localCandidates = [];
    this.#remoteCandidates = [];
    this.#remoteDescriptionSet = false;
    if (pc) {
      pc.onicecandidate = null;
      pc.ontrack = null;
      pc.oniceconnectionstatechange = null;
      pc.close();
    }
    if (this.#remoteMedia) {
      for (const track of this.#remoteMedia.getTracks()) track.stop();
      this.#remoteMedia = null;
      this.emit("media-changed", { stream: this, mediaStream: this.getDisplayedMediaStream() });
      this.#refreshVideos();
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
    for (const { video } of this.#videos.splice(0)) {
      video.srcObject = null;
      video.remove();
    }
    for (const element of this.#elements.splice(0)) element.remove();
    if (this.local && !this.#mirrored && !options.keepLocalMedia) {
      for (const track of this.#userMedia?.getTracks() ?? []) track.stop();
    }
  }

  get disposed(): boolean {
    return this.#disposed;
  }
}
