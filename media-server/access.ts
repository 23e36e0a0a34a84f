import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

// Who may open the Kurento WebSocket: decided from the HTTP upgrade request,
// before any frame is read. KMS itself checks nothing; this server is meant to
// be safe to run on a developer's machine and behind a bridge, so:
// - a request with an `Origin` header comes from a web page (Node clients such
//   as kurento-client send none): refused (403) unless the origin is allowed;
// - with a token configured, the request must carry it (`?token=`,
//   `?access_token=` as kurento-client's own `access_token` option sends it, or
//   `Authorization: Bearer`): refused (401) when missing or wrong.

export interface AccessPolicy {
  /** Exact origins (`https://app.example.com`) allowed to connect from a page; `*` allows any. Empty: none. */
  readonly allowedOrigins: readonly string[];
  /** Shared secret every upgrade must carry; undefined: none required. */
  readonly token: string | undefined;
}

export type AccessDecision = { allowed: true } | { allowed: false; status: 401 | 403; reason: string };

/** Query parameters that may carry the token: ours, and the one kurento-client's `access_token` option adds. */
export const TOKEN_QUERY_PARAMETERS = ["token", "access_token"] as const;

const MAX_PRESENTED_TOKENS = 3;

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/** Builds the upgrade check once: the token is kept only as its SHA-256 digest. */
export function accessCheck(policy: AccessPolicy): (request: IncomingMessage) => AccessDecision {
  const anyOrigin = policy.allowedOrigins.includes("*");
  const origins = new Set(policy.allowedOrigins);
  const expected = policy.token === undefined ? undefined : digest(policy.token);

  return (request) => {
    // Version 8 of the protocol (still accepted by ws) names it Sec-WebSocket-Origin.
    const origin = header(request, "origin") ?? header(request, "sec-websocket-origin");
    if (origin !== undefined && !anyOrigin && !origins.has(origin)) {
      return {
        allowed: false,
        status: 403,
        reason: `origin ${JSON.stringify(origin.slice(0, 200))} is not allowed (KMS_ALLOWED_ORIGINS)`,
      };
    }
    if (expected === undefined) return { allowed: true };
    const presented = presentedTokens(request);
    if (presented.length === 0) return { allowed: false, status: 401, reason: "no token (KMS_TOKEN is set)" };
    // Digests have equal lengths, so timingSafeEqual compares without leaking where the strings differ.
    if (presented.some((token) => timingSafeEqual(digest(token), expected))) return { allowed: true };
    return { allowed: false, status: 401, reason: "wrong token" };
  };
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function presentedTokens(request: IncomingMessage): string[] {
  const tokens: string[] = [];
  const authorization = header(request, "authorization");
  const bearer = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  if (bearer?.[1]) tokens.push(bearer[1]);
  const query = new URL(request.url ?? "/", "http://localhost").searchParams;
  for (const name of TOKEN_QUERY_PARAMETERS) for (const value of query.getAll(name)) if (value) tokens.push(value);
  // A handful is plenty for an honest client; hashing hundreds of guesses per request is not offered.
  return tokens.slice(0, MAX_PRESENTED_TOKENS);
}

/** `url` with the value of every token query parameter replaced by `***`, for logs. */
export function maskToken(url: string): string {
  const pattern = new RegExp(`([?&](?:${TOKEN_QUERY_PARAMETERS.join("|")})=)[^&#]*`, "gi");
  return url.replace(pattern, "$1***");
}

/** Whether `host` is a loopback address (listening there keeps other machines out). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}
