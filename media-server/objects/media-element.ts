import { z } from "zod";
import { KurentoError } from "../errors.ts";
import { FlowMonitor, type FlowState } from "../media-flow.ts";
import { MEDIA_TYPES, type MediaType, mediaTypeSchema } from "../protocol.ts";
import type { ForwardedRtp, MediaKind } from "../rtp-forwarding.ts";
import { MEDIA_OBJECT_OPERATIONS, MediaObject, type MediaServerContext } from "./media-object.ts";
import { operation, operationTable } from "./operations.ts";

export const MEDIA_ELEMENT_EVENTS = [
  "Error",
  "ElementConnected",
  "ElementDisconnected",
  "MediaFlowInStateChanged",
  "MediaFlowOutStateChanged",
  "MediaTranscodingStateChanged",
] as const;

export function mediaTypeOf(kind: MediaKind): "AUDIO" | "VIDEO" {
  return kind === "audio" ? "AUDIO" : "VIDEO";
}

const connectionParams = z.object({
  sink: z.string().min(1),
  mediaType: mediaTypeSchema.nullish(),
  sourceMediaDescription: z.string().nullish(),
  sinkMediaDescription: z.string().nullish(),
});

const connectionQuery = z.object({ mediaType: mediaTypeSchema.nullish(), description: z.string().nullish() });

/** Flow is checked for staleness on one timer for all elements rather than one timer each. */
const flowSweepers = new Set<MediaElement>();
let flowTimer: NodeJS.Timeout | undefined;

function trackFlow(element: MediaElement, on: boolean): void {
  if (on) flowSweepers.add(element);
  else flowSweepers.delete(element);
  if (flowSweepers.size > 0 && !flowTimer) {
    flowTimer = setInterval(() => {
      const now = Date.now();
      for (const sweeper of flowSweepers) sweeper.sweepFlow(now);
    }, 1000);
    flowTimer.unref();
  } else if (flowSweepers.size === 0 && flowTimer) {
    clearInterval(flowTimer);
    flowTimer = undefined;
  }
}

/**
 * An element of the media graph. A sink has at most one source per media
 * type (connecting another replaces it, as in KMS); a source fans out to any
 * number of sinks. RTP and data messages travel down the links, keyframe
 * requests travel up.
 */
export abstract class MediaElement extends MediaObject {
  private readonly sources = new Map<MediaType, MediaElement>();
  private readonly sinks = new Map<MediaType, Set<MediaElement>>(
    MEDIA_TYPES.map((type) => [type, new Set<MediaElement>()]),
  );
  protected readonly flowIn: FlowMonitor;
  protected readonly flowOut: FlowMonitor;

  constructor(context: MediaServerContext, id: string, pipeline: MediaObject) {
    super(context, id, pipeline);
    this.flowIn = new FlowMonitor((state, mediaType) => this.emitFlow("MediaFlowInStateChanged", state, mediaType));
    this.flowOut = new FlowMonitor((state, mediaType) => this.emitFlow("MediaFlowOutStateChanged", state, mediaType));
    trackFlow(this, true);
  }

  /** Media of `kind` reaching this element from its source. */
  abstract acceptRtp(kind: MediaKind, rtp: ForwardedRtp, from: MediaElement): void;
  /** A data-channel message reaching this element from its DATA source. */
  abstract acceptData(label: string, message: string | Buffer, from: MediaElement): void;
  /** A sink asks this element for a fresh keyframe (of one simulcast layer, when it names one). */
  abstract requestKeyframe(layer?: number): void;

  connect(sink: MediaElement, mediaType?: MediaType): void {
    if (sink.pipeline() !== this.pipeline()) {
      throw new KurentoError(
        "CONNECT_ERROR",
        `Cannot connect ${this.id} to ${sink.id}: they belong to different pipelines`,
      );
    }
    for (const type of mediaType ? [mediaType] : MEDIA_TYPES) {
      const previous = sink.sources.get(type);
      if (previous === this) continue;
      if (previous) previous.unlink(sink, type);
      sink.sources.set(type, this);
      this.sinks.get(type)?.add(sink);
      this.emitEvent("ElementConnected", {
        sink: sink.id,
        mediaType: type,
        sourceMediaDescription: "default",
        sinkMediaDescription: "default",
      });
      sink.sourceChanged(type);
      // A new sink can only start decoding at a keyframe.
      if (type === "VIDEO") this.requestKeyframe();
    }
  }

  /**
   * As KMS 7.2 does: a sink has one source per media type and KMS unlinks
   * the sink's side, so `X.disconnect(sink)` cuts the sink's current source
   * of each type whoever X is (even after a newer `connect` replaced X, or
   * when X was never connected). Mirrored so that a caller relying on the
   * lenient version (the bridge's first hat insertion did) fails here too,
   * not only on KMS (test/conformance/kurento-api.test.ts).
   */
  disconnect(sink: MediaElement, mediaType?: MediaType): void {
    for (const type of mediaType ? [mediaType] : MEDIA_TYPES) {
      sink.sources.get(type)?.unlink(sink, type);
    }
  }

  sourceOf(type: MediaType): MediaElement | undefined {
    return this.sources.get(type);
  }

  sinksOf(type: MediaType): ReadonlySet<MediaElement> {
    return this.sinks.get(type) ?? new Set();
  }

  /** Links into this element, as `getSourceConnections` reports them; all media types when none is given. */
  sourceConnections(mediaType?: MediaType) {
    return [...this.sources]
      .filter(([type]) => !mediaType || type === mediaType)
      .map(([type, source]) => connectionData(source, this, type));
  }

  /** Links out of this element, as `getSinkConnections` reports them; all media types when none is given. */
  sinkConnections(mediaType?: MediaType) {
    return [...this.sinks]
      .filter(([type]) => !mediaType || type === mediaType)
      .flatMap(([type, sinks]) => [...sinks].map((sink) => connectionData(this, sink, type)));
  }

  /** Data never counts as flowing: only RTP is tracked. */
  isMediaFlowingIn(mediaType: MediaType): boolean {
    return mediaType !== "DATA" && this.flowIn.isFlowing(mediaType);
  }

  isMediaFlowingOut(mediaType: MediaType): boolean {
    return mediaType !== "DATA" && this.flowOut.isFlowing(mediaType);
  }

  sweepFlow(now: number): void {
    this.flowIn.sweep(now);
    this.flowOut.sweep(now);
  }

  /** Hook for sinks that must reset sequence numbering when their source changes. */
  protected sourceChanged(_type: MediaType): void {}

  protected deliverRtp(kind: MediaKind, rtp: ForwardedRtp): void {
    const sinks = this.sinks.get(mediaTypeOf(kind));
    if (!sinks) return;
    for (const sink of sinks) sink.acceptRtp(kind, rtp, this);
  }

  protected deliverData(label: string, message: string | Buffer): void {
    const sinks = this.sinks.get("DATA");
    if (!sinks) return;
    for (const sink of sinks) sink.acceptData(label, message, this);
  }

  protected requestKeyframeFromSource(layer?: number): void {
    this.sources.get("VIDEO")?.requestKeyframe(layer);
  }

  protected override dispose(): void {
    trackFlow(this, false);
    for (const [type, source] of [...this.sources]) source.unlink(this, type);
    for (const [type, sinks] of this.sinks) for (const sink of [...sinks]) this.unlink(sink, type);
  }

  private unlink(sink: MediaElement, type: MediaType): void {
    this.sinks.get(type)?.delete(sink);
    if (sink.sources.get(type) === this) sink.sources.delete(type);
    this.emitEvent("ElementDisconnected", {
      sink: sink.id,
      mediaType: type,
      sourceMediaDescription: "default",
      sinkMediaDescription: "default",
    });
  }

  private emitFlow(
    event: "MediaFlowInStateChanged" | "MediaFlowOutStateChanged",
    state: FlowState,
    mediaType: "AUDIO" | "VIDEO",
  ): void {
    this.emitEvent(event, { state, padName: "default", mediaType });
  }
}

function connectionData(source: MediaElement, sink: MediaElement, type: MediaType) {
  return {
    __module__: "kurento",
    __type__: "ElementConnectionData",
    source: source.id,
    sink: sink.id,
    type,
    sourceDescription: "default",
    sinkDescription: "default",
  };
}

/** The element a `connect`/`disconnect` names as its sink: one of the source's session's own (40101 otherwise). */
function sinkNamed(source: MediaElement, id: string): MediaElement {
  const sink = source.context.registry.getFor(id, source.owner);
  if (!(sink instanceof MediaElement)) {
    throw new KurentoError(
      "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR",
      `${id} is a ${sink.typeName}, not a media element; only media elements can be connected`,
    );
  }
  return sink;
}

/** Operations of every media element (kurento.MediaElement), on top of the MediaObject ones; built once. */
export const MEDIA_ELEMENT_OPERATIONS = operationTable<MediaElement>(MEDIA_OBJECT_OPERATIONS, {
  connect: operation(connectionParams, (element, { sink, mediaType }) => {
    element.connect(sinkNamed(element, sink), mediaType ?? undefined);
  }),
  disconnect: operation(connectionParams, (element, { sink, mediaType }) => {
    element.disconnect(sinkNamed(element, sink), mediaType ?? undefined);
  }),
  getSourceConnections: operation(connectionQuery, (element, { mediaType }) =>
    element.sourceConnections(mediaType ?? undefined),
  ),
  getSinkConnections: operation(connectionQuery, (element, { mediaType }) =>
    element.sinkConnections(mediaType ?? undefined),
  ),
  isMediaFlowingIn: operation(
    z.object({ mediaType: mediaTypeSchema, sinkMediaDescription: z.string().nullish() }),
    (element, { mediaType }) => element.isMediaFlowingIn(mediaType),
  ),
  isMediaFlowingOut: operation(
    z.object({ mediaType: mediaTypeSchema, sourceMediaDescription: z.string().nullish() }),
    (element, { mediaType }) => element.isMediaFlowingOut(mediaType),
  ),
  // Nothing is ever transcoded: RTP is forwarded as it arrives.
  isMediaTranscoding: operation(z.object({ mediaType: mediaTypeSchema, binName: z.string().nullish() }), () => false),
  getStats: operation(z.object({ mediaType: mediaTypeSchema.nullish() }), () => ({})),
});
