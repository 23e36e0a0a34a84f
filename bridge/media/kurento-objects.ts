/**
 * The media objects (pipeline, elements, WebRTC endpoints) of the
 * MediaServer interface, as wrappers around kurento-client's objects. Each
 * belongs to a generation of its connection: when everything on the server is
 * lost the generation changes and older objects refuse calls ("gone") and
 * skip their release.
 */
import type { VideoQuality } from "../../protocol/room.ts";
import { classify } from "./kurento-errors.ts";
import {
  type Callback,
  describeError,
  guardObject,
  invoke,
  invokeObject,
  type KElement,
  type KFaceOverlayFilter,
  type KPipeline,
  type KRecorderEndpoint,
  type KurentoModule,
  type KWebRtcEndpoint,
  parseIceCandidateEvent,
  parseMediaStateEvent,
  releaseQuietly,
  toKurentoCandidate,
} from "./kurento-adapter.ts";
import {
  type Bandwidth,
  type EndpointIceServers,
  type FaceOverlayOptions,
  type IceCandidate,
  type MediaElement,
  type MediaKind,
  MediaServerError,
  type MediaServerOptions,
  type MediaServerState,
  type Pipeline,
  type RecorderEndpoint,
  type RecorderOptions,
  type WebRtcEndpoint,
} from "./media-server.ts";

/** What the objects need from their connection (kurento-media-server.ts). */
export interface ObjectOwner {
  readonly state: MediaServerState;
  readonly options: MediaServerOptions;
  readonly kurento: KurentoModule;
  /** Bumped whenever everything on the server is lost. */
  readonly generation: number;
  /** The server's getInfo lists the "simulcast" capability. */
  readonly supportsSimulcast: boolean;
  /** Throws at once when the object cannot be used (closed, lost, disconnected). */
  ensureUsable(generation: number, what: string): void;
  /** Bounds a call by the request timeout; `onLate` gets an answer that came too late. */
  timed<T>(promise: Promise<T>, what: string, onLate?: (value: T) => void): Promise<T>;
  /** A released pipeline no longer counts as live. */
  forget(handle: PipelineHandle): void;
  /** A pipeline released while the socket is down: release it if the session comes back. */
  orphan(k: KPipeline): void;
}

function logObjectError(owner: ObjectOwner, type: string): (error: unknown) => void {
  return (error) =>
    owner.options.log?.("debug", "kurento-client object error", { type, error: classify(error, type).message });
}

export class ElementHandle implements MediaElement {
  readonly k: KElement;
  readonly owner: ObjectOwner;
  readonly generation: number;
  readonly type: string;
  released = false;

  constructor(owner: ObjectOwner, k: KElement, generation: number, type: string) {
    this.owner = owner;
    this.k = k;
    this.generation = generation;
    this.type = type;
    guardObject(k, logObjectError(owner, type));
  }

  get id(): string {
    return this.k.id;
  }

  call<T = void>(what: string, run: (callback: Callback) => unknown): Promise<T> {
    this.owner.ensureUsable(this.generation, `${this.type}.${what}`);
    return this.owner.timed(invoke<T>(run), `${this.type}.${what}`);
  }

  connect(sink: MediaElement, kind?: MediaKind): Promise<void> {
    const target = unwrap(sink);
    return this.call("connect", (callback) =>
      kind === undefined ? this.k.connect(target, callback) : this.k.connect(target, kind, callback),
    );
  }

  disconnect(sink: MediaElement): Promise<void> {
    const target = unwrap(sink);
    return this.call("disconnect", (callback) => this.k.disconnect(target, callback));
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.generation !== this.owner.generation || this.owner.state !== "connected") return;
    try {
      await this.owner.timed(
        invoke((callback) => this.k.release(callback)),
        `${this.type}.release`,
      );
    } catch (error) {
      const failure = classify(error, "release");
      if (failure.failure !== "gone") {
        this.owner.options.log?.("debug", "release failed", { type: this.type, error: failure.message });
      }
    }
  }

  onError(listener: (description: string) => void): void {
    this.k.on("Error", (event) => listener(describeError(event)));
  }
}

function unwrap(element: MediaElement): KElement {
  if (!(element instanceof ElementHandle)) {
    throw new MediaServerError("other", "connect: the sink is not an element of this media server");
  }
  return element.k;
}

export class WebRtcHandle extends ElementHandle implements WebRtcEndpoint {
  declare readonly k: KWebRtcEndpoint;

  processOffer(offer: string): Promise<string> {
    return this.call<string>("processOffer", (callback) => this.k.processOffer(offer, callback));
  }

  gatherCandidates(): Promise<void> {
    return this.call("gatherCandidates", (callback) => this.k.gatherCandidates(callback));
  }

  addIceCandidate(candidate: IceCandidate): Promise<void> {
    const value = toKurentoCandidate(this.owner.kurento, candidate);
    return this.call("addIceCandidate", (callback) => this.k.addIceCandidate(value, callback));
  }

  async setBandwidth(bandwidth: Bandwidth): Promise<void> {
    const k = this.k;
    const { maxVideoRecvKbps, minVideoRecvKbps, maxVideoSendKbps, minVideoSendKbps } = bandwidth;
    await Promise.all([
      this.call("setMaxVideoRecvBandwidth", (callback) => k.setMaxVideoRecvBandwidth(maxVideoRecvKbps, callback)),
      this.call("setMinVideoRecvBandwidth", (callback) => k.setMinVideoRecvBandwidth(minVideoRecvKbps, callback)),
      this.call("setMaxVideoSendBandwidth", (callback) => k.setMaxVideoSendBandwidth(maxVideoSendKbps, callback)),
      this.call("setMinVideoSendBandwidth", (callback) => k.setMinVideoSendBandwidth(minVideoSendKbps, callback)),
    ]);
  }

  async setIceServers(servers: EndpointIceServers): Promise<void> {
    const k = this.k;
    const calls: Array<Promise<unknown>> = [];
    if (servers.stunAddress !== undefined) {
      const address = servers.stunAddress;
      calls.push(this.call("setStunServerAddress", (callback) => k.setStunServerAddress(address, callback)));
      const port = servers.stunPort ?? 3478;
      calls.push(this.call("setStunServerPort", (callback) => k.setStunServerPort(port, callback)));
    }
    if (servers.turnUrl !== undefined) {
      const url = servers.turnUrl;
      calls.push(this.call("setTurnUrl", (callback) => k.setTurnUrl(url, callback)));
    }
    await Promise.all(calls);
  }

  onIceCandidate(listener: (candidate: IceCandidate) => void): void {
    this.k.on("IceCandidateFound", (event) => {
      const candidate = parseIceCandidateEvent(event);
      if (candidate) listener(candidate);
    });
  }

  async setVideoQuality(quality: VideoQuality): Promise<void> {
    // KMS knows no such operation and has one layer anyway: nothing to ask.
    if (!this.owner.supportsSimulcast) return;
    await this.call("setVideoQuality", (callback) =>
      this.k._invoke(undefined, "setVideoQuality", { quality }, callback),
    );
  }

  onMediaState(listener: (state: string) => void): void {
    this.k.on("MediaStateChanged", (event) => {
      const state = parseMediaStateEvent(event);
      if (state !== undefined) listener(state);
    });
  }
}

export class RecorderHandle extends ElementHandle implements RecorderEndpoint {
  declare readonly k: KRecorderEndpoint;

  record(): Promise<void> {
    return this.call("record", (callback) => this.k.record(callback));
  }

  stopAndWait(): Promise<void> {
    return this.call("stopAndWait", (callback) => this.k.stopAndWait(callback));
  }

  onRecording(listener: () => void): void {
    this.k.on("Recording", () => listener());
  }

  onStopped(listener: () => void): void {
    this.k.on("Stopped", () => listener());
  }
}

export class PipelineHandle implements Pipeline {
  readonly owner: ObjectOwner;
  readonly k: KPipeline;
  readonly generation: number;
  dead = false;
  released = false;

  constructor(owner: ObjectOwner, k: KPipeline, generation: number) {
    this.owner = owner;
    this.k = k;
    this.generation = generation;
    guardObject(k, logObjectError(owner, "MediaPipeline"));
  }

  get id(): string {
    return this.k.id;
  }

  /** Boxed: an async function returning the (thenable) object itself would hand out a copy. */
  private async create(type: string, params?: Record<string, unknown>): Promise<{ readonly object: KElement }> {
    if (this.released) throw new MediaServerError("gone", `create ${type}: the pipeline was released`);
    this.owner.ensureUsable(this.generation, `create ${type}`);
    const box = await this.owner.timed(
      invokeObject<KElement>((callback) => this.k.create(type, params ?? {}, callback)),
      `create ${type}`,
      (late) => releaseQuietly(late.object),
    );
    if (this.released || this.generation !== this.owner.generation) {
      releaseQuietly(box.object);
      throw new MediaServerError("gone", `create ${type}: the pipeline went away meanwhile`);
    }
    return box;
  }

  async createWebRtcEndpoint(options: { readonly dataChannels: boolean }): Promise<WebRtcEndpoint> {
    const params = options.dataChannels ? { useDataChannels: true } : undefined;
    const { object } = await this.create("WebRtcEndpoint", params);
    return new WebRtcHandle(this.owner, object, this.generation, "WebRtcEndpoint");
  }

  async createPassThrough(): Promise<MediaElement> {
    const { object } = await this.create("PassThrough");
    return new ElementHandle(this.owner, object, this.generation, "PassThrough");
  }

  async createFaceOverlayFilter(options: FaceOverlayOptions): Promise<MediaElement> {
    const k = (await this.create("FaceOverlayFilter")).object as KFaceOverlayFilter;
    const handle = new ElementHandle(this.owner, k, this.generation, "FaceOverlayFilter");
    const { imageUrl, offsetX, offsetY, width, height } = options;
    try {
      await handle.call("setOverlayedImage", (callback) =>
        k.setOverlayedImage(imageUrl, offsetX, offsetY, width, height, callback),
      );
    } catch (error) {
      await handle.release();
      throw error;
    }
    return handle;
  }

  async createRecorderEndpoint(options: RecorderOptions): Promise<RecorderEndpoint> {
    const { object } = await this.create("RecorderEndpoint", {
      uri: options.uri,
      mediaProfile: options.mediaProfile,
      stopOnEndOfStream: options.stopOnEndOfStream,
    });
    return new RecorderHandle(this.owner, object, this.generation, "RecorderEndpoint");
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.owner.forget(this);
    if (this.dead || this.generation !== this.owner.generation) return;
    if (this.owner.state !== "connected") {
      this.owner.orphan(this.k);
      return;
    }
    try {
      await this.owner.timed(
        invoke((callback) => this.k.release(callback)),
        "MediaPipeline.release",
      );
    } catch (error) {
      const failure = classify(error, "release");
      if (failure.failure !== "gone") {
        this.owner.options.log?.("debug", "pipeline release failed", { error: failure.message });
      }
    }
  }

  onError(listener: (description: string) => void): void {
    this.k.on("Error", (event) => listener(describeError(event)));
  }
}
