import type { ForwardedRtp, SimulcastLayer } from "../../rtp-forwarding.ts";
import { startsKeyframe } from "./keyframe.ts";

/** What a subscriber asks for; which layer that is depends on how many the publisher sends. */
export type VideoQuality = "high" | "medium" | "low";
export const VIDEO_QUALITIES: readonly VideoQuality[] = ["high", "medium", "low"];

/** A layer that sent nothing for this long is taken as paused (the publisher's encoder drops layers on low bandwidth). */
const LAYER_IDLE_MS = 1000;
/** How often the wanted layer's keyframe is asked for again while a switch waits (a PLI can be lost). */
const KEYFRAME_RETRY_MS = 500;
/** Layers' bitrates are measured over windows this long. */
const RATE_WINDOW_MS = 1000;
/** The most layers a publisher may send (RID simulcast in browsers: three). */
const MAX_LAYERS = 4;
/** After a switch, the subscriber's feedback is about the old layer for a while: ignored this long. */
const SETTLE_MS = 3000;
/** A receiver report losing more than this share of packets is congestion. */
const LOSS_CONGESTION = 0.1;
/** A REMB this much below the previous one (the receiver's estimator backing off) is congestion. */
const REMB_DROP = 0.85;
/** After congestion, the layer above is tried again after this long, doubling while congestion keeps coming back. */
const HOLD_MIN_MS = 8000;
const HOLD_MAX_MS = 64_000;

/**
 * Which simulcast layer of its source one subscriber receives. All layers
 * reach the subscriber's endpoint; this passes one: the quality asked for
 * (`setQuality`), lowered while the subscriber's own feedback says its link
 * cannot take it (receiver-report loss, a falling REMB), and raised again
 * step by step after a hold. A switch happens only at a keyframe of the new
 * layer (asked for with `wantKeyframe`), the old layer going on until then,
 * so the picture never breaks; the endpoint's rewriter keeps sequence
 * numbers and timestamps continuous across the SSRC change.
 *
 * Only an estimator that backs off counts as congestion, never an estimate
 * below the current rate: a receiver's REMB lags behind a layer switched up
 * for many seconds (it grows a few per cent a second), and that lag is not a
 * reason to switch back down.
 */
export class LayerSelector {
  private quality: VideoQuality = "high";
  /** The layer being forwarded, once one started with a keyframe. */
  private current: number | undefined;
  private currentSince = 0;
  private readonly lastSeenAt: number[] = new Array(MAX_LAYERS).fill(Number.NEGATIVE_INFINITY);
  /** Bytes of each layer in the running window, and each layer's bitrate over the last whole window. */
  private readonly windowBytes: number[] = new Array(MAX_LAYERS).fill(0);
  private readonly rateBps: number[] = new Array(MAX_LAYERS).fill(0);
  private windowStart = Number.NEGATIVE_INFINITY;
  /** The highest layer the subscriber's link is believed to take (MAX_LAYERS: no limit known). */
  private cap = MAX_LAYERS;
  private capSince = 0;
  private holdMs = HOLD_MIN_MS;
  private lastCongestionAt = Number.NEGATIVE_INFINITY;
  private lastRembBps: number | undefined;
  private lastKeyframeAskAt = Number.NEGATIVE_INFINITY;
  private lastKeyframeAskFor: number | undefined;
  private readonly wantKeyframe: (layer: number) => void;

  constructor(wantKeyframe: (layer: number) => void) {
    this.wantKeyframe = wantKeyframe;
  }

  get videoQuality(): VideoQuality {
    return this.quality;
  }

  /** The layer forwarded now (undefined before the first keyframe). */
  get currentLayer(): number | undefined {
    return this.current;
  }

  /** The highest layer the subscriber's link is believed to take now, or undefined when nothing limits it. */
  get bandwidthCap(): number | undefined {
    return this.cap >= MAX_LAYERS ? undefined : this.cap;
  }

  setQuality(quality: VideoQuality): void {
    if (quality === this.quality) return;
    this.quality = quality;
    this.lastKeyframeAskAt = Number.NEGATIVE_INFINITY;
  }

  /** The source changed (another publisher): its layers start afresh. */
  reset(): void {
    this.current = undefined;
    this.lastSeenAt.fill(Number.NEGATIVE_INFINITY);
    this.windowBytes.fill(0);
    this.rateBps.fill(0);
    this.windowStart = Number.NEGATIVE_INFINITY;
    this.lastKeyframeAskAt = Number.NEGATIVE_INFINITY;
  }

  /** The subscriber's receiver report for this stream: `fractionLost` in [0, 1]. */
  noteLoss(fractionLost: number, now = Date.now()): void {
    if (fractionLost > LOSS_CONGESTION) this.congested(now);
  }

  /** The subscriber's REMB (its receive-side estimate), in bits per second. */
  noteEstimate(bps: number, now = Date.now()): void {
    const previous = this.lastRembBps;
    this.lastRembBps = bps;
    if (previous === undefined || this.current === undefined) return;
    const rate = this.rateBps[this.current] ?? 0;
    if (bps < previous * REMB_DROP && bps < rate) this.congested(now);
  }

  /** Whether this packet of `layer` goes to the subscriber. */
  accept(layer: SimulcastLayer, mimeType: string, payload: Buffer, now = Date.now()): boolean {
    const index = layer.index;
    if (index < 0 || index >= MAX_LAYERS) return false;
    this.meter(index, payload.length, now);
    const target = this.target(layer.count, now);
    if (index === target) {
      if (this.current === target) return true;
      if (startsKeyframe(mimeType, payload)) {
        this.current = target;
        this.currentSince = now;
        return true;
      }
      this.askKeyframe(target, now);
      return false;
    }
    // Until the wanted layer's keyframe arrives, the layer on screen goes on.
    return index === this.current;
  }

  private meter(index: number, bytes: number, now: number): void {
    this.lastSeenAt[index] = now;
    if (now - this.windowStart >= RATE_WINDOW_MS) {
      const seconds = Number.isFinite(this.windowStart) ? (now - this.windowStart) / 1000 : 1;
      for (let i = 0; i < MAX_LAYERS; i++) {
        this.rateBps[i] = ((this.windowBytes[i] ?? 0) * 8) / seconds;
        this.windowBytes[i] = 0;
      }
      this.windowStart = now;
    }
    this.windowBytes[index] = (this.windowBytes[index] ?? 0) + bytes;
  }

  private congested(now: number): void {
    const current = this.current;
    // Feedback about the layer before the last switch, or nothing lower to go to.
    if (current === undefined || current === 0 || now - this.currentSince < SETTLE_MS) return;
    // Congestion soon after the last (a probe up that failed): wait longer before the next.
    this.holdMs = now - this.lastCongestionAt < 2 * this.holdMs ? Math.min(this.holdMs * 2, HOLD_MAX_MS) : HOLD_MIN_MS;
    this.lastCongestionAt = now;
    this.cap = current - 1;
    this.capSince = now;
  }

  /** The wanted layer within the bandwidth cap, or the nearest one still sending (below it first). */
  private target(count: number, now: number): number {
    const top = count - 1;
    if (this.cap < top && now - this.capSince >= this.holdMs) {
      // The hold is over: try one layer up (the top one means no limit at all).
      this.cap = this.cap + 1 >= top ? MAX_LAYERS : this.cap + 1;
      this.capSince = now;
    }
    const asked = this.quality === "high" ? top : this.quality === "medium" ? Math.min(1, top) : 0;
    const wanted = Math.min(asked, this.cap);
    if (this.isActive(wanted, now)) return wanted;
    for (let index = wanted - 1; index >= 0; index--) if (this.isActive(index, now)) return index;
    for (let index = wanted + 1; index <= top; index++) if (this.isActive(index, now)) return index;
    return wanted;
  }

  private isActive(index: number, now: number): boolean {
    return now - (this.lastSeenAt[index] ?? Number.NEGATIVE_INFINITY) <= LAYER_IDLE_MS;
  }

  private askKeyframe(layer: number, now: number): void {
    // Another layer than the one last asked for is asked for at once (the source collapses bursts).
    if (layer === this.lastKeyframeAskFor && now - this.lastKeyframeAskAt < KEYFRAME_RETRY_MS) return;
    this.lastKeyframeAskAt = now;
    this.lastKeyframeAskFor = layer;
    this.wantKeyframe(layer);
  }
}

/**
 * What a sink that takes one stream (a filter, a recorder) keeps of a
 * simulcast source: the best layer that is sending, switching at its
 * keyframe. Not simply the top one: a browser sends only its lower layers
 * for a small capture or a narrow link (Chromium at 320x240 sends the
 * quarter-size layer alone), and the sink would get no video at all.
 */
export class BestLayer {
  private readonly selector: LayerSelector;

  constructor(wantKeyframe: (layer: number) => void) {
    this.selector = new LayerSelector(wantKeyframe);
  }

  /** Whether this packet goes to the sink; a packet without a layer is the only stream there is. */
  accepts(rtp: ForwardedRtp, now = Date.now()): boolean {
    return rtp.layer === undefined || this.selector.accept(rtp.layer, rtp.mimeType, rtp.packet.payload, now);
  }

  /** The layer taken now (undefined before the first keyframe, or without simulcast). */
  get currentLayer(): number | undefined {
    return this.selector.currentLayer;
  }

  /** Another source: its layers start afresh. */
  reset(): void {
    this.selector.reset();
  }
}
