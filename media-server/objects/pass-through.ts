import type { ForwardedRtp, MediaKind } from "../rtp-forwarding.ts";
import { MEDIA_ELEMENT_EVENTS, MEDIA_ELEMENT_OPERATIONS, MediaElement, mediaTypeOf } from "./media-element.ts";
import { MediaObject, type MediaServerContext } from "./media-object.ts";
import { invokeOperation, type Caller, type RawParams } from "./operations.ts";

/** Forwards whatever reaches it to its sinks; keyframe requests go on to its own source. */
export class PassThrough extends MediaElement {
  readonly typeName = "PassThrough";
  readonly hierarchy = ["kurento.MediaElement", "kurento.MediaObject"] as const;
  readonly events = MEDIA_ELEMENT_EVENTS;

  constructor(context: MediaServerContext, pipeline: MediaObject) {
    super(context, MediaObject.childId(pipeline, "PassThrough"), pipeline);
  }

  invoke(name: string, params: RawParams, caller?: Caller): unknown {
    return invokeOperation(MEDIA_ELEMENT_OPERATIONS, this, name, params, caller);
  }

  acceptRtp(kind: MediaKind, rtp: ForwardedRtp): void {
    const mediaType = mediaTypeOf(kind);
    this.flowIn.mark(mediaType);
    if (this.sinksOf(mediaType).size > 0) this.flowOut.mark(mediaType);
    this.deliverRtp(kind, rtp);
  }

  acceptData(label: string, message: string | Buffer): void {
    this.deliverData(label, message);
  }

  requestKeyframe(layer?: number): void {
    this.requestKeyframeFromSource(layer);
  }
}
