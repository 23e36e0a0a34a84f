/**
 * Short-lived tokens that authenticate a bridge's WebSocket to the worker
 * (DESIGN §4): HMAC-SHA256 over the claims with the shared BRIDGE_SECRET.
 * WebCrypto only, so the same code signs in the bridge (Node) and verifies
 * in the worker.
 *
 * Format: `v1.<base64url(JSON claims)>.<base64url(signature)>`.
 * The single-use nonce is enforced by the Durable Object that accepts the
 * socket (it remembers nonces until they expire).
 */
import { z } from "zod";
import { encodeBase64Url } from "../base64url.ts";
import { openToken, signToken } from "./signed-token.ts";

export const MAX_TOKEN_TTL_SECONDS = 60;
/** Clock difference tolerated between bridge and edge. */
const CLOCK_SKEW_SECONDS = 5;

export const bridgeClaims = z.object({
  /** The bridge's id. */
  bid: z.string().min(1).max(128),
  /** What the socket is for: `control`, or `room:<room name>`. */
  aud: z.string().min(1).max(300),
  /** Expiry, seconds since the epoch. */
  exp: z.number().int(),
  nonce: z.string().min(16).max(64),
});
export type BridgeClaims = z.infer<typeof bridgeClaims>;

export function roomAudience(room: string): string {
  return `room:${room}`;
}
export const CONTROL_AUDIENCE = "control";

export async function signBridgeToken(
  secret: string,
  claims: { bridgeId: string; audience: string; ttlSeconds?: number; nowSeconds?: number },
): Promise<string> {
  const now = claims.nowSeconds ?? Math.floor(Date.now() / 1000);
  const ttl = Math.min(claims.ttlSeconds ?? 30, MAX_TOKEN_TTL_SECONDS);
  const nonce = encodeBase64Url(crypto.getRandomValues(new Uint8Array(16)));
  const body: BridgeClaims = { bid: claims.bridgeId, aud: claims.audience, exp: now + ttl, nonce };
  return signToken(secret, body);
}

export type TokenCheck = { ok: true; claims: BridgeClaims } | { ok: false; reason: string };

export async function verifyBridgeToken(
  secret: string,
  token: string,
  audience: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<TokenCheck> {
  const opened = await openToken(secret, token);
  if (!opened.ok) return opened;
  const json = opened.claims;
  const parsed = bridgeClaims.safeParse(json);
  if (!parsed.success) return { ok: false, reason: "malformed claims" };
  const claims = parsed.data;
  if (claims.aud !== audience) return { ok: false, reason: "token is for another purpose" };
  if (claims.exp <= nowSeconds - CLOCK_SKEW_SECONDS) return { ok: false, reason: "expired token" };
  if (claims.exp > nowSeconds + MAX_TOKEN_TTL_SECONDS + CLOCK_SKEW_SECONDS) return { ok: false, reason: "token lives too long" };
  return { ok: true, claims };
}
