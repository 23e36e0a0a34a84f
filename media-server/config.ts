import { z } from "zod";
import type { WebRtcSettings } from "./webrtc-config.ts";

export interface MediaServerOptions {
  /** TCP port for the WebSocket (`/kurento`) and `GET /health`; 0 picks a free one. Default 8888, the KMS default. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** How long a session survives its WebSocket, waiting for `connect {sessionId}`. Default 30 s. */
  sessionGraceMs?: number;
  webrtc?: Partial<WebRtcSettings>;
  /** Diagnostics sink; default writes to stderr. */
  log?: (message: string) => void;
}

export const DEFAULT_WEBRTC_SETTINGS: WebRtcSettings = {
  loopbackOnly: false,
  icePortRange: undefined,
  additionalHostAddresses: [],
  videoCodecs: ["VP8", "H264"],
  rembKbps: 2500,
};

const flag = z
  .enum(["1", "0", "true", "false", "yes", "no"])
  .transform((value) => ["1", "true", "yes"].includes(value));
const portRange = z
  .string()
  .regex(/^\d{1,5}-\d{1,5}$/, "expected MIN-MAX, e.g. 40000-40999")
  .transform((value, context) => {
    const [min, max] = value.split("-").map(Number) as [number, number];
    if (!(min >= 1 && max <= 65535 && min < max)) {
      context.addIssue({ code: "custom", message: "ports must satisfy 1 <= MIN < MAX <= 65535" });
      return z.NEVER;
    }
    return [min, max] as [number, number];
  });
const list = z.string().transform((value) =>
  value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean),
);

const envSchema = z.object({
  KMS_PORT: z.coerce.number().int().min(0).max(65535).default(8888),
  KMS_HOST: z.string().min(1).default("127.0.0.1"),
  KMS_SESSION_GRACE_MS: z.coerce.number().int().min(0).optional(),
  KMS_ICE_LOOPBACK_ONLY: flag.optional(),
  KMS_ICE_PORT_RANGE: portRange.optional(),
  KMS_ANNOUNCED_ADDRESSES: list.optional(),
  KMS_VIDEO_CODECS: list.pipe(z.array(z.enum(["VP8", "H264"])).min(1)).optional(),
  KMS_REMB_KBPS: z.coerce.number().int().min(30).max(100_000).optional(),
});

/** Reads the `KMS_*` variables documented in docs/media-server.md; throws a readable error on bad values. */
export function mediaServerOptionsFromEnv(env: NodeJS.ProcessEnv): MediaServerOptions {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      `Invalid media server environment: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`,
    );
  }
  const vars = parsed.data;
  const webrtc: Partial<WebRtcSettings> = {};
  if (vars.KMS_ICE_LOOPBACK_ONLY !== undefined) webrtc.loopbackOnly = vars.KMS_ICE_LOOPBACK_ONLY;
  if (vars.KMS_ICE_PORT_RANGE) webrtc.icePortRange = vars.KMS_ICE_PORT_RANGE;
  if (vars.KMS_ANNOUNCED_ADDRESSES) webrtc.additionalHostAddresses = vars.KMS_ANNOUNCED_ADDRESSES;
  if (vars.KMS_VIDEO_CODECS) webrtc.videoCodecs = vars.KMS_VIDEO_CODECS;
  if (vars.KMS_REMB_KBPS) webrtc.rembKbps = vars.KMS_REMB_KBPS;
  return {
    port: vars.KMS_PORT,
    host: vars.KMS_HOST,
    ...(vars.KMS_SESSION_GRACE_MS !== undefined ? { sessionGraceMs: vars.KMS_SESSION_GRACE_MS } : {}),
    webrtc,
  };
}
