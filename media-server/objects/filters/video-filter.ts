import { RtpPacket } from "werift";
import { ErrorCodes } from "../../errors.ts";
import type { MediaType } from "../../protocol.ts";
import { type ForwardedRtp, KeyframeRequester, type MediaKind, sameCodec } from "../../rtp-forwarding.ts";
import { BestLayer } from "../webrtc/layer-selector.ts";
import { MEDIA_ELEMENT_EVENTS, MediaElement, mediaTypeOf } from "../media-element.ts";
import { MediaObject, type MediaServerContext } from "../media-object.ts";
import { GstVideoPipeline, PIPE_PAYLOAD_TYPE } from "./gstreamer.ts";

const VP8 = "video/vp8";
/** Keyframe requests to the encoder, collapsed as the WebRtcEndpoint collapses them for a publisher. */
const KEYFRAME_MIN_INTERVAL_MS = 300;
/** Video arrives but nothing came out for this long: the decoder lost its reference, ask the publisher again. */
const STALL_MS = 2000;
/** A crashed GStreamer process is started again after this pause, at most RESTART_LIMIT times a minute. */
const RESTART_DELAY_MS = 500;
const RESTART_LIMIT = 5;

/** A forward jump this large, or any jump back beyond reordering, is a new stream rather than loss. */
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;

/**
 * Sequence numbers into the pipeline: a new stream (another SSRC, or a
 * publisher whose numbering starts over) continues where the last one
 * stopped, or GStreamer's depayloader would drop its packets as old ones;
 * gaps within a stream are kept, so real loss still shows as loss.
 */
class ContinuousSequence {
  private offset = 0;
  private last: number | undefined;
  private ssrc: number | undefined;

  next(ssrc: number, sequenceNumber: number): number {
    let out = (sequenceNumber + this.offset) & 0xffff;
    if (this.last === undefined) {
      this.last = out;
      this.ssrc = ssrc;
      return out;
    }
    const ahead = (out - this.last + 0x10000) & 0xffff;
    const newStream = ssrc !== this.ssrc || (ahead > MAX_DROPOUT && ahead < 0x10000 - MAX_MISORDER);
    if (newStream) {
      this.offset = (this.last + 1 - sequenceNumber + 0x10000) & 0xffff;
      out = (this.last + 1) & 0xffff;
      this.ssrc = ssrc;
    }
    if (newStream || (ahead > 0 && ahead <= MAX_DROPOUT)) this.last = out;
    return out;
  }
}

/**
 * A KMS filter element (kurento.Filter): audio and data pass unchanged, as
 * in KMS's filters; VP8 video goes through a GStreamer pipeline
 * (gstreamer.ts) whose output goes on to the sinks. While `filterElements()`
 * is undefined (a FaceOverlayFilter without an image) video passes as it
 * arrives, with no decoding. A crash of the pipeline is an `Error` event
 * (a media error for the bridge) and a restart, never a silent black video.
 */
export abstract class VideoFilter extends MediaElement {
  readonly hierarchy = ["kurento.Filter", "kurento.MediaElement", "kurento.MediaObject"] as const;
  readonly events = MEDIA_ELEMENT_EVENTS;

  private pipelineProcess: GstVideoPipeline | undefined;
  /** Video is to be filtered (while a crashed pipeline restarts, it is held back rather than passed unfiltered). */
  private filtering = false;
  private readonly encoderKeyframes = new KeyframeRequester(KEYFRAME_MIN_INTERVAL_MS, () =>
    this.pipelineProcess?.requestKeyframe(),
  );
  private inputSequence = new ContinuousSequence();
  /** Of a simulcast source, the layer the decoder gets. */
  private readonly layers = new BestLayer((layer) => this.requestKeyframeFromSource(layer));
  private lastInputAt = 0;
  private lastOutputAt = 0;
  private readonly stallTimer: NodeJS.Timeout;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly crashes: number[] = [];
  private codecReported = false;

  constructor(context: MediaServerContext, typeName: string, pipeline: MediaObject) {
    super(context, MediaObject.childId(pipeline, typeName), pipeline);
    this.stallTimer = setInterval(() => this.checkStall(), STALL_MS);
    this.stallTimer.unref();
  }

  /** The GStreamer elements between decoder and encoder (gst-launch tokens); undefined: video passes untouched. */
  protected abstract filterElements(): readonly string[] | undefined;

  acceptRtp(kind: MediaKind, rtp: ForwardedRtp): void {
    const mediaType = mediaTypeOf(kind);
    this.flowIn.mark(mediaType);
    const process = this.pipelineProcess;
    if (kind === "audio" || !this.filtering) {
      if (this.sinksOf(mediaType).size > 0) this.flowOut.mark(mediaType);
      this.deliverRtp(kind, rtp);
      return;
    }
    // One decoder: of a simulcast source, the best layer sending.
    if (!process || !this.layers.accepts(rtp)) return;
    if (!sameCodec(rtp.mimeType, VP8)) {
      // The pipeline decodes VP8 only: say so once rather than show nothing without a word.
      if (!this.codecReported) {
        this.codecReported = true;
        this.emitEvent("Error", {
          description: `The ${this.typeName} filters VP8 video only; ${rtp.mimeType} from its source is not passed on`,
          errorCode: ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
          type: "UNSUPPORTED_MEDIA_TYPE",
        });
      }
      return;
    }
    this.lastInputAt = Date.now();
    const packet = rtp.packet.clone();
    packet.header.payloadType = PIPE_PAYLOAD_TYPE;
    packet.header.sequenceNumber = this.inputSequence.next(packet.header.ssrc, packet.header.sequenceNumber);
    process.write(packet.serialize());
  }

  acceptData(label: string, message: string | Buffer): void {
    this.deliverData(label, message);
  }

  /** A sink wants a keyframe: from the encoder when the pipeline runs, else from the publisher. */
  requestKeyframe(): void {
    if (this.filtering) this.encoderKeyframes.request();
    else this.requestKeyframeFromSource();
  }

  /**
   * Starts, restarts or stops the pipeline after the filter's settings
   * changed (gst-launch cannot change a running pipeline). The decoder
   * needs a keyframe to start from, so the publisher is asked for one.
   */
  protected async reconfigure(): Promise<void> {
    const previous = this.pipelineProcess;
    this.pipelineProcess = undefined;
    if (previous) await previous.stop();
    if (this.released) return;
    const elements = this.filterElements();
    this.filtering = elements !== undefined;
    this.inputSequence = new ContinuousSequence();
    if (elements) this.pipelineProcess = this.spawn(elements);
    this.requestKeyframeFromSource();
  }

  protected override sourceChanged(type: MediaType): void {
    if (type === "VIDEO") this.layers.reset();
    // A new publisher stream: the decoder needs its keyframe (connect asks the old source; this asks the new one).
    if (type === "VIDEO" && this.pipelineProcess) this.requestKeyframeFromSource();
  }

  private spawn(elements: readonly string[]): GstVideoPipeline {
    const started = new GstVideoPipeline(elements, {
      output: (bytes) => {
        if (this.pipelineProcess !== started || this.released) return;
        this.lastOutputAt = Date.now();
        if (this.sinksOf("VIDEO").size === 0) return;
        this.flowOut.mark("VIDEO");
        this.deliverRtp("video", { packet: RtpPacket.deSerialize(bytes), mimeType: VP8 });
      },
      exited: (detail) => {
        if (this.pipelineProcess !== started || this.released) return;
        this.pipelineProcess = undefined;
        this.crashed(detail);
      },
    });
    this.lastOutputAt = Date.now();
    return started;
  }

  private crashed(detail: string): void {
    const now = Date.now();
    this.crashes.push(now);
    while (this.crashes.length > 0 && now - (this.crashes[0] ?? now) > 60_000) this.crashes.shift();
    const giveUp = this.crashes.length > RESTART_LIMIT;
    this.context.log(`${this.id}: ${detail}${giveUp ? " (not restarted again)" : ""}`);
    this.emitEvent("Error", {
      description: `The ${this.typeName}'s GStreamer pipeline stopped: ${detail}${giveUp ? "; it is not restarted again" : "; restarting it"}`,
      errorCode: ErrorCodes.UNEXPECTED_ERROR,
      type: "GSTREAMER_PIPELINE_CRASHED",
    });
    if (giveUp) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.released || this.pipelineProcess) return;
      const elements = this.filterElements();
      this.inputSequence = new ContinuousSequence();
      if (elements) this.pipelineProcess = this.spawn(elements);
      this.requestKeyframeFromSource();
    }, RESTART_DELAY_MS);
  }

  private checkStall(): void {
    if (!this.pipelineProcess) return;
    const now = Date.now();
    if (now - this.lastInputAt < STALL_MS && now - this.lastOutputAt > STALL_MS) this.requestKeyframeFromSource();
  }

  protected override async dispose(): Promise<void> {
    clearInterval(this.stallTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.encoderKeyframes.dispose();
    super.dispose();
    const process = this.pipelineProcess;
    this.pipelineProcess = undefined;
    await process?.stop();
  }
}
