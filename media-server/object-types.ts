import { z } from "zod";
import { KurentoError } from "./errors.ts";
import { parseParams } from "./protocol.ts";
import type { MediaObject, MediaServerContext, ObjectOwner } from "./objects/media-object.ts";
import { FaceOverlayFilter } from "./objects/filters/face-overlay-filter.ts";
import { GSTREAMER_PACKAGES, filterSupport } from "./objects/filters/gstreamer.ts";
import { GStreamerFilter, gstreamerFilterOptions } from "./objects/filters/gstreamer-filter.ts";
import { MediaPipeline } from "./objects/pipeline.ts";
import { PassThrough } from "./objects/pass-through.ts";
import { recorderOptions } from "./objects/recorder/params.ts";
import { RecorderEndpoint } from "./objects/recorder/recorder-endpoint.ts";
import { WebRtcEndpoint } from "./objects/webrtc-endpoint.ts";

export const SUPPORTED_TYPES = [
  "MediaPipeline",
  "WebRtcEndpoint",
  "PassThrough",
  "FaceOverlayFilter",
  "GStreamerFilter",
  "RecorderEndpoint",
] as const;
export type SupportedType = (typeof SUPPORTED_TYPES)[number];
/** Types that need GStreamer on this machine (objects/filters/gstreamer.ts probes for it). */
const FILTER_TYPES = new Set<string>(["FaceOverlayFilter", "GStreamerFilter"]);

/** The types this server can create here: the filters only where GStreamer and their elements are installed. */
export function creatableTypes(): SupportedType[] {
  const support = filterSupport();
  return SUPPORTED_TYPES.filter(
    (type) =>
      (type !== "FaceOverlayFilter" || support.faceOverlay) && (type !== "GStreamerFilter" || support.gstreamerFilter),
  );
}

/** Types real KMS (with its standard modules) can create and this server cannot; their error says so plainly. */
export const KNOWN_UNSUPPORTED_TYPES = [
  "ImageOverlayFilter",
  "ZBarFilter",
  "OpenCVFilter",
  "PlayerEndpoint",
  "RtpEndpoint",
  "HttpPostEndpoint",
  "Composite",
  "Dispatcher",
  "DispatcherOneToMany",
  "AlphaBlending",
  "Mixer",
  "HubPort",
] as const;

const elementParams = z.object({ mediaPipeline: z.string().min(1) }).loose();
const webRtcParams = elementParams.extend({ useDataChannels: z.boolean().nullish() });

type Factory = (
  context: MediaServerContext,
  constructorParams: Record<string, unknown> | undefined,
  creator: ObjectOwner,
) => MediaObject;

/** The pipeline a constructor names: one of the creating session's own (40101 otherwise). */
function pipelineOf(context: MediaServerContext, id: string, creator: ObjectOwner): MediaObject {
  const pipeline = context.registry.getFor(id, creator);
  if (!(pipeline instanceof MediaPipeline)) {
    throw new KurentoError(
      "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR",
      `mediaPipeline must be a MediaPipeline; ${id} is a ${pipeline.typeName}`,
    );
  }
  return pipeline;
}

const factories = {
  MediaPipeline: (context) => new MediaPipeline(context),
  WebRtcEndpoint: (context, raw, creator) => {
    const params = parseParams(webRtcParams, raw, "WebRtcEndpoint constructor");
    return new WebRtcEndpoint(context, pipelineOf(context, params.mediaPipeline, creator), {
      useDataChannels: params.useDataChannels ?? false,
    });
  },
  PassThrough: (context, raw, creator) => {
    const params = parseParams(elementParams, raw, "PassThrough constructor");
    return new PassThrough(context, pipelineOf(context, params.mediaPipeline, creator));
  },
  FaceOverlayFilter: (context, raw, creator) => {
    const params = parseParams(elementParams, raw, "FaceOverlayFilter constructor");
    return new FaceOverlayFilter(context, pipelineOf(context, params.mediaPipeline, creator));
  },
  GStreamerFilter: (context, raw, creator) => {
    const params = gstreamerFilterOptions(raw);
    return new GStreamerFilter(context, pipelineOf(context, params.mediaPipeline, creator), params.command);
  },
  RecorderEndpoint: (context, raw, creator) => {
    const options = recorderOptions(raw);
    return new RecorderEndpoint(context, pipelineOf(context, options.mediaPipeline, creator), options);
  },
} satisfies Record<SupportedType, Factory>;

function isSupported(type: string): type is SupportedType {
  return (SUPPORTED_TYPES as readonly string[]).includes(type);
}

/** Creates and registers an object for `creator`, or explains which type this server cannot create. */
export function createObject(
  context: MediaServerContext,
  type: string,
  constructorParams: Record<string, unknown> | undefined,
  creator: ObjectOwner,
): MediaObject {
  const bare = type.replace(/^kurento\./, "");
  if (FILTER_TYPES.has(bare) && !creatableTypes().includes(bare as SupportedType)) {
    throw new KurentoError(
      "MEDIA_OBJECT_TYPE_NOT_FOUND",
      `${bare} is not available on this embedded media server: it runs filters with GStreamer, and this machine lacks ${filterSupport().missing.join(", ")} (Debian: apt-get install ${GSTREAMER_PACKAGES}); playback needs a real Kurento Media Server`,
      { unsupported: bare, embeddedMediaServer: true },
    );
  }
  if (!isSupported(bare)) {
    const known = (KNOWN_UNSUPPORTED_TYPES as readonly string[]).includes(bare);
    throw new KurentoError(
      "MEDIA_OBJECT_TYPE_NOT_FOUND",
      known
        ? `${bare} is not supported by the embedded media server (it can create ${creatableTypes().join(", ")}); other filters, other endpoints and playback need a real Kurento Media Server`
        : `Unknown media object type "${bare}" (the embedded media server can create ${creatableTypes().join(", ")})`,
      { unsupported: bare, embeddedMediaServer: true },
    );
  }
  const object = factories[bare](context, constructorParams, creator);
  object.parent?.children.add(object);
  context.registry.add(object);
  return object;
}
