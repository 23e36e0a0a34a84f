import {
  type CodecFrame,
  DepacketizeCallback,
  JitterBufferCallback,
  NtpTimeCallback,
  RtcpSenderInfo,
  RtcpSrPacket,
  type RtpPacket,
  RtpSourceCallback,
} from "werift/nonstandard";
import type { MediaKind } from "../../rtp-forwarding.ts";

/** How long the video jitter buffer waits for a missing packet (a NACK retransmission) before declaring it lost. */
const JITTER_LATENCY_MS = 200;
/** Seconds between 1900 (NTP's epoch) and 1970. */
const NTP_EPOCH_OFFSET = 2_208_988_800;

export interface TrackInputHooks {
  /** A whole frame, its time in ms on the wall clock (NTP ms). */
  frame(frame: CodecFrame): void;
  /** Video packets were lost for good: the frames after them cannot be decoded until a keyframe. */
  lost(): void;
}

function ntpNow(): bigint {
  const ms = Date.now();
  const seconds = BigInt(Math.floor(ms / 1000) + NTP_EPOCH_OFFSET);
  const fraction = BigInt(Math.floor(((ms % 1000) / 1000) * 2 ** 32));
  return (seconds << 32n) | fraction;
}

/**
 * One RTP stream (one SSRC of one kind) on its way to frames, through
 * werift's nonstandard processors, as werift's own MediaRecorder wires them:
 * RTP source → jitter buffer (video) → NTP time → depacketizer.
 *
 * The sender's RTCP reports stay in the WebRtcEndpoint, so the NTP stage is
 * given one sender report made when the stream's first packet arrives: it
 * maps RTP time to the wall clock from there, which puts the audio and video
 * streams on one clock (to within their arrival jitter) and gives a stream
 * that starts later (another publisher, a resumed recording) its place in time.
 */
export class TrackInput {
  readonly ssrc: number;
  private readonly source = new RtpSourceCallback();
  private readonly time: NtpTimeCallback;
  private readonly depacketizer: DepacketizeCallback;
  private readonly jitter: JitterBufferCallback | undefined;
  private ended = false;

  constructor(kind: MediaKind, first: RtpPacket, hooks: TrackInputHooks) {
    this.ssrc = first.header.ssrc;
    const clockRate = kind === "video" ? 90_000 : 48_000;
    this.time = new NtpTimeCallback(clockRate);
    this.depacketizer =
      kind === "video"
        ? new DepacketizeCallback("VP8", { isFinalPacketInSequence: (header) => header.marker })
        : new DepacketizeCallback("OPUS");
    if (kind === "video") {
      const jitter = new JitterBufferCallback(clockRate, { latency: JITTER_LATENCY_MS });
      this.jitter = jitter;
      this.source.pipe(jitter.input);
      jitter.pipe((output) => {
        if (output.isPacketLost) hooks.lost();
        this.time.input(output);
      });
    } else {
      this.source.pipe(this.time.input);
    }
    this.time.pipe(this.depacketizer.input);
    // The end of this stream is not the end of the recording: only frames go on.
    this.depacketizer.pipe((output) => {
      if (output.frame) hooks.frame(output.frame);
    });
    this.time.input({
      rtcp: new RtcpSrPacket({
        ssrc: this.ssrc,
        senderInfo: new RtcpSenderInfo({ ntpTimestamp: ntpNow(), rtpTimestamp: first.header.timestamp }),
      }),
    });
  }

  push(packet: RtpPacket): void {
    if (!this.ended) this.source.input(packet);
  }

  /** Lets the frames still held (jitter buffer, a frame's first packets) out, then stops. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.source.stop();
    this.source.destroy();
    this.jitter?.destroy();
    this.time.destroy();
    this.depacketizer.destroy();
  }
}
