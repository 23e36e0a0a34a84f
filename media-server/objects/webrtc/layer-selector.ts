import type { SimulcastLayer } from "../../rtp-forwarding.ts";
import { startsKeyframe } from "./keyframe.ts";

/** What a subscriber asks for; which layer that is depends on how many the publisher sends. */
export type VideoQuality = "high" | "medium" | "low";
export const VIDEO_QUALITIES: readonly VideoQuality[] = ["high", "medium", "low"];

/** A layer that sent nothing for this long is taken as paused (the publisher's encoder drops layers on low bandwidth). */
const LAYER_IDLE_MS = 1000;
/** How often the wanted layer's keyframe is asked for again while a switch waits (a PLI can be lost). */
const KEYFRAME_RETRY_MS = 500;

/**
 * Which simulcast layer of its source one subscriber receives. All layers
 * reach the subscriber's endpoint; this passes one. A switch happens only at
 * a keyframe of the new layer (asked for with `wantKeyframe`), the old layer
 * going on until then, so the picture never breaks; the endpoint's rewriter
 * keeps sequence numbers and timestamps continuous across the SSRC change.
 */
export class LayerSelector {
  private quality: VideoQuality = "high";
  /** The layer being forwarded, once one started with a keyframe. */
  private current: number | undefined;
  private readonly lastSeenAt = new Map<number, number>();
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

  setQuality(quality: VideoQuality): void {
    if (quality === this.quality) return;
    this.quality = quality;
    this.lastKeyframeAskAt = Number.NEGATIVE_INFINITY;
  }

  /** The source changed (another publisher): its layers start afresh. */
  reset(): void {
    this.current = undefined;
    this.lastSeenAt.clear();
    this.lastKeyframeAskAt = Number.NEGATIVE_INFINITY;
  }

  /** Whether this packet of `layer` goes to the subscriber. */
  accept(layer: SimulcastLayer, mimeType: string, payload: Buffer, now = Date.now()): boolean {
    this.lastSeenAt.set(layer.index, now);
    const target = this.target(layer.count, now);
    if (layer.index === target) {
      if (this.current === target) return true;
      if (startsKeyframe(mimeType, payload)) {
        this.current = target;
        return true;
      }
      this.askKeyframe(target, now);
      return false;
    }
    // Until the wanted layer's keyframe arrives, the layer on screen goes on.
    return layer.index === this.current;
  }

  /** The wanted layer, or the nearest one still sending (below it first). */
  private target(count: number, now: number): number {
    const top = count - 1;
    const wanted = this.quality === "high" ? top : this.quality === "medium" ? Math.min(1, top) : 0;
    if (this.isActive(wanted, now)) return wanted;
    for (let index = wanted - 1; index >= 0; index--) if (this.isActive(index, now)) return index;
    for (let index = wanted + 1; index <= top; index++) if (this.isActive(index, now)) return index;
    return wanted;
  }

  private isActive(index: number, now: number): boolean {
    const seen = this.lastSeenAt.get(index);
    return seen !== undefined && now - seen <= LAYER_IDLE_MS;
  }

  private askKeyframe(layer: number, now: number): void {
    // Another layer than the one last asked for is asked for at once (the source collapses bursts).
    if (layer === this.lastKeyframeAskFor && now - this.lastKeyframeAskAt < KEYFRAME_RETRY_MS) return;
    this.lastKeyframeAskAt = now;
    this.lastKeyframeAskFor = layer;
    this.wantKeyframe(layer);
  }
}
