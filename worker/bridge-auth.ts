/**
 * Checks a bridge's token *before* its WebSocket upgrade is accepted: a bad,
 * expired or misdirected token, or one not signed with the key derived for
 * its own bridge id, gets 401 and no socket. The accepting object
 * then claims the nonce (replays get 401 there).
 */
import { bearerToken } from "../protocol/tokens/constant-time.ts";
import { verifyBridgeToken, type BridgeClaims } from "../protocol/tokens/bridge-token.ts";
import { settingsOf, type Env } from "./env.ts";
import type { NonceLedger } from "./auth/nonce-ledger.ts";

/** Headers by which the worker hands verified claims to the accepting object. */
const BRIDGE_ID_HEADER = "x-bridge-id";
const TOKEN_NONCE_HEADER = "x-token-nonce";
const TOKEN_EXP_HEADER = "x-token-exp";

export type BridgeAuth = { ok: true; claims: BridgeClaims } | { ok: false; response: Response };

export async function authenticateBridge(request: Request, env: Env, audience: string): Promise<BridgeAuth> {
  const secret = settingsOf(env).bridgeSecret;
  if (secret === null) {
    return {
      ok: false,
      response: Response.json(
        { error: "media bridges are disabled: BRIDGE_SECRET is not configured" },
        { status: 503 },
      ),
    };
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

/**
 * In the accepting object: the bridge id the worker verified, once its token's
 * nonce is claimed; or the response refusing the upgrade (a replay gets 401).
 */
export function claimBridgeToken(request: Request, nonces: NonceLedger): { bridgeId: string } | Response {
  const bridgeId = request.headers.get(BRIDGE_ID_HEADER);
  const nonce = request.headers.get(TOKEN_NONCE_HEADER);
  const exp = Number(request.headers.get(TOKEN_EXP_HEADER));
  if (!bridgeId || !nonce || !Number.isInteger(exp)) return new Response("missing bridge claims", { status: 400 });
  if (!nonces.claim(nonce, exp)) return Response.json({ error: "replayed token" }, { status: 401 });
  return { bridgeId };
}
