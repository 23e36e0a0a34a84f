import type { MediaKind } from "../../rtp-forwarding.ts";

export interface TimedFrame {
  readonly kind: MediaKind;
  readonly data: Buffer;
  readonly keyframe: boolean;
  /** ms */
  readonly time: number;
}

/**
 * Puts audio and video frames into one time order before the muxer, which
 * needs it: a WebM cluster starts at a video keyframe, and an audio frame
 * that comes out of its pipeline after a later keyframe would otherwise be
 * dropped. Frames wait until `windowMs` of newer media has arrived (a
 * stream that starts later is held while it is pinned to the clock, video
 * waits in the jitter buffer and for its last packet, audio does not), and
 * `flush` lets every one out when the recording ends.
 *
 * werift's LipsyncCallback does the same but drops what it holds at the end
 * of a stream and drops frames after a pause longer than five seconds; a
 * recording must keep both.
 */
export class Interleaver {
  private readonly windowMs: number;
  private readonly output: (frame: TimedFrame) => void;
  private frames: TimedFrame[] = [];
  private newest = Number.NEGATIVE_INFINITY;
  private lastOut = Number.NEGATIVE_INFINITY;

  constructor(windowMs: number, output: (frame: TimedFrame) => void) {
    this.windowMs = windowMs;
    this.output = output;
  }

  /** False when the frame came too late to keep the order (the muxer would drop it, or play it out of order). */
  push(frame: TimedFrame): boolean {
    if (frame.time < this.lastOut) return false;
    let index = this.frames.length;
    while (index > 0 && (this.frames[index - 1]?.time ?? 0) > frame.time) index -= 1;
    this.frames.splice(index, 0, frame);
    this.newest = Math.max(this.newest, frame.time);
    let ready = 0;
    while (ready < this.frames.length && (this.frames[ready]?.time ?? 0) <= this.newest - this.windowMs) ready += 1;
    if (ready > 0) this.emit(this.frames.splice(0, ready));
    return true;
  }

  flush(): void {
    this.emit(this.frames.splice(0));
  }

  private emit(frames: TimedFrame[]): void {
    for (const frame of frames) {
      this.lastOut = frame.time;
      this.output(frame);
    }
  }
}
