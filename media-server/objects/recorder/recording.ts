import { type CodecFrame, type RtpPacket, WebmBase, type WebmTrack } from "werift/nonstandard";
import type { MediaKind } from "../../rtp-forwarding.ts";
import { Interleaver, type TimedFrame } from "./interleaver.ts";
import { frameClockNow, TrackInput } from "./track-input.ts";
import type { WebmFile } from "./webm-file.ts";

/** How much newer media a frame waits for before it is muxed (see Interleaver): a new stream's pinning, then jitter. */
const REORDER_WINDOW_MS = 1000;
/** Media held back while waiting for the first video keyframe, which carries the picture size for the header. */
const PREROLL_MAX_MS = 3000;
/** While video waits for a keyframe, the source is asked again this often (a keyframe request can be lost). */
const KEYFRAME_RETRY_MS = 1000;
/** The header's picture size when no keyframe came in time (players take the size from the stream anyway). */
const DEFAULT_SIZE = { width: 640, height: 480 };
/** Rounding of frame times (whole ms) and of the clocks compared. */
const CLOCK_SLACK_MS = 5;

/** werift's WebM muxer; `start` (the header) is protected there because its own subclasses call it when piped. */
class WebmMuxer extends WebmBase {
  begin(): void {
    this.start();
  }
}

/** The picture size in a VP8 keyframe's header (RFC 6386 §9.1), if `frame` is one. */
function vp8Size(frame: Buffer): { width: number; height: number } | undefined {
  if (frame.length < 10 || ((frame[0] ?? 1) & 1) !== 0) return undefined;
  if (frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a) return undefined;
  return { width: frame.readUInt16LE(6) & 0x3fff, height: frame.readUInt16LE(8) & 0x3fff };
}

export interface RecordingOptions {
  readonly file: WebmFile;
  readonly video: boolean;
  readonly audio: boolean;
  /** Asks the recorder's source for a video keyframe. */
  keyframeWanted(): void;
}

/**
 * One recording into one file: RTP in (one TrackInput per stream), frames
 * put into time order, werift's WebM muxer, the file. Paused time is cut
 * out, as KMS cuts it: frames after a resume are moved back by the pause.
 */
export class Recording {
  private readonly options: RecordingOptions;
  private readonly inputs = new Map<MediaKind, TrackInput>();
  private readonly interleaver = new Interleaver(REORDER_WINDOW_MS, (frame) => this.mux(frame));
  private muxer: WebmMuxer | undefined;
  private preroll: TimedFrame[] = [];
  /** The last time written per track, in whole ms. */
  private readonly lastWrittenMs: Record<MediaKind, number> = {
    audio: Number.NEGATIVE_INFINITY,
    video: Number.NEGATIVE_INFINITY,
  };
  private videoSize: { width: number; height: number } | undefined;
  private awaitingKeyframe: boolean;
  private lastKeyframeRequest = 0;
  private pausedAt: number | undefined;
  private pausedMs = 0;
  /**
   * Frames captured before the recording started (or resumed) are not
   * recorded, though they may arrive after: a burst that arrives late (the
   * publisher's network or this process stalled, a connection's start-up)
   * would otherwise make the file longer than the time recorded.
   */
  private notBefore = frameClockNow() - CLOCK_SLACK_MS;
  private ended = false;

  constructor(options: RecordingOptions) {
    this.options = options;
    this.awaitingKeyframe = options.video;
  }

  push(kind: MediaKind, packet: RtpPacket): void {
    if (this.ended || this.pausedAt !== undefined) return;
    if (kind === "video" ? !this.options.video : !this.options.audio) return;
    let input = this.inputs.get(kind);
    if (input?.ssrc !== packet.header.ssrc) {
      // Another stream (a new source, or the publisher restarted): its sequence numbers and clock start afresh.
      input?.end();
      input = new TrackInput(kind, packet, {
        frame: (frame) => this.frameIn(kind, frame),
        lost: () => this.needKeyframe(),
      });
      this.inputs.set(kind, input);
      if (kind === "video") this.needKeyframe();
    }
    input.push(packet);
  }

  pause(now = Date.now()): void {
    if (this.ended || this.pausedAt !== undefined) return;
    this.pausedAt = now;
    this.endInputs();
  }

  resume(now = Date.now()): void {
    if (this.ended || this.pausedAt === undefined) return;
    this.pausedMs += now - this.pausedAt;
    this.pausedAt = undefined;
    this.notBefore = frameClockNow() - CLOCK_SLACK_MS;
    if (this.options.video) this.needKeyframe();
  }

  /** Muxes everything still held and completes the file. */
  async finish(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      this.endInputs();
      this.interleaver.flush();
      if (!this.muxer && this.preroll.length > 0) this.startMuxer();
      this.muxer?.stop();
    }
    await this.options.file.finish();
  }

  private endInputs(): void {
    for (const input of this.inputs.values()) input.end();
    this.inputs.clear();
  }

  private needKeyframe(): void {
    if (!this.options.video) return;
    this.awaitingKeyframe = true;
    this.requestKeyframe();
  }

  private requestKeyframe(): void {
    this.lastKeyframeRequest = Date.now();
    this.options.keyframeWanted();
  }

  private frameIn(kind: MediaKind, frame: CodecFrame): void {
    if (frame.time < this.notBefore) return;
    if (kind === "video") {
      if (this.awaitingKeyframe && !frame.isKeyframe) {
        if (Date.now() - this.lastKeyframeRequest > KEYFRAME_RETRY_MS) this.requestKeyframe();
        return;
      }
      if (frame.isKeyframe) {
        this.awaitingKeyframe = false;
        this.videoSize ??= vp8Size(frame.data);
      }
    }
    const kept = this.interleaver.push({
      kind,
      data: frame.data,
      keyframe: frame.isKeyframe,
      time: frame.time - this.pausedMs,
    });
    // The frames after a dropped one cannot be decoded without it.
    if (!kept && kind === "video") this.needKeyframe();
  }

  private mux(frame: TimedFrame): void {
    if (this.muxer) {
      this.write(this.muxer, frame);
      return;
    }
    this.preroll.push(frame);
    const first = this.preroll[0]?.time ?? frame.time;
    if (!this.options.video || this.videoSize || frame.time - first > PREROLL_MAX_MS) this.startMuxer();
  }

  private startMuxer(): void {
    const size = this.videoSize ?? DEFAULT_SIZE;
    const tracks: WebmTrack[] = [];
    if (this.options.video) tracks.push({ kind: "video", codec: "VP8", clockRate: 90_000, trackNumber: 1, ...size });
    if (this.options.audio) {
      tracks.push({ kind: "audio", codec: "OPUS", clockRate: 48_000, trackNumber: this.options.video ? 2 : 1 });
    }
    const muxer = new WebmMuxer(tracks, (output) => this.options.file.take(output));
    this.muxer = muxer;
    muxer.begin();
    for (const frame of this.preroll.splice(0)) this.write(muxer, frame);
  }

  private write(muxer: WebmMuxer, frame: TimedFrame): void {
    // The file counts whole milliseconds, and a player wants each track's times to increase: two
    // frames that land in one millisecond (seen at a loaded start, where frames come in a burst)
    // would be a repeated timestamp, so the second moves on by one.
    const last = this.lastWrittenMs[frame.kind];
    const time = Math.max(Math.round(frame.time), last + 1);
    this.lastWrittenMs[frame.kind] = time;
    const input = { frame: { data: frame.data, isKeyframe: frame.keyframe, time } };
    if (frame.kind === "video") muxer.processVideoInput(input);
    else muxer.processAudioInput(input);
  }
}
