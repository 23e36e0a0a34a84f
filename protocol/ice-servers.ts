/**
 * ICE servers handed to clients (README "TURN"): STUN URLs as given, and TURN
 * URLs with short-lived credentials in the TURN REST API scheme that coturn's
 * `use-auth-secret` / `static-auth-secret` checks:
 *   username   = "<unix expiry>:<user>"
 *   credential = base64(HMAC-SHA1(TURN_SECRET, username))
 * so nothing per user is stored anywhere, and a credential dies on its own.
 */
import * as z from "zod";
import { hmac } from "./tokens/hmac.ts";

/** The RTCIceServer shape (what `new RTCPeerConnection({iceServers})` takes). */
export const iceServer = z.object({
  urls: z.union([z.string(), z.array(z.string())]),
  username: z.string().optional(),
  credential: z.string().optional(),
});
export type IceServer = z.infer<typeof iceServer>;

export interface IceSettings {
  readonly stunUrls: readonly string[];
  readonly turnUrls: readonly string[];
  /** null without TURN_URLS. */
  readonly turnSecret: string | null;
  readonly turnTtlSeconds: number;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** coturn's REST API credentials for `user`, valid until `nowSeconds + ttlSeconds`. */
export async function turnCredentials(
  secret: string,
  user: string,
  ttlSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<{ username: string; credential: string }> {
  const username = `${nowSeconds + ttlSeconds}:${user}`;
  const mac = await hmac(secret, username, "SHA-1");
  return { username, credential: base64(mac) };
}

/** What a client gets: STUN as is, TURN with credentials for `user` (none when nothing is configured). */
export async function iceServersFor(settings: IceSettings, user: string, nowSeconds?: number): Promise<IceServer[]> {
  const servers: IceServer[] = [];
  if (settings.stunUrls.length > 0) servers.push({ urls: [...settings.stunUrls] });
  if (settings.turnUrls.length > 0 && settings.turnSecret !== null) {
    const { username, credential } = await turnCredentials(
      settings.turnSecret,
      user,
      settings.turnTtlSeconds,
      nowSeconds,
    );
    servers.push({ urls: [...settings.turnUrls], username, credential });
  }
  return servers;
}
