/**
 * The small media-server interface the bridge is written against, so that
 * kurento-client (an untyped CommonJS package with quirks of its own) stays in
 * one corner: kurento-media-server.ts implements it (kurento-adapter.ts is the
 * only file that loads kurento-client); nothing else in the bridge knows
 * Kurento object ids, error codes or client quirks.
 */
import type { VideoQuality } from "../../protocol/room.ts";

export interface IceCandidate {
  readonly candidate: string;
  readonly sdpMid: string | null;
  readonly sdpMLineIndex: number;
}

/** Video bandwidth limits in kbps, as KMS endpoints take them (0 = unlimited). */
export interface Bandwidth {
  readonly maxVideoRecvKbps: number;
  readonly minVideoRecvKbps: number;
  readonly maxVideoSendKbps: number;
  readonly minVideoSendKbps: number;
}

export interface FaceOverlayOptions {
  readonly imageUrl: string;
  readonly offsetX: number;
  readonly offsetY: number;
  readonly width: number;
  readonly height: number;
}

/**
 * Why a media-server call failed, independent of Kurento's numeric codes:
 * - `sdp`: the offer could not be processed;
 * - `ice`: a candidate was refused;
 * - `unsupported`: the server cannot create that kind of element (e.g. filters on the embedded server);
 * - `unreachable`: no connection to the server (or it was lost);
 * - `timeout`: no answer within the request timeout;
 * - `gone`: the object no longer exists on the server;
 * - `other`: anything else.
 */
export type MediaFailure = "sdp" | "ice" | "unsupported" | "unreachable" | "timeout" | "gone" | "other";

export class MediaServerError extends Error {
  readonly failure: MediaFailure;
  /** The server's own error code, when it sent one. */
  readonly serverCode: number | undefined;
  constructor(failure: MediaFailure, message: string, serverCode?: number) {
    super(message);
    this.name = "MediaServerError";
    this.failure = failure;
    this.serverCode = serverCode;
  }
}

/** One kind of media, for connections that carry only it (a recorder of a video-only stream). */
export type MediaKind = "AUDIO" | "VIDEO";

export interface MediaElement {
  readonly id: string;
  /** Connect this element's output to `sink`: all media types, or only `kind`. */
  connect(sink: MediaElement, kind?: MediaKind): Promise<void>;
  disconnect(sink: MediaElement): Promise<void>;
  /** Idempotent; never throws for an object that is already gone. */
  release(): Promise<void>;
  /** The element's `Error` events (a description of what went wrong). */
  onError(listener: (description: string) => void): void;
}

/** KMS's STUN/TURN settings of a WebRtcEndpoint (setStunServerAddress, setStunServerPort, setTurnUrl). */
export interface EndpointIceServers {
  readonly stunAddress?: string;
  readonly stunPort?: number;
  /** KMS's format: `user:password@<IPv4>:<port>[?transport=udp|tcp|tls]`. */
  readonly turnUrl?: string;
}

export interface WebRtcEndpoint extends MediaElement {
  processOffer(offer: string): Promise<string>;
  gatherCandidates(): Promise<void>;
  addIceCandidate(candidate: IceCandidate): Promise<void>;
  setBandwidth(bandwidth: Bandwidth): Promise<void>;
  /** STUN/TURN for the endpoint's own ICE, set before its offer is processed (KMS's three setters). */
  setIceServers(servers: EndpointIceServers): Promise<void>;
  onIceCandidate(listener: (candidate: IceCandidate) => void): void;
  /**
   * Which simulcast layer this (subscriber's) endpoint sends its peer; resolves without asking
   * anything of a server without simulcast (KMS), where there is one layer.
   */
  setVideoQuality(quality: VideoQuality): Promise<void>;
  /** `MediaStateChanged` (CONNECTED / DISCONNECTED). */
  onMediaState(listener: (state: string) => void): void;
}

/** KMS's WebM media profiles: the container always, and which tracks the recorder waits for. */
export type RecordingProfile = "WEBM" | "WEBM_VIDEO_ONLY" | "WEBM_AUDIO_ONLY";

export interface RecorderOptions {
  /** Where the media server writes, as it sees it (`file:///…`). */
  readonly uri: string;
  /**
   * A recorder waits until every kind its profile names is flowing (KMS
   * writes nothing meanwhile), so a video-only stream needs WEBM_VIDEO_ONLY
   * and a connection of its video only.
   */
  readonly mediaProfile: RecordingProfile;
  /** Stop by itself when the source ends its stream. */
  readonly stopOnEndOfStream: boolean;
}

export interface RecorderEndpoint extends MediaElement {
  /** Starts writing once media arrives (the `Recording` event says when). */
  record(): Promise<void>;
  /** Stops and resolves once the file is complete (its index and duration written). */
  stopAndWait(): Promise<void>;
  /** The media server began writing the file. */
  onRecording(listener: () => void): void;
  /** The recorder stopped (asked to, or at the end of its source's stream). */
  onStopped(listener: () => void): void;
}

export interface Pipeline {
  readonly id: string;
  createWebRtcEndpoint(options: { readonly dataChannels: boolean }): Promise<WebRtcEndpoint>;
  createPassThrough(): Promise<MediaElement>;
  createFaceOverlayFilter(options: FaceOverlayOptions): Promise<MediaElement>;
  createRecorderEndpoint(options: RecorderOptions): Promise<RecorderEndpoint>;
  /** Releases the pipeline and, on the server, everything in it. Idempotent. */
  release(): Promise<void>;
  /** Pipeline-wide `Error` events. */
  onError(listener: (description: string) => void): void;
}

export type MediaServerState = "connecting" | "connected" | "disconnected" | "closed";

export interface MediaServerListeners {
  /** The connection state changed. */
  state?(state: MediaServerState): void;
  /**
   * Everything created on this server before now is gone (the server
   * restarted, or the connection stayed down too long): drop it.
   */
  lost?(reason: string): void;
}

export interface MediaServer {
  readonly uri: string;
  readonly state: MediaServerState;
  /** Whether the server can create face-overlay filters (known once connected). */
  readonly supportsFilters: boolean;
  /** Whether the server can create RecorderEndpoints (known once connected). */
  readonly supportsRecording: boolean;
  /** Whether the server forwards RID simulcast by layer (the embedded server's `simulcast` capability). */
  readonly supportsSimulcast: boolean;
  /** Resolves when connected; rejects after `timeoutMs` (the connection keeps trying). */
  whenConnected(timeoutMs: number): Promise<void>;
  createPipeline(): Promise<Pipeline>;
  /** Stops reconnecting and closes the connection. Objects stay on the server until it notices. */
  close(): Promise<void>;
}

export interface MediaServerOptions {
  readonly requestTimeoutMs: number;
  /** How long a dropped connection may take to come back with its session before its media counts as lost. */
  readonly lostAfterMs: number;
  readonly listeners: MediaServerListeners;
  /** What to dial for the server's URI (adds credentials such as KMS_TOKEN); the URI itself when absent. */
  readonly dialUri?: (uri: string) => string;
  readonly log?: (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

export type MediaServerFactory = (uri: string, options: MediaServerOptions) => MediaServer;
