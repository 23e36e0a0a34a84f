import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { KurentoError } from "../../errors.ts";
import { parseParams } from "../../protocol.ts";

/** KMS 7.2's MediaProfileSpecType: any other name is not a profile at all. */
const KMS_MEDIA_PROFILES = [
  "WEBM",
  "MKV",
  "MP4",
  "WEBM_VIDEO_ONLY",
  "WEBM_AUDIO_ONLY",
  "MKV_VIDEO_ONLY",
  "MKV_AUDIO_ONLY",
  "MP4_VIDEO_ONLY",
  "MP4_AUDIO_ONLY",
  "JPEG_VIDEO_ONLY",
  "KURENTO_SPLIT_RECORDER",
  "FLV",
] as const;

/** The profiles werift's WebM muxer can write (VP8 and Opus as they arrive, no transcoding). */
export const RECORDED_PROFILES = ["WEBM", "WEBM_VIDEO_ONLY", "WEBM_AUDIO_ONLY"] as const;
export type RecordedProfile = (typeof RECORDED_PROFILES)[number];

const recorderParams = z
  .object({
    mediaPipeline: z.string().min(1),
    uri: z.string().min(1).max(4096),
    mediaProfile: z.string().max(100).optional(),
    stopOnEndOfStream: z.boolean().optional(),
  })
  .loose();

export interface RecorderOptions {
  readonly mediaPipeline: string;
  /** The URI as given, which `getUri` returns. */
  readonly uri: string;
  /** The local file it names. */
  readonly path: string;
  readonly profile: RecordedProfile;
  readonly stopOnEndOfStream: boolean;
}

function isRecorded(profile: string): profile is RecordedProfile {
  return (RECORDED_PROFILES as readonly string[]).includes(profile);
}

function profileOf(name: string | undefined): RecordedProfile {
  // KMS's default.
  if (name === undefined) return "WEBM";
  if (isRecorded(name)) return name;
  if (!(KMS_MEDIA_PROFILES as readonly string[]).includes(name)) {
    // KMS's own words for a name outside the enum, plus the name.
    throw new KurentoError(
      "MARSHALL_ERROR",
      `Invalid value for 'MediaProfileSpecType': "${name}" (one of ${KMS_MEDIA_PROFILES.join(", ")})`,
      { mediaProfile: name },
    );
  }
  throw new KurentoError(
    "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR",
    `mediaProfile ${name} is not supported by the embedded media server: it records ${RECORDED_PROFILES.join(", ")} (VP8 and Opus, as received); other profiles need a real Kurento Media Server`,
    { mediaProfile: name, embeddedMediaServer: true },
  );
}

function refusedUri(uri: string, why: string): KurentoError {
  return new KurentoError("MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", `Cannot record to "${uri}": ${why}`, {
    uri,
    embeddedMediaServer: true,
  });
}

/** The absolute local path a `file://` URI names; KMS also uploads to http(s) URIs, which this server does not. */
function pathOf(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw refusedUri(uri, "not an absolute URI (the embedded media server records to file:///absolute/path URIs)");
  }
  if (url.protocol !== "file:") {
    throw refusedUri(
      uri,
      `the embedded media server records to local files only (file:// URIs), not to ${url.protocol} URIs; recording to a network location needs a real Kurento Media Server`,
    );
  }
  if (url.hostname !== "" && url.hostname !== "localhost") {
    throw refusedUri(uri, `a file:// URI must name this machine (no host, or localhost), not "${url.hostname}"`);
  }
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (error) {
    throw refusedUri(uri, error instanceof Error ? error.message : String(error));
  }
  if (!isAbsolute(path) || path.includes("\0")) throw refusedUri(uri, "not an absolute file path");
  if (path.endsWith("/")) throw refusedUri(uri, "it names a directory, not a file");
  return path;
}

/** A RecorderEndpoint's constructor params, checked before anything is created. */
export function recorderOptions(raw: Record<string, unknown> | undefined): RecorderOptions {
  const params = parseParams(recorderParams, raw, "RecorderEndpoint constructor");
  return {
    mediaPipeline: params.mediaPipeline,
    uri: params.uri,
    path: pathOf(params.uri),
    profile: profileOf(params.mediaProfile),
    stopOnEndOfStream: params.stopOnEndOfStream ?? false,
  };
}
