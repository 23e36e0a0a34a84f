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
/** How long a new stream's packets are watched for the least delayed one, which places the stream on the wall clock. */
const SETTLE_MS = 500;

export interface TrackInputHooks {
  /** A whole frame, its time in ms on the wall clock (NTP ms). */
  frame(frame: CodecFrame): void;
  /** Video packets were lost for good: the frames after them cannot be decoded until a keyframe. */
  lost(): void;
}

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Now on the clock of the frames' times (ms since NTP's epoch). */
export function frameClockNow(): number {
  return nowMs() + NTP_EPOCH_OFFSET * 1000;
}

/**
 * One RTP stream (one SSRC of one kind) on its way to frames, through
 * werift's nonstandard processors, as werift's own MediaRecorder wires them:
 * RTP source → jitter buffer (video) → NTP time → depacketizer.
 *
 * The sender's RTCP reports stay in the WebRtcEndpoint, so the NTP stage is
 * given one sender report made here: the stream's RTP clock pinned to the
 * wall clock by its least delayed packet of the first SETTLE_MS (the NTP
 * stage holds the packets until then). That puts the audio and video streams
 * on one clock and gives a stream that starts later (another publisher, a
 * resumed recording) its place in time, and a stall of this process when a
 * stream starts (the first packets read late, in a burst) does not move it.
 */
export class TrackInput {
  readonly ssrc: number;
  private readonly source = new RtpSourceCallback();
  private readonly time: NtpTimeCallback;
  private readonly depacketizer: DepacketizeCallback;
  private readonly jitter: JitterBufferCallback | undefined;
  private readonly clockRate: number;
  private readonly firstArrival: number;
  private readonly firstTimestamp: number;
  /** The least delayed packet so far (arrival minus RTP time since the first packet), until the report is made. */
  private best: { lateness: number; arrival: number; timestamp: number } | undefined;
  /** Packets held until the report is made (the NTP stage would hold them too, but drops them at the end). */
  private held: RtpPacket[] = [];
  private ended = false;

  constructor(kind: MediaKind, first: RtpPacket, hooks: TrackInputHooks) {
    this.ssrc = first.header.ssrc;
    const clockRate = kind === "video" ? 90_000 : 48_000;
    this.clockRate = clockRate;
    this.firstArrival = nowMs();
    this.firstTimestamp = first.header.timestamp;
    this.best = { lateness: 0, arrival: this.firstArrival, timestamp: this.firstTimestamp };
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
  }

  push(packet: RtpPacket): void {
    if (this.ended) return;
    if (this.best) {
      const arrival = nowMs();
      // Signed: a packet reordered before the first one is behind it, not 2^32 ticks ahead.
      const rtpMs = (((packet.header.timestamp - this.firstTimestamp) | 0) / this.clockRate) * 1000;
      const lateness = arrival - this.firstArrival - rtpMs;
      if (lateness < this.best.lateness) this.best = { lateness, arrival, timestamp: packet.header.timestamp };
      this.held.push(packet);
      if (arrival - this.firstArrival >= SETTLE_MS) this.pin();
      return;
    }
    this.source.input(packet);
  }

  /**
   * The sender report the NTP stage waits for. It names a whole second:
   * werift 0.25's ntpTime2Sec reads the 32-bit fraction as decimal digits
   * ("s.f"), which would misplace the stream by up to a second; so the
   * report pins the RTP time of the whole second before the best arrival.
   */
  private pin(): void {
    const best = this.best;
    if (!best) return;
    this.best = undefined;
    const second = Math.floor(best.arrival / 1000);
    const ticksSince = Math.round(((best.arrival - second * 1000) * this.clockRate) / 1000);
    this.time.input({
      rtcp: new RtcpSrPacket({
        ssrc: this.ssrc,
        senderInfo: new RtcpSenderInfo({
          ntpTimestamp: BigInt(second + NTP_EPOCH_OFFSET) << 32n,
          rtpTimestamp: (best.timestamp - ticksSince) >>> 0,
        }),
      }),
    });
    for (const packet of this.held.splice(0)) this.source.input(packet);
  }

  /** Lets the frames still held (jitter buffer, a frame's first packets) out, then stops. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.pin();
    this.source.stop();
    this.source.destroy();
    this.jitter?.destroy();
    this.time.destroy();
    this.depacketizer.destroy();
  }
}
