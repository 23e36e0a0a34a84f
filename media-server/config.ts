import { z } from "zod";
import type { WebRtcSettings } from "./webrtc-config.ts";

export interface MediaServerOptions {
  /** TCP port for the WebSocket (`/kurento`) and `GET /health`; 0 picks a free one. Default 8888, the KMS default. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1: other machines cannot connect. */
  host?: string;
  /**
   * Origins allowed to open the WebSocket from a web page (exact, e.g. `https://app.example.com`; `*` for any).
   * Upgrades with an `Origin` header not listed are refused with 403; clients without one (Node, kurento-client) pass.
   * Default: none.
   */
  allowedOrigins?: readonly string[];
  /**
   * Shared secret every WebSocket upgrade must carry (`?token=`, `?access_token=` or `Authorization: Bearer`);
   * missing or wrong: 401. Default: none required.
   */
  token?: string;
  /** How long a session survives its WebSocket, waiting for `connect {sessionId}`. Default 30 s. */
  sessionGraceMs?: number;
  /** ICE, codecs, REMB, and `mediaForwarding` (MEDIA_FORWARDING below). */
  webrtc?: Partial<WebRtcSettings & ForwardingSettings>;
  /** Diagnostics sink; default writes to stderr. */
  log?: (message: string) => void;
}

/**
 * How RTP from the graph reaches a peer (MEDIA_FORWARDING): `fast` rewrites,
 * encrypts and sends each packet on our own lean path
 * (objects/webrtc/fast-sender.ts, docs/media-forwarding.md); `werift` hands it
 * to werift's RTCRtpSender.sendRtp, as before that path existed.
 */
export type MediaForwarding = "fast" | "werift";
export const DEFAULT_MEDIA_FORWARDING: MediaForwarding = "fast";

/** Lives beside WebRtcSettings in the endpoints' `context.webrtc` (server.ts spreads the options into it). */
export interface ForwardingSettings {
  mediaForwarding: MediaForwarding;
}

export const DEFAULT_WEBRTC_SETTINGS: WebRtcSettings & ForwardingSettings = {
  loopbackOnly: false,
  icePortRange: undefined,
  additionalHostAddresses: [],
  videoCodecs: ["VP8", "H264"],
  rembKbps: 2500,
  mediaForwarding: DEFAULT_MEDIA_FORWARDING,
};

/** The forwarding mode of an endpoint's settings (the default when the settings were built without one). */
export function mediaForwardingOf(settings: object): MediaForwarding {
  const mode = "mediaForwarding" in settings ? settings.mediaForwarding : undefined;
  return mode === "fast" || mode === "werift" ? mode : DEFAULT_MEDIA_FORWARDING;
}

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

/** A web origin as browsers send it: scheme://host[:port], nothing after. */
const origin = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.origin === value && url.origin !== "null";
  } catch {
    return false;
  }
}, "each origin must be exactly scheme://host[:port] (e.g. https://app.example.com, no path or trailing slash), or *");
export const MIN_TOKEN_LENGTH = 16;

const envSchema = z.object({
  KMS_PORT: z.coerce.number().int().min(0).max(65535).default(8888),
  KMS_HOST: z.string().min(1).default("127.0.0.1"),
  KMS_ALLOWED_ORIGINS: list.pipe(z.array(z.union([z.literal("*"), origin]))).optional(),
  KMS_TOKEN: z
    .string()
    .trim()
    .min(MIN_TOKEN_LENGTH, `must be at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)`)
    .max(512)
    .optional(),
  KMS_SESSION_GRACE_MS: z.coerce.number().int().min(0).optional(),
  KMS_ICE_LOOPBACK_ONLY: flag.optional(),
  KMS_ICE_PORT_RANGE: portRange.optional(),
  KMS_ANNOUNCED_ADDRESSES: list.optional(),
  KMS_VIDEO_CODECS: list.pipe(z.array(z.enum(["VP8", "H264"])).min(1)).optional(),
  KMS_REMB_KBPS: z.coerce.number().int().min(30).max(100_000).optional(),
  /** `fast` or `werift` (see MediaForwarding); unset: DEFAULT_MEDIA_FORWARDING. */
  MEDIA_FORWARDING: z.enum(["fast", "werift"]).optional(),
});

/**
 * Reads the `KMS_*` variables documented in docs/media-server.md, and
 * MEDIA_FORWARDING (`fast` | `werift`, docs/media-forwarding.md); throws a
 * readable error on bad values.
 */
export function mediaServerOptionsFromEnv(env: NodeJS.ProcessEnv): MediaServerOptions {
  // Unset and empty are the same for the access settings (env files often carry `KMS_TOKEN=`).
  const present = { ...env };
  for (const key of ["KMS_ALLOWED_ORIGINS", "KMS_TOKEN"]) if (present[key]?.trim() === "") delete present[key];
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new Error(
      `Invalid media server environment: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`,
    );
  }
  const vars = parsed.data;
  const webrtc: Partial<WebRtcSettings & ForwardingSettings> = {};
  if (vars.KMS_ICE_LOOPBACK_ONLY !== undefined) webrtc.loopbackOnly = vars.KMS_ICE_LOOPBACK_ONLY;
  if (vars.KMS_ICE_PORT_RANGE) webrtc.icePortRange = vars.KMS_ICE_PORT_RANGE;
  if (vars.KMS_ANNOUNCED_ADDRESSES) webrtc.additionalHostAddresses = vars.KMS_ANNOUNCED_ADDRESSES;
  if (vars.KMS_VIDEO_CODECS) webrtc.videoCodecs = vars.KMS_VIDEO_CODECS;
  if (vars.KMS_REMB_KBPS) webrtc.rembKbps = vars.KMS_REMB_KBPS;
  if (vars.MEDIA_FORWARDING) webrtc.mediaForwarding = vars.MEDIA_FORWARDING;
  return {
    port: vars.KMS_PORT,
    host: vars.KMS_HOST,
    ...(vars.KMS_ALLOWED_ORIGINS ? { allowedOrigins: vars.KMS_ALLOWED_ORIGINS } : {}),
    ...(vars.KMS_TOKEN ? { token: vars.KMS_TOKEN } : {}),
    ...(vars.KMS_SESSION_GRACE_MS !== undefined ? { sessionGraceMs: vars.KMS_SESSION_GRACE_MS } : {}),
    webrtc,
  };
}
