/**
 * Checks a bridge's token *before* its WebSocket upgrade is accepted: a bad,
 * expired or misdirected token gets 401 and no socket. The accepting object
 * then claims the nonce (replays get 401 there).
 */
import { bearerToken } from "./auth/constant-time.ts";
import { verifyBridgeToken, type BridgeClaims } from "./auth/bridge-token.ts";
import type { Env } from "./env.ts";

/** Headers by which the worker hands verified claims to the accepting object. */
export const BRIDGE_ID_HEADER = "x-bridge-id";
export const TOKEN_NONCE_HEADER = "x-token-nonce";
export const TOKEN_EXP_HEADER = "x-token-exp";

export type BridgeAuth = { ok: true; claims: BridgeClaims } | { ok: false; response: Response };

export async function authenticateBridge(request: Request, env: Env, audience: string): Promise<BridgeAuth> {
  const secret = env.BRIDGE_SECRET;
  if (!secret) {
    return { ok: false, response: Response.json({ error: "media bridges are disabled: BRIDGE_SECRET is not configured" }, { status: 503 }) };
  }
  const token = bearerToken(request.headers.get("Authorization"));
  if (token === null) return { ok: false, response: Response.json({ error: "missing bridge token" }, { status: 401 }) };
  const check = await verifyBridgeToken(secret, token, audience);
  if (!check.ok) return { ok: false, response: Response.json({ error: check.reason }, { status: 401 }) };
  return { ok: true, claims: check.claims };
}

/** The request forwarded to the accepting object, carrying the verified claims (never the client's own headers). */
export function forwardWithClaims(request: Request, claims: BridgeClaims, extra: Record<string, string> = {}): Request {
  const headers = new Headers();
  headers.set("Upgrade", "websocket");
  headers.set(BRIDGE_ID_HEADER, claims.bid);
  headers.set(TOKEN_NONCE_HEADER, claims.nonce);
  headers.set(TOKEN_EXP_HEADER, String(claims.exp));
  for (const [k, v] of Object.entries(extra)) headers.set(k, v);
  return new Request(request.url, { headers });
}
