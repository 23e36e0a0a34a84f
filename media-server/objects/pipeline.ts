import { z } from "zod";
import { MEDIA_OBJECT_OPERATIONS, MediaObject, type MediaServerContext } from "./media-object.ts";
import { invokeOperation, noParams, operation, operationTable, type Caller, type RawParams } from "./operations.ts";

/** Holds elements; releasing it releases them. Nothing else happens at this level in a forwarding server. */
export class MediaPipeline extends MediaObject {
  readonly typeName = "MediaPipeline";
  readonly hierarchy = ["kurento.MediaObject"] as const;
  readonly events = ["Error"] as const;
  /** KMS's `latencyStats` property: accepted and reported, nothing is measured. */
  latencyStats = false;

  constructor(context: MediaServerContext) {
    super(context, MediaObject.childId(undefined, "MediaPipeline"), undefined);
  }

  invoke(name: string, params: RawParams, caller?: Caller): unknown {
    return invokeOperation(PIPELINE_OPERATIONS, this, name, params, caller);
  }

  protected override dispose(): void {}
}

const PIPELINE_OPERATIONS = operationTable<MediaPipeline>(MEDIA_OBJECT_OPERATIONS, {
  getLatencyStats: operation(noParams, (pipeline) => pipeline.latencyStats),
  setLatencyStats: operation(z.object({ latencyStats: z.boolean() }), (pipeline, { latencyStats }) => {
    pipeline.latencyStats = latencyStats;
  }),
});
