/**
 * Compact HMAC-SHA256 tokens: `v1.<base64url(JSON claims)>.<base64url(signature)>`.
 * WebCrypto only, so the same code signs in Node (bridge, application
 * servers) and verifies in the worker. What the claims mean is the caller's
 * business (bridge-token.ts, join-token.ts).
 */
import { decodeBase64Url, encodeBase64Url } from "./base64url.ts";
import { constantTimeEqual } from "./constant-time.ts";
import { hmac } from "./hmac.ts";

const VERSION = "v1";

/** HMAC-SHA256 of `data` keyed with `secret`, base64url. */
export async function hmacBase64Url(secret: string, data: string): Promise<string> {
  return encodeBase64Url(await hmac(secret, data));
}

export async function signToken(secret: string, claims: object): Promise<string> {
  const encoded = `${VERSION}.${encodeBase64Url(new TextEncoder().encode(JSON.stringify(claims)))}`;
  return `${encoded}.${await hmacBase64Url(secret, encoded)}`;
}

/**
 * The claims of a well-formed token WITHOUT checking its signature: only to
 * pick the key to verify it with (the bridge id of a bridge token), never to
 * trust. null when the token is malformed.
 */
export function peekClaims(token: string): unknown {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) return null;
  const raw = decodeBase64Url(parts[1] as string);
  if (!raw) return null;
  try {
    return JSON.parse(new TextDecoder().decode(raw)) as unknown;
  } catch {
    return null;
  }
}

/** The token's claims once its signature checks out (compared in constant time); nothing else is checked. */
export async function openToken(
  secret: string,
  token: string,
): Promise<{ ok: true; claims: unknown } | { ok: false; reason: string }> {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) return { ok: false, reason: "malformed token" };
  const [version, body, signature] = parts as [string, string, string];
  const expected = await hmacBase64Url(secret, `${version}.${body}`);
  if (!constantTimeEqual(signature, expected)) return { ok: false, reason: "bad signature" };
  const raw = decodeBase64Url(body);
  if (!raw) return { ok: false, reason: "malformed token" };
  try {
    return { ok: true, claims: JSON.parse(new TextDecoder().decode(raw)) as unknown };
  } catch {
    return { ok: false, reason: "malformed token" };
  }
}
