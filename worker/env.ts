/**
 * The worker's bindings and configuration, validated once per isolate.
 * Every option is a wrangler var or secret; README.md lists them with the
 * key of the original `kurento-room-demo.conf.json` each replaces.
 */
import * as z from "zod";
import type { RoomConfig } from "./core/hooks.ts";
import type { BridgePool } from "./do/bridge-pool.ts";
import type { RoomDirectory } from "./do/room-directory.ts";
import type { RoomObject } from "./do/room-object.ts";
import type { RecordingLedger } from "./do/recording-ledger.ts";
import type { WorkerOption } from "./options.ts";
import type { WebhookSettings } from "./do/webhook-outbox.ts";
import type { IceSettings } from "../protocol/ice-servers.ts";
import { DEFAULT_JOIN_TOKEN_MAX_TTL_SECONDS } from "../protocol/tokens/join-token.ts";
import {
  DEFAULT_CHAT_PER_SECOND,
  DEFAULT_RATE_LIMIT_BURST,
  DEFAULT_RATE_LIMIT_PER_SECOND,
  type RateLimits,
} from "./rate-limit.ts";

export interface Env extends Partial<Record<WorkerOption, string>> {
  ROOM: DurableObjectNamespace<RoomObject>;
  DIRECTORY: DurableObjectNamespace<RoomDirectory>;
  POOL: DurableObjectNamespace<BridgePool>;
  /** The recordings' ledger (one object): recordings and their files outlive the rooms. */
  LEDGER: DurableObjectNamespace<RecordingLedger>;
  /** The R2 bucket of the recordings' files (wrangler.toml `[[r2_buckets]]`); without it nothing can be recorded. */
  RECORDINGS?: R2Bucket;
}

const flag = z
  .enum(["true", "false", "1", "0", ""])
  .optional()
  .transform((v) => v === "true" || v === "1");

/** Shorter secrets are refused: they can be guessed offline from one captured token. */
export const MIN_SECRET_LENGTH = 16;

/** An optional secret: unset or empty means off; otherwise at least MIN_SECRET_LENGTH characters. */
const secret = (key: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v ? v : null))
    .refine(
      (v) => v === null || v.length >= MIN_SECRET_LENGTH,
      `${key} must be at least ${MIN_SECRET_LENGTH} characters (use a long random string, e.g. openssl rand -hex 32)`,
    );

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A comma-separated list of URIs, each matching `scheme` and parsable as a URL (e.g. `stun:host:3478`). */
const urlList = (key: string, scheme: RegExp, example: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const urls = (v ?? "")
        .split(",")
        .map((u) => u.trim())
        .filter((u) => u !== "");
      for (const url of urls) {
        if (!scheme.test(url) || /\s/.test(url) || !URL.canParse(url)) {
          ctx.addIssue({ code: "custom", message: `${key}: '${url}' is not a URI like ${example}` });
          return z.NEVER;
        }
      }
      return urls;
    });

const settingsSchema = z
  .object({
    AUTH_REGEX: z
      .string()
      .optional()
      .transform((v, ctx) => {
        try {
          // Anchored like Java's String.matches(), which the original used.
          return new RegExp(`^(?:${v ?? ".*"})$`, "u");
        } catch {
          ctx.addIssue({ code: "custom", message: `AUTH_REGEX is not a valid regular expression: ${v}` });
          return z.NEVER;
        }
      }),
    LOOPBACK_REMOTE: flag,
    LOOPBACK_AND_LOCAL: flag,
    RECONNECT_WINDOW_SECONDS: z.coerce.number().min(0).max(3600).default(10),
    ADMIN_TOKEN: z.string().optional(),
    MEDIA_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(25_000),
    BRIDGE_SECRET: secret("BRIDGE_SECRET"),
    JOIN_TOKEN_SECRET: secret("JOIN_TOKEN_SECRET"),
    JOIN_TOKEN_MAX_TTL_SECONDS: int(1, 366 * 86_400).default(DEFAULT_JOIN_TOKEN_MAX_TTL_SECONDS),
    MAX_PARTICIPANTS: int(1, 10_000).default(100),
    RATE_LIMIT_BURST: int(1, 1_000_000).default(DEFAULT_RATE_LIMIT_BURST),
    RATE_LIMIT_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(DEFAULT_RATE_LIMIT_PER_SECOND),
    CHAT_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(DEFAULT_CHAT_PER_SECOND),
    IDLE_SOCKET_SECONDS: int(1, 3600).default(30),
    MAX_PENDING_SOCKETS: int(1, 100_000).default(50),
    MAX_ICE_CANDIDATES: int(1, 100_000).default(100),
    WEBHOOK_URLS: urlList("WEBHOOK_URLS", /^https?:\/\//, "https://example.com/hook"),
    WEBHOOK_SECRET: secret("WEBHOOK_SECRET"),
    STUN_URLS: urlList("STUN_URLS", /^stuns?:/, "stun:stun.example.com:3478"),
    TURN_URLS: urlList("TURN_URLS", /^turns?:/, "turn:turn.example.com:3478?transport=udp"),
    TURN_SECRET: secret("TURN_SECRET"),
    TURN_TTL_SECONDS: int(60, 7 * 86_400).default(3600),
    WEBHOOK_MAX_AGE_SECONDS: int(60, 30 * 86_400).default(86_400),
    ALLOW_RECORDING_FROM_CLIENTS: flag,
    RECORDING_UPLOAD_TIMEOUT_SECONDS: int(1, 7 * 86_400).default(3600),
  })
  .refine((s) => s.WEBHOOK_URLS.length === 0 || s.WEBHOOK_SECRET !== null, {
    message: "WEBHOOK_SECRET is required when WEBHOOK_URLS is set (receivers check the signature)",
    path: ["WEBHOOK_SECRET"],
  })
  .refine((s) => s.TURN_URLS.length === 0 || s.TURN_SECRET !== null, {
    message: "TURN_SECRET is required when TURN_URLS is set (it signs the clients' TURN credentials)",
    path: ["TURN_SECRET"],
  });

export interface Settings {
  readonly room: RoomConfig;
  readonly loopbackRemote: boolean;
  readonly loopbackAndLocal: boolean;
  readonly adminToken: string | null;
  readonly mediaTimeoutMs: number;
  readonly bridgeSecret: string | null;
  readonly joinTokenSecret: string | null;
  readonly joinTokenMaxTtlSeconds: number;
  readonly rateLimit: RateLimits;
  readonly idleSocketMs: number;
  readonly maxPendingSockets: number;
  /** null: no STUN or TURN configured (clients get no iceServers). */
  readonly ice: IceSettings | null;
  /** null: no webhooks (WEBHOOK_URLS unset). */
  readonly webhooks: WebhookSettings | null;
  /** A file not delivered this long after its stream ended fails (RECORDING_UPLOAD_TIMEOUT_SECONDS). */
  readonly recordingUploadTimeoutMs: number;
}

let cached: { env: Env; settings: Settings } | null = null;

/** Throws (a configuration error: the operator's to fix) when a var is malformed. */
export function settingsOf(env: Env): Settings {
  if (cached && cached.env === env) return cached.settings;
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) throw new Error(`Invalid configuration: ${z.prettifyError(parsed.error)}`);
  const s = parsed.data;
  const settings: Settings = {
    room: {
      authRegex: s.AUTH_REGEX,
      reconnectWindowMs: s.RECONNECT_WINDOW_SECONDS * 1000,
      maxParticipants: s.MAX_PARTICIPANTS,
      maxIceCandidates: s.MAX_ICE_CANDIDATES,
      mediaTimeoutMs: s.MEDIA_TIMEOUT_MS,
      recording: { fromClients: s.ALLOW_RECORDING_FROM_CLIENTS, moderatorsOnly: s.JOIN_TOKEN_SECRET !== null },
    },
    loopbackRemote: s.LOOPBACK_REMOTE,
    loopbackAndLocal: s.LOOPBACK_AND_LOCAL,
    adminToken: s.ADMIN_TOKEN ? s.ADMIN_TOKEN : null,
    mediaTimeoutMs: s.MEDIA_TIMEOUT_MS,
    bridgeSecret: s.BRIDGE_SECRET,
    joinTokenSecret: s.JOIN_TOKEN_SECRET,
    joinTokenMaxTtlSeconds: s.JOIN_TOKEN_MAX_TTL_SECONDS,
    rateLimit: {
      burst: s.RATE_LIMIT_BURST,
      perSecond: s.RATE_LIMIT_PER_SECOND,
      chatPerSecond: s.CHAT_PER_SECOND,
    },
    idleSocketMs: s.IDLE_SOCKET_SECONDS * 1000,
    maxPendingSockets: s.MAX_PENDING_SOCKETS,
    ice:
      s.STUN_URLS.length > 0 || s.TURN_URLS.length > 0
        ? {
            stunUrls: s.STUN_URLS,
            turnUrls: s.TURN_URLS,
            turnSecret: s.TURN_SECRET,
            turnTtlSeconds: s.TURN_TTL_SECONDS,
          }
        : null,
    webhooks:
      s.WEBHOOK_URLS.length > 0 && s.WEBHOOK_SECRET !== null
        ? { urls: s.WEBHOOK_URLS, secret: s.WEBHOOK_SECRET, maxAgeMs: s.WEBHOOK_MAX_AGE_SECONDS * 1000 }
        : null,
    recordingUploadTimeoutMs: s.RECORDING_UPLOAD_TIMEOUT_SECONDS * 1000,
  };
  cached = { env, settings };
  return settings;
}
