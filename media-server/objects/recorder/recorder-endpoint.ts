import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { RtpPacket } from "werift";
import { ErrorCodes } from "../../errors.ts";
import type { MediaType } from "../../protocol.ts";
import { type ForwardedRtp, type MediaKind, sameCodec } from "../../rtp-forwarding.ts";
import { BestLayer } from "../webrtc/layer-selector.ts";
import { MEDIA_ELEMENT_EVENTS, MEDIA_ELEMENT_OPERATIONS, MediaElement, mediaTypeOf } from "../media-element.ts";
import { MediaObject, type MediaServerContext } from "../media-object.ts";
import { type Caller, invokeOperation, noParams, operation, operationTable, type RawParams } from "../operations.ts";
import type { RecordedProfile, RecorderOptions } from "./params.ts";
import { Recording } from "./recording.ts";
import { WebmFile } from "./webm-file.ts";

/** KMS's UriEndpointState. */
export type UriEndpointState = "STOP" | "START" | "PAUSE";

const RECORDER_EVENTS = [...MEDIA_ELEMENT_EVENTS, "UriEndpointStateChanged", "Recording", "Paused", "Stopped"] as const;

const CODECS: Record<MediaKind, { mimeType: string; name: string }> = {
  video: { mimeType: "video/vp8", name: "VP8" },
  audio: { mimeType: "audio/opus", name: "Opus" },
};

/** GStreamer's GstResourceError codes, which KMS 7.2 sends as an Error's errorCode (checked for OPEN). */
const RESOURCE_ERRORS = { RESOURCE_ERROR_OPEN: 6, RESOURCE_ERROR_WRITE: 10 } as const;

/** The first track of the file: video when recorded (its keyframes are the seek points), else audio. */
const CUE_TRACK = 1;

function kindsOf(profile: RecordedProfile): { video: boolean; audio: boolean } {
  return { video: profile !== "WEBM_AUDIO_ONLY", audio: profile !== "WEBM_VIDEO_ONLY" };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * KMS's RecorderEndpoint as KMS 7.2 behaves (checked side by side,
 * test/conformance/recorder.test.ts): `record()` creates the file and arms
 * the recorder; it moves to START (UriEndpointStateChanged, Recording) when
 * media first arrives; `pause()` cuts the time until the next `record()` out
 * of the file; `stop()`/`stopAndWait()` complete the file, then STOP
 * (UriEndpointStateChanged, Stopped), and the recorder is done: a later
 * `record()` does nothing, as in KMS. VP8 and Opus are written as they
 * arrive (recording.ts), never transcoded.
 */
export class RecorderEndpoint extends MediaElement {
  readonly typeName = "RecorderEndpoint";
  readonly hierarchy = [
    "kurento.UriEndpoint",
    "kurento.Endpoint",
    "kurento.MediaElement",
    "kurento.MediaObject",
  ] as const;
  readonly events = RECORDER_EVENTS;

  readonly uri: string;
  readonly path: string;
  readonly profile: RecordedProfile;
  /**
   * Accepted and kept, and without effect, as on KMS 7.2 with the sources
   * this server has: a WebRtcEndpoint's stream never ends (KMS keeps
   * recording when the publisher's endpoint is released, even with the
   * flag), only a PlayerEndpoint's does, and this server has none.
   */
  readonly stopOnEndOfStream: boolean;
  private readonly kinds: { video: boolean; audio: boolean };
  private uriState: UriEndpointState = "STOP";
  /** Set by `record()`: the file exists, media is awaited. */
  private file: WebmFile | undefined;
  private recording: Recording | undefined;
  /** Of a simulcast source, the layer recorded (a switch starts a new stream in the file, as a new source does). */
  private readonly layers = new BestLayer((layer) => this.requestKeyframeFromSource(layer));
  private finishing: Promise<void> | undefined;
  private readonly codecReported = new Set<MediaKind>();
  private failureReported = false;

  constructor(context: MediaServerContext, pipeline: MediaObject, options: RecorderOptions) {
    super(context, MediaObject.childId(pipeline, "RecorderEndpoint"), pipeline);
    this.uri = options.uri;
    this.path = options.path;
    this.profile = options.profile;
    this.stopOnEndOfStream = options.stopOnEndOfStream;
    this.kinds = kindsOf(options.profile);
  }

  get state(): UriEndpointState {
    return this.uriState;
  }

  invoke(name: string, params: RawParams, caller?: Caller): unknown {
    return invokeOperation(RECORDER_OPERATIONS, this, name, params, caller);
  }

  acceptRtp(kind: MediaKind, rtp: ForwardedRtp): void {
    this.flowIn.mark(mediaTypeOf(kind));
    // One file per stream: of a simulcast source, the best layer sending.
    if (!this.file || this.finishing || this.released || !this.kinds[kind] || !this.layers.accepts(rtp)) return;
    if (!sameCodec(rtp.mimeType, CODECS[kind].mimeType)) {
      this.reportCodec(kind, rtp.mimeType);
      return;
    }
    if (!this.recording) {
      this.recording = new Recording({
        file: this.file,
        ...this.kinds,
        keyframeWanted: () => this.requestKeyframeFromSource(),
      });
      this.setState("START", "Recording");
    }
    try {
      // Other sinks share the packet, and werift's depacketizer empties the packets it has used: a copy.
      this.recording.push(kind, new RtpPacket(rtp.packet.header, rtp.packet.payload));
    } catch (error) {
      // The source goes on to its other sinks whatever happens here.
      this.failed(error);
    }
  }

  /** Data channels are not recorded (nor by KMS). */
  acceptData(): void {}

  /** Nothing is downstream of a recorder. */
  requestKeyframe(): void {}

  protected override sourceChanged(type: MediaType): void {
    if (type === "VIDEO") this.layers.reset();
  }

  async record(): Promise<void> {
    if (this.finishing) return;
    if (this.uriState === "PAUSE") {
      this.recording?.resume();
      this.setState("START", "Recording");
      return;
    }
    if (this.file) return;
    let file: WebmFile;
    try {
      // KMS creates the missing directories too.
      await mkdir(dirname(this.path), { recursive: true });
      file = await WebmFile.create(this.path, CUE_TRACK, (error) => this.writeFailed(error));
    } catch (error) {
      // As KMS 7.2: record() succeeds, an Error event says why nothing will be recorded, the state stays STOP.
      this.resourceError("RESOURCE_ERROR_OPEN", `Could not open file "${this.path}" for writing: ${messageOf(error)}`);
      return;
    }
    if (this.released || this.finishing) {
      await file.finish().catch(() => undefined);
      return;
    }
    this.file = file;
    // The file can only start at a keyframe.
    this.requestKeyframeFromSource();
  }

  pause(): void {
    if (this.uriState !== "START" || !this.recording || this.finishing) return;
    this.recording.pause();
    this.setState("PAUSE", "Paused");
  }

  /** Completes the file (resolves once it is on disk); the recorder is then done. Armed but without media: nothing was recording. */
  stop(): Promise<void> {
    if (this.finishing) return this.finishing;
    const file = this.file;
    const recording = this.recording;
    if (!file) return Promise.resolve();
    if (!recording) {
      // As KMS: the empty file stays, no event (nothing was recording).
      this.file = undefined;
      return file.finish().catch((error: unknown) => this.writeFailed(error));
    }
    this.finishing = this.complete(recording);
    return this.finishing;
  }

  private async complete(recording: Recording): Promise<void> {
    try {
      await recording.finish();
    } catch (error) {
      this.writeFailed(error);
    }
    this.recording = undefined;
    this.setState("STOP", "Stopped");
  }

  private setState(state: UriEndpointState, event: "Recording" | "Paused" | "Stopped"): void {
    if (state === this.uriState) return;
    this.uriState = state;
    this.emitEvent("UriEndpointStateChanged", { state });
    this.emitEvent(event);
  }

  private reportCodec(kind: MediaKind, mimeType: string): void {
    if (this.codecReported.has(kind)) return;
    this.codecReported.add(kind);
    this.emitEvent("Error", {
      description: `The ${this.typeName} records ${CODECS[kind].name} ${kind} only (WebM, as received); ${mimeType} from its source is not recorded`,
      errorCode: ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
      type: "UNSUPPORTED_MEDIA_TYPE",
    });
  }

  private failed(error: unknown): void {
    this.context.log(`${this.id}: recording failed: ${messageOf(error)}`);
    if (this.failureReported) return;
    this.failureReported = true;
    this.emitEvent("Error", {
      description: `Recording to ${this.uri} failed: ${messageOf(error)}`,
      errorCode: ErrorCodes.UNEXPECTED_ERROR,
      type: "UNEXPECTED_ERROR",
    });
  }

  private writeFailed(error: unknown): void {
    if (this.failureReported) return;
    this.failureReported = true;
    this.resourceError("RESOURCE_ERROR_WRITE", `Could not write to file "${this.path}": ${messageOf(error)}`);
  }

  /** A file error as KMS reports it: its GStreamer resource error's code and name. */
  private resourceError(type: keyof typeof RESOURCE_ERRORS, description: string): void {
    this.context.log(`${this.id}: ${description}`);
    this.emitEvent("Error", { description, errorCode: RESOURCE_ERRORS[type], type });
  }

  /** A recorder released while recording still leaves a complete file. */
  protected override async dispose(): Promise<void> {
    super.dispose();
    await this.stop();
  }
}

const RECORDER_OPERATIONS = operationTable<RecorderEndpoint>(MEDIA_ELEMENT_OPERATIONS, {
  getUri: operation(noParams, (recorder) => recorder.uri),
  getState: operation(noParams, (recorder) => recorder.state),
  record: operation(noParams, (recorder) => recorder.record()),
  pause: operation(noParams, (recorder) => {
    recorder.pause();
  }),
  // KMS's stop() answers at once; stopAndWait() once the file is complete.
  stop: operation(noParams, (recorder) => {
    void recorder.stop();
  }),
  stopAndWait: operation(noParams, (recorder) => recorder.stop()),
});
