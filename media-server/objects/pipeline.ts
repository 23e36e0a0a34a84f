import { z } from "zod";
import { MediaObject, type MediaServerContext, noParams, type OperationTable, operation } from "./media-object.ts";

/** Holds elements; releasing it releases them. Nothing else happens at this level in a forwarding server. */
export class MediaPipeline extends MediaObject {
  readonly typeName = "MediaPipeline";
  readonly hierarchy = ["kurento.MediaObject"] as const;
  readonly events = ["Error"] as const;
  private latencyStats = false;

  constructor(context: MediaServerContext) {
    super(context, MediaObject.childId(undefined, "MediaPipeline"), undefined);
  }

  override operations(): OperationTable {
    return {
      ...super.operations(),
      getLatencyStats: operation("getLatencyStats", noParams, () => this.latencyStats),
      setLatencyStats: operation("setLatencyStats", z.object({ latencyStats: z.boolean() }), ({ latencyStats }) => {
        this.latencyStats = latencyStats;
      }),
    };
  }

  protected override dispose(): void {}
}
