/**
 * Short-lived tokens that authenticate a bridge's WebSocket to the worker:
 * HMAC-SHA256 over the claims with the bridge's own key. WebCrypto only, so
 * the same code signs in the bridge (Node) and verifies in the worker.
 *
 * Each bridge has its own key, derived from the master BRIDGE_SECRET:
 * `key(id) = base64url(HMAC-SHA256(BRIDGE_SECRET, "bridge-key:" + id))`. The
 * worker verifies a token with the key derived for the token's `bid` claim,
 * so a bridge that holds only its own key (BRIDGE_KEY) can connect only as
 * itself; the master secret (one operator running everything) can sign for
 * any id.
 *
 * Format: `v1.<base64url(JSON claims)>.<base64url(signature)>`.
 * The single-use nonce is enforced by the Durable Object that accepts the
 * socket (it remembers nonces until they expire).
 */
import * as z from "zod";
import { encodeBase64Url } from "./base64url.ts";
import { hmacBase64Url, openToken, peekClaims, signToken } from "./signed-token.ts";
import { MAX_BRIDGE_TOKEN_TTL_SECONDS, TOKEN_CLOCK_SKEW_SECONDS } from "../timeouts.ts";

export const MAX_TOKEN_TTL_SECONDS = MAX_BRIDGE_TOKEN_TTL_SECONDS;

/** The `pur` claim of a bridge token: a join token (or any other token) is never accepted as one. */
export const BRIDGE_TOKEN_PURPOSE = "bridge";

const bridgeId = z.string().min(1).max(128);

export const bridgeClaims = z.object({
  pur: z.literal(BRIDGE_TOKEN_PURPOSE),
  /** The bridge's id. */
  bid: bridgeId,
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

/** The key of bridge `id`: `base64url(HMAC-SHA256(masterSecret, "bridge-key:" + id))`. */
export function deriveBridgeKey(masterSecret: string, id: string): Promise<string> {
  return hmacBase64Url(masterSecret, `bridge-key:${id}`);
}

/**
 * What a bridge signs with: the master secret (a string, BRIDGE_SECRET), from
 * which the key of any id is derived, or its own derived key (BRIDGE_KEY),
 * good for its own id only.
 */
export type BridgeCredential = string | { readonly bridgeKey: string };

export function bridgeSigningKey(credential: BridgeCredential, id: string): Promise<string> {
  return typeof credential === "string" ? deriveBridgeKey(credential, id) : Promise.resolve(credential.bridgeKey);
}

export async function signBridgeToken(
  credential: BridgeCredential,
  claims: { bridgeId: string; audience: string; ttlSeconds?: number; nowSeconds?: number },
): Promise<string> {
  const now = claims.nowSeconds ?? Math.floor(Date.now() / 1000);
  const ttl = Math.min(claims.ttlSeconds ?? 30, MAX_TOKEN_TTL_SECONDS);
  const nonce = encodeBase64Url(crypto.getRandomValues(new Uint8Array(16)));
  const body: BridgeClaims = {
    pur: BRIDGE_TOKEN_PURPOSE,
    bid: claims.bridgeId,
    aud: claims.audience,
    exp: now + ttl,
    nonce,
  };
  return signToken(await bridgeSigningKey(credential, claims.bridgeId), body);
}

export type TokenCheck = { ok: true; claims: BridgeClaims } | { ok: false; reason: string };

/** Verifies with the key derived from `masterSecret` for the token's own `bid` claim. */
export async function verifyBridgeToken(
  masterSecret: string,
  token: string,
  audience: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<TokenCheck> {
  const peeked = peekClaims(token);
  const bid =
    typeof peeked === "object" && peeked !== null ? bridgeId.safeParse((peeked as { bid?: unknown }).bid) : null;
  if (!bid) return { ok: false, reason: "malformed token" };
  if (!bid.success) return { ok: false, reason: "malformed claims" };
  const opened = await openToken(await deriveBridgeKey(masterSecret, bid.data), token);
  if (!opened.ok) return opened;
  const json = opened.claims;
  if (typeof json === "object" && json !== null && (json as { pur?: unknown }).pur !== BRIDGE_TOKEN_PURPOSE)
    return { ok: false, reason: "not a bridge token" };
  const parsed = bridgeClaims.safeParse(json);
  if (!parsed.success) return { ok: false, reason: "malformed claims" };
  const claims = parsed.data;
  if (claims.aud !== audience) return { ok: false, reason: "token is for another purpose" };
  if (claims.exp <= nowSeconds - TOKEN_CLOCK_SKEW_SECONDS) return { ok: false, reason: "expired token" };
  if (claims.exp > nowSeconds + MAX_TOKEN_TTL_SECONDS + TOKEN_CLOCK_SKEW_SECONDS)
    return { ok: false, reason: "token lives too long" };
  return { ok: true, claims };
}
