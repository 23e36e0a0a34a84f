import { ReceiverEstimatedMaxBitrate, RtcpPayloadSpecificFeedback, type RtpPacket } from "werift";

export type MediaKind = "audio" | "video";

/** A packet on its way through the pipeline, with the codec it carries (payload types differ per peer connection). */
export interface ForwardedRtp {
  packet: RtpPacket;
  mimeType: string;
  /** Set when the publisher sends simulcast: which of its layers this packet belongs to. */
  layer?: SimulcastLayer;
}

/** One RID simulcast layer: `index` 0 is the lowest quality (the publisher's offer lists its RIDs lowest first). */
export interface SimulcastLayer {
  index: number;
  count: number;
}

/**
 * Header extension ids are negotiated per peer connection and werift's sender
 * copies unknown ones through, so a forwarded packet must lose them or the
 * receiver misreads them (the spike saw exactly that).
 */
export function forwardableCopy(packet: RtpPacket): RtpPacket {
  const copy = packet.clone();
  copy.header.extensions = [];
  copy.header.extension = false;
  return copy;
}

export function sameCodec(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** REMB's bitrate field is an 18-bit mantissa and a 6-bit exponent. */
export function rembPacket(
  senderSsrc: number,
  mediaSsrcs: number[],
  bitsPerSecond: number,
): RtcpPayloadSpecificFeedback {
  let mantissa = Math.max(0, Math.floor(bitsPerSecond));
  let exponent = 0;
  while (mantissa >= 1 << 18) {
    mantissa = Math.floor(mantissa / 2);
    exponent += 1;
  }
  return new RtcpPayloadSpecificFeedback({
    feedback: new ReceiverEstimatedMaxBitrate({
      senderSsrc,
      mediaSsrc: 0,
      brExp: exponent,
      brMantissa: mantissa,
      bitrate: BigInt(mantissa) * 2n ** BigInt(exponent),
      ssrcNum: mediaSsrcs.length,
      ssrcFeedbacks: mediaSsrcs,
    }),
  });
}

/**
 * Keyframe requests from many sinks collapse into at most one per interval (a
 * publisher asked too often spends its bandwidth on keyframes); a request that
 * falls inside the interval is sent when it ends, so no sink is left waiting.
 */
export class KeyframeRequester {
  private lastAt = 0;
  private trailing: NodeJS.Timeout | undefined;
  private readonly minIntervalMs: number;
  private readonly send: () => void;

  constructor(minIntervalMs: number, send: () => void) {
    this.minIntervalMs = minIntervalMs;
    this.send = send;
  }

  request(now = Date.now()): void {
    const wait = this.lastAt + this.minIntervalMs - now;
    if (wait <= 0) {
      this.lastAt = now;
      this.send();
    } else if (!this.trailing) {
      this.trailing = setTimeout(() => {
        this.trailing = undefined;
        this.request();
      }, wait);
      this.trailing.unref();
    }
  }

  dispose(): void {
    if (this.trailing) clearTimeout(this.trailing);
    this.trailing = undefined;
  }
}
