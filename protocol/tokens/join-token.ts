/**
 * Optional join tokens (JOIN_TOKEN_SECRET): the application's server signs
 * "user U may join room R until T"; the client passes it as `joinRoom`'s
 * `token` param (the original client's `setRpcParams({token})` does exactly
 * that). Not single-use: a user may leave and join again while it is valid.
 *
 * The claims carry `pur: "join"`, so no other token signed with the same
 * secret (a bridge token) is ever accepted as a join token, and the worker
 * refuses a token that expires further ahead than JOIN_TOKEN_MAX_TTL_SECONDS.
 */
import * as z from "zod";
import { openToken, signToken } from "./signed-token.ts";

/** The `pur` claim of a join token. */
export const JOIN_TOKEN_PURPOSE = "join";

/** JOIN_TOKEN_MAX_TTL_SECONDS when unset: a join token may expire at most a day ahead. */
export const DEFAULT_JOIN_TOKEN_MAX_TTL_SECONDS = 86_400;

const joinClaims = z.object({
  pur: z.literal(JOIN_TOKEN_PURPOSE),
  sub: z.string(),
  room: z.string(),
  exp: z.number().int(),
});

export async function signJoinToken(
  secret: string,
  grant: { user: string; room: string; ttlSeconds?: number; nowSeconds?: number },
): Promise<string> {
  const now = grant.nowSeconds ?? Math.floor(Date.now() / 1000);
  return signToken(secret, {
    pur: JOIN_TOKEN_PURPOSE,
    sub: grant.user,
    room: grant.room,
    exp: now + (grant.ttlSeconds ?? 3600),
  });
}

/** null when the token lets `user` join `room` now; otherwise why not. Names are compared in Unicode NFC. */
export async function joinTokenProblem(
  secret: string,
  token: string | undefined,
  user: string,
  room: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  maxTtlSeconds = DEFAULT_JOIN_TOKEN_MAX_TTL_SECONDS,
): Promise<string | null> {
  if (token === undefined) return "a join token is required (joinRoom param 'token')";
  const opened = await openToken(secret, token);
  if (!opened.ok) return `invalid join token: ${opened.reason}`;
  const raw = opened.claims;
  if (typeof raw === "object" && raw !== null && (raw as { pur?: unknown }).pur !== JOIN_TOKEN_PURPOSE)
    return "invalid join token: not a join token (its purpose claim is not 'join')";
  const parsed = joinClaims.safeParse(raw);
  if (!parsed.success) return "invalid join token: malformed claims";
  const claims = parsed.data;
  if (claims.sub.normalize("NFC") !== user.normalize("NFC") || claims.room.normalize("NFC") !== room.normalize("NFC"))
    return `the join token is not for user '${user}' in room '${room}'`;
  if (claims.exp <= nowSeconds) return "the join token has expired";
  if (claims.exp > nowSeconds + maxTtlSeconds)
    return `the join token lives too long: it expires in ${claims.exp - nowSeconds} s, at most ${maxTtlSeconds} s are allowed (JOIN_TOKEN_MAX_TTL_SECONDS)`;
  return null;
}
