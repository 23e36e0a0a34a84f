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
import type { WorkerOption } from "./options.ts";

export interface Env extends Partial<Record<WorkerOption, string>> {
  ROOM: DurableObjectNamespace<RoomObject>;
  DIRECTORY: DurableObjectNamespace<RoomDirectory>;
  POOL: DurableObjectNamespace<BridgePool>;
}

const flag = z
  .enum(["true", "false", "1", "0", ""])
  .optional()
  .transform((v) => v === "true" || v === "1");

const settingsSchema = z.object({
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
});

export interface Settings {
  readonly room: RoomConfig;
  readonly loopbackRemote: boolean;
  readonly loopbackAndLocal: boolean;
  readonly adminToken: string | null;
  readonly mediaTimeoutMs: number;
}

let cached: { env: Env; settings: Settings } | null = null;

/** Throws (a configuration error: the operator's to fix) when a var is malformed. */
export function settingsOf(env: Env): Settings {
  if (cached && cached.env === env) return cached.settings;
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) throw new Error(`Invalid configuration: ${z.prettifyError(parsed.error)}`);
  const s = parsed.data;
  const settings: Settings = {
    room: { authRegex: s.AUTH_REGEX, reconnectWindowMs: s.RECONNECT_WINDOW_SECONDS * 1000 },
    loopbackRemote: s.LOOPBACK_REMOTE,
    loopbackAndLocal: s.LOOPBACK_AND_LOCAL,
    adminToken: s.ADMIN_TOKEN ? s.ADMIN_TOKEN : null,
    mediaTimeoutMs: s.MEDIA_TIMEOUT_MS,
  };
  cached = { env, settings };
  return settings;
}
