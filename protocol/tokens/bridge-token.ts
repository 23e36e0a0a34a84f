/**
 * Short-lived tokens that authenticate a bridge's WebSocket to the worker:
 * HMAC-SHA256 over the claims with the shared BRIDGE_SECRET.
 * WebCrypto only, so the same code signs in the bridge (Node) and verifies
 * in the worker.
 *
 * Format: `v1.<base64url(JSON claims)>.<base64url(signature)>`.
 * The single-use nonce is enforced by the Durable Object that accepts the
 * socket (it remembers nonces until they expire).
 */
import * as z from "zod";
import { encodeBase64Url } from "./base64url.ts";
import { openToken, signToken } from "./signed-token.ts";
import { MAX_BRIDGE_TOKEN_TTL_SECONDS, TOKEN_CLOCK_SKEW_SECONDS } from "../timeouts.ts";

export const MAX_TOKEN_TTL_SECONDS = MAX_BRIDGE_TOKEN_TTL_SECONDS;

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
  if (claims.exp <= nowSeconds - TOKEN_CLOCK_SKEW_SECONDS) return { ok: false, reason: "expired token" };
  if (claims.exp > nowSeconds + MAX_TOKEN_TTL_SECONDS + TOKEN_CLOCK_SKEW_SECONDS)
    return { ok: false, reason: "token lives too long" };
  return { ok: true, claims };
}
