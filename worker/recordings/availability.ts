/**
 * Whether this deployment can record, and the ids of new recordings. Shared
 * by the admin REST API (503 when it cannot), the room's client methods and
 * `/getClientConfig`.
 */
import { encodeBase64Url } from "../../protocol/tokens/base64url.ts";
import { settingsOf, type Env } from "../env.ts";

/** Why nothing can be recorded here (a sentence), or null when recording works. */
export function recordingUnavailable(env: Env): string | null {
  if (!env.RECORDINGS) {
    return 'the R2 bucket binding RECORDINGS is missing (wrangler.toml [[r2_buckets]] binding = "RECORDINGS", bucket edge-room-recordings)';
  }
  if (settingsOf(env).bridgeSecret === null) {
    return "BRIDGE_SECRET is not configured (it signs the media bridges' upload tokens)";
  }
  return null;
}

/** `rec_` and 128 random bits, URL-safe (protocol/recordings.ts `recordingId`). */
export function newRecordingId(): string {
  return `rec_${encodeBase64Url(crypto.getRandomValues(new Uint8Array(16)))}`;
}
