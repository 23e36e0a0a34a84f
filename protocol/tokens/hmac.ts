/**
 * The one HMAC of the project (WebCrypto, so the same code runs in Node and
 * in the worker): tokens and webhooks sign with SHA-256, TURN REST API
 * credentials with SHA-1 (what coturn checks).
 */
export async function hmac(secret: string, data: string, hash: "SHA-256" | "SHA-1" = "SHA-256"): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(data)));
}
