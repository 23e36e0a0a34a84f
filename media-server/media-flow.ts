import type { MediaType } from "./protocol.ts";

export type FlowState = "FLOWING" | "NOT_FLOWING";
type FlowMediaType = Exclude<MediaType, "DATA">;

const NOT_FLOWING_AFTER_MS = 2000;

/**
 * KMS reports media flow per direction and media type; FLOWING as soon as a
 * packet passes, NOT_FLOWING after a quiet spell. `mark` runs per packet, so
 * it only stores a timestamp unless the state changes.
 */
export class FlowMonitor {
  private readonly lastPacketAt = new Map<FlowMediaType, number>();
  private readonly states = new Map<FlowMediaType, FlowState>();
  private readonly onChange: (state: FlowState, mediaType: FlowMediaType) => void;

  constructor(onChange: (state: FlowState, mediaType: FlowMediaType) => void) {
    this.onChange = onChange;
  }

  mark(mediaType: FlowMediaType, now = Date.now()): void {
    this.lastPacketAt.set(mediaType, now);
    if (this.states.get(mediaType) !== "FLOWING") {
      this.states.set(mediaType, "FLOWING");
      this.onChange("FLOWING", mediaType);
    }
  }

  /** Called from the element's periodic timer. */
  sweep(now = Date.now()): void {
    for (const [mediaType, state] of this.states) {
      if (state === "FLOWING" && now - (this.lastPacketAt.get(mediaType) ?? 0) > NOT_FLOWING_AFTER_MS) {
        this.states.set(mediaType, "NOT_FLOWING");
        this.onChange("NOT_FLOWING", mediaType);
      }
    }
  }

  isFlowing(mediaType: FlowMediaType): boolean {
    return this.states.get(mediaType) === "FLOWING";
  }
}
