/**
 * The bridge's configuration, read from the environment and validated with
 * zod (docs/bridge.md has the table). Each key replaces one of the original
 * `kurento-room-demo.conf.json`: `kms.uris` → KMS_URIS, `demo.kmsLimit` →
 * KMS_LIMIT, `kurento.client.requestTimeout` → REQUEST_TIMEOUT_MS,
 * `demo.hatUrl` / `demo.hatCoords` → HAT_*.
 */
import { isIP } from "node:net";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import type { BridgeCredential } from "../protocol/tokens/bridge-token.ts";

export interface KmsConfig {
  readonly uri: string;
  /** Pipelines this KMS may hold (the original `kmsLimit`). */
  readonly limit: number;
}

export interface HatConfig {
  readonly url: string;
  readonly offsetX: number;
  readonly offsetY: number;
  readonly width: number;
  readonly height: number;
}

/**
 * STUN/TURN for the media servers' side (KMS setStunServerAddress /
 * setStunServerPort / setTurnUrl on every WebRtcEndpoint the bridge makes).
 * KMS takes IP addresses only, and a TURN URL as `user:password@ip:port?transport=…`.
 */
export interface MediaIceConfig {
  readonly stunAddress: string | null;
  readonly stunPort: number;
  /**
   * KMS_TURN_URL: with credentials it is used as given; without (`ip:port?…`)
   * and with `turnSecret`, each endpoint gets TURN REST API credentials
   * (user "<expiry>:<bridge id>", HMAC-SHA1 of it with the secret) valid for `turnTtlSeconds`.
   */
  readonly turnUrl: string | null;
  readonly turnSecret: string | null;
  readonly turnTtlSeconds: number;
}

export interface BridgeConfig {
  /** `http(s)://host[:port]` of the worker, no trailing slash. */
  readonly workerUrl: string;
  readonly bridgeId: string;
  /**
   * What the bridge signs its connection tokens with: BRIDGE_SECRET (a string,
   * the master: one operator running everything), or `{bridgeKey}` from
   * BRIDGE_KEY (this bridge's own key, derived for BRIDGE_ID: it can connect
   * as that id only).
   */
  readonly bridgeSecret: BridgeCredential;
  readonly kms: readonly KmsConfig[];
  /**
   * The URI kurento-client dials for a configured KMS URI: with `?token=`
   * when KMS_TOKEN is set. A function, so the token stays out of everything
   * that prints, serialises or reports the configuration and its URIs.
   */
  readonly dialUri: (uri: string) => string;
  readonly requestTimeoutMs: number;
  readonly hat: HatConfig;
  /** Port of `/health` and `/metrics`; 0 picks a free one. */
  readonly httpPort: number;
  readonly httpHost: string;
  readonly logLevel: LogLevel;
  /** STUN/TURN for the media servers' endpoints; null when none is configured. */
  readonly mediaIce: MediaIceConfig | null;
  readonly recordings: RecordingsConfig;
}

export interface RecordingsConfig {
  /** RECORDINGS_DIR, absolute: where recorded files and their upload journals wait for delivery. */
  readonly dir: string;
  /** MEDIA_RECORDINGS_DIR: the same directory as the media server sees it (KMS in a container). */
  readonly mediaDir: string;
  /** RECORDINGS_KEEP_LOCAL: keep each file after its delivery. */
  readonly keepLocal: boolean;
}

export const DEFAULT_WORKER_URL = "http://127.0.0.1:8787";
export const DEFAULT_KMS_URI = "ws://127.0.0.1:8888/kurento";
export const DEFAULT_KMS_LIMIT = 1000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 20_000;
export const MIN_SECRET_LENGTH = 16;
export const DEFAULT_KMS_STUN_PORT = 3478;
/** A media server's TURN allocation lives as long as its endpoint: a day covers any call. */
export const DEFAULT_KMS_TURN_TTL_SECONDS = 86_400;
/** Where recordings wait for delivery unless RECORDINGS_DIR says otherwise. */
export function defaultRecordingsDir(): string {
  return path.join(os.tmpdir(), "edge-room-recordings");
}
/** The demo's mario-wings coordinates (kurento-room-demo.conf.json). */
export const DEFAULT_HAT = { offsetX: -0.35, offsetY: -1.2, width: 1.6, height: 1.6 } as const;

/** A bad environment: `issues` names each variable and what is wrong with it. */
export class ConfigError extends Error {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(`Invalid bridge configuration:\n${issues.map((issue) => `  - ${issue}`).join("\n")}`);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

const httpUrl = z
  .string()
  .trim()
  .transform((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: "custom", message: `not a URL: '${value}' (expected e.g. ${DEFAULT_WORKER_URL})` });
      return z.NEVER;
    }
    if (!["http:", "https:", "ws:", "wss:"].includes(url.protocol)) {
      ctx.addIssue({ code: "custom", message: `must be an http(s) URL, got '${url.protocol}'` });
      return z.NEVER;
    }
    if (url.search || url.hash) {
      ctx.addIssue({ code: "custom", message: "must not have a query or fragment" });
      return z.NEVER;
    }
    // The bridge speaks WebSocket to it; keep the http form for display and derive ws(s) where needed.
    const protocol = url.protocol === "ws:" ? "http:" : url.protocol === "wss:" ? "https:" : url.protocol;
    return `${protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
  });

const kmsUri = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "ws:" || url.protocol === "wss:") && url.host !== "";
    } catch {
      return false;
    }
  }, "each KMS URI must be a ws:// or wss:// URL, e.g. ws://127.0.0.1:8888/kurento");

/** Comma-separated (`ws://a:8888/kurento,ws://b:8888/kurento`) or a JSON array. */
const kmsUris = z
  .string()
  .transform((value, ctx) => {
    const text = value.trim();
    if (text.startsWith("[")) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (Array.isArray(parsed) && parsed.every((item) => typeof item === "string")) return parsed as string[];
      } catch {
        // fall through to the issue below
      }
      ctx.addIssue({ code: "custom", message: "looks like JSON but is not an array of strings" });
      return z.NEVER;
    }
    return text
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean);
  })
  .pipe(z.array(kmsUri).min(1, "needs at least one URI").max(64, "at most 64 URIs"))
  .refine((uris) => new Set(uris).size === uris.length, "lists the same URI twice");

/** KMS's turnUrl (its own regex, greedy user), or the same without `user:password@` (credentials derived from KMS_TURN_SECRET). */
const KMS_TURN_URL = /^(?:.+:.+@)?(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}(?:\?transport=(?:udp|tcp|tls))?$/;

const flag = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["true", "false", "1", "0"], { error: "must be true or false" }))
  .transform((value) => value === "true" || value === "1");

/** The media server's path: absolute, POSIX (it may run elsewhere, so it is not resolved here). */
const mediaPath = z
  .string()
  .trim()
  .refine((value) => value.startsWith("/"), "must be an absolute path (as the media server sees it), e.g. /recordings")
  .transform((value) => value.replace(/\/+$/, "") || "/");

const int = (min: number, max: number) => z.coerce.number().int(`must be an integer`).min(min).max(max);
const finite = z.coerce.number().refine(Number.isFinite, "must be a number");

const envSchema = z.object({
  WORKER_URL: httpUrl.default(DEFAULT_WORKER_URL),
  BRIDGE_ID: z
    .string()
    .trim()
    .min(1)
    .max(128)
    .regex(/^[\w.:@-]+$/, "may contain letters, digits and . _ : @ - only")
    .optional(),
  BRIDGE_SECRET: z
    .string()
    .min(
      MIN_SECRET_LENGTH,
      `must be at least ${MIN_SECRET_LENGTH} characters (use a long random string, e.g. openssl rand -hex 32)`,
    )
    .optional(),
  // This bridge's own key (`npm run bridge:key -- <BRIDGE_ID>` on the operator's side), instead of BRIDGE_SECRET.
  BRIDGE_KEY: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]{43}$/, "must be the 43-character key printed by `npm run bridge:key -- <BRIDGE_ID>`")
    .optional(),
  KMS_URIS: kmsUris.default([DEFAULT_KMS_URI]),
  KMS_LIMIT: int(1, 1_000_000).default(DEFAULT_KMS_LIMIT),
  REQUEST_TIMEOUT_MS: int(100, 600_000).default(DEFAULT_REQUEST_TIMEOUT_MS),
  HAT_URL: z
    .string()
    .trim()
    .refine((value) => {
      try {
        return ["http:", "https:"].includes(new URL(value).protocol);
      } catch {
        return false;
      }
    }, "must be an http(s) URL the media server can fetch the image from")
    .optional(),
  HAT_OFFSET_X: finite.default(DEFAULT_HAT.offsetX),
  HAT_OFFSET_Y: finite.default(DEFAULT_HAT.offsetY),
  HAT_WIDTH: finite.refine((v) => v > 0, "must be positive").default(DEFAULT_HAT.width),
  HAT_HEIGHT: finite.refine((v) => v > 0, "must be positive").default(DEFAULT_HAT.height),
  BRIDGE_HTTP_PORT: int(0, 65_535).default(9090),
  BRIDGE_HTTP_HOST: z.string().trim().min(1).default("127.0.0.1"),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
  // STUN/TURN for the media servers' side (KMS formats: IP addresses only).
  KMS_STUN_ADDRESS: z
    .string()
    .trim()
    .refine((value) => isIP(value) !== 0, "must be an IP address (KMS takes no domain names)")
    .optional(),
  KMS_STUN_PORT: int(1, 65_535).default(DEFAULT_KMS_STUN_PORT),
  KMS_TURN_URL: z
    .string()
    .trim()
    .regex(
      KMS_TURN_URL,
      "must be KMS's 'user:password@<IPv4>:<port>[?transport=udp|tcp|tls]', or '<IPv4>:<port>[?transport=…]' with KMS_TURN_SECRET",
    )
    .optional(),
  KMS_TURN_SECRET: z.string().min(1).max(512).optional(),
  KMS_TURN_TTL_SECONDS: int(60, 30 * 86_400).default(DEFAULT_KMS_TURN_TTL_SECONDS),
  // The embedded media server's KMS_TOKEN (or a proxy's in front of KMS); unset: URIs are dialled as given.
  KMS_TOKEN: z.string().trim().min(1).max(512).optional(),
  // Relative to the bridge's working directory; the media server gets absolute paths only.
  RECORDINGS_DIR: z
    .string()
    .trim()
    .transform((value) => path.resolve(value))
    .optional(),
  MEDIA_RECORDINGS_DIR: mediaPath.optional(),
  RECORDINGS_KEEP_LOCAL: flag.default(false),
});

/** Variables whose values an error message must not show. */
const SECRET_KEYS: ReadonlySet<string> = new Set([
  "BRIDGE_SECRET",
  "BRIDGE_KEY",
  "KMS_TOKEN",
  "KMS_TURN_URL",
  "KMS_TURN_SECRET",
]);

/** `uri` with `?token=` (KMS_TOKEN); never log the result. */
function withToken(uri: string, token: string | undefined): string {
  if (token === undefined) return uri;
  const url = new URL(uri);
  url.searchParams.set("token", token);
  return url.toString();
}

/** The variables this module reads. */
export const CONFIG_KEYS = Object.keys(envSchema.shape) as Array<keyof typeof envSchema.shape>;

export function defaultBridgeId(): string {
  const host =
    os
      .hostname()
      .replace(/[^\w.-]/g, "-")
      .slice(0, 100) || "localhost";
  return `bridge-${host}`;
}

/** A bridge signs with BRIDGE_SECRET (the master) or with BRIDGE_KEY, its own key, which needs its BRIDGE_ID. */
function credentialProblems(input: Record<string, string>): string[] {
  const { BRIDGE_SECRET: secret, BRIDGE_KEY: key, BRIDGE_ID: id } = input;
  if (secret === undefined && key === undefined)
    return [
      "BRIDGE_SECRET: is required (the shared secret the worker also has as BRIDGE_SECRET), or BRIDGE_KEY with BRIDGE_ID",
    ];
  if (secret !== undefined && key !== undefined) return ["BRIDGE_KEY: set BRIDGE_SECRET or BRIDGE_KEY, not both"];
  if (key !== undefined && id === undefined)
    return ["BRIDGE_ID: is required with BRIDGE_KEY (the key is derived for one bridge id and good for it only)"];
  return [];
}

/** A KMS_TURN_URL without credentials needs the secret to derive them. */
function turnProblems(input: Record<string, string>): string[] {
  const url = input.KMS_TURN_URL;
  if (url !== undefined && !url.includes("@") && input.KMS_TURN_SECRET === undefined)
    return [
      "KMS_TURN_SECRET: is required with a KMS_TURN_URL without user:password@ (the credentials are derived from it)",
    ];
  return [];
}

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined>): BridgeConfig {
  // Unset and empty are the same (env files often carry `KEY=`).
  const input: Record<string, string> = {};
  for (const key of CONFIG_KEYS) {
    const value = env[key];
    if (value !== undefined && value.trim() !== "") input[key] = value;
  }
  const parsed = envSchema.safeParse(input);
  const credentialIssues = [...credentialProblems(input), ...turnProblems(input)];
  if (!parsed.success || credentialIssues.length > 0) {
    throw new ConfigError([
      ...credentialIssues,
      ...(parsed.success ? [] : parsed.error.issues).map((issue) => {
        const key = issue.path.map(String).join(".") || "environment";
        const value = typeof issue.path[0] === "string" ? input[issue.path[0]] : undefined;
        const shown =
          value === undefined || SECRET_KEYS.has(String(issue.path[0]))
            ? ""
            : ` (got '${value.length > 80 ? `${value.slice(0, 80)}…` : value}')`;
        return `${key}: ${issue.message}${shown}`;
      }),
    ]);
  }
  const vars = parsed.data;
  const kmsToken = vars.KMS_TOKEN;
  const recordingsDir = vars.RECORDINGS_DIR ?? defaultRecordingsDir();
  return {
    workerUrl: vars.WORKER_URL,
    bridgeId: vars.BRIDGE_ID ?? defaultBridgeId(),
    bridgeSecret: vars.BRIDGE_KEY !== undefined ? { bridgeKey: vars.BRIDGE_KEY } : (vars.BRIDGE_SECRET ?? ""),
    kms: vars.KMS_URIS.map((uri) => ({ uri, limit: vars.KMS_LIMIT })),
    dialUri: (uri) => withToken(uri, kmsToken),
    requestTimeoutMs: vars.REQUEST_TIMEOUT_MS,
    hat: {
      url: vars.HAT_URL ?? `${vars.WORKER_URL}/img/mario-wings.png`,
      offsetX: vars.HAT_OFFSET_X,
      offsetY: vars.HAT_OFFSET_Y,
      width: vars.HAT_WIDTH,
      height: vars.HAT_HEIGHT,
    },
    httpPort: vars.BRIDGE_HTTP_PORT,
    httpHost: vars.BRIDGE_HTTP_HOST,
    logLevel: vars.LOG_LEVEL,
    mediaIce:
      vars.KMS_STUN_ADDRESS === undefined && vars.KMS_TURN_URL === undefined
        ? null
        : {
            stunAddress: vars.KMS_STUN_ADDRESS ?? null,
            stunPort: vars.KMS_STUN_PORT,
            turnUrl: vars.KMS_TURN_URL ?? null,
            turnSecret: vars.KMS_TURN_URL?.includes("@") ? null : (vars.KMS_TURN_SECRET ?? null),
            turnTtlSeconds: vars.KMS_TURN_TTL_SECONDS,
          },
    recordings: {
      dir: recordingsDir,
      mediaDir: vars.MEDIA_RECORDINGS_DIR ?? recordingsDir,
      keepLocal: vars.RECORDINGS_KEEP_LOCAL,
    },
  };
}

/** `http://h:p/x` → `ws://h:p/x` (and https → wss). */
export function toWebSocketUrl(httpBase: string): string {
  return httpBase.replace(/^http(s?):\/\//, (_m, s: string) => `ws${s}://`);
}
