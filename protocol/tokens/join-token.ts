/**
 * Optional join tokens (JOIN_TOKEN_SECRET): the application's server signs
 * "user U may join room R until T"; the client passes it as `joinRoom`'s
 * `token` param (the original client's `setRpcParams({token})` does exactly
 * that). Not single-use: a user may leave and join again while it is valid.
 */
import * as z from "zod";
import { openToken, signToken } from "./signed-token.ts";

const joinClaims = z.object({ sub: z.string(), room: z.string(), exp: z.number().int() });

export async function signJoinToken(
  secret: string,
  grant: { user: string; room: string; ttlSeconds?: number; nowSeconds?: number },
): Promise<string> {
  const now = grant.nowSeconds ?? Math.floor(Date.now() / 1000);
  return signToken(secret, { sub: grant.user, room: grant.room, exp: now + (grant.ttlSeconds ?? 3600) });
}

/** null when the token lets `user` join `room` now; otherwise why not. */
export async function joinTokenProblem(
  secret: string,
  token: string | undefined,
  user: string,
  room: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string | null> {
  if (token === undefined) return "a join token is required (joinRoom param 'token')";
  const opened = await openToken(secret, token);
  if (!opened.ok) return `invalid join token: ${opened.reason}`;
  const parsed = joinClaims.safeParse(opened.claims);
  if (!parsed.success) return "invalid join token: malformed claims";
  const claims = parsed.data;
  if (claims.sub !== user || claims.room !== room) return `the join token is not for user '${user}' in room '${room}'`;
  if (claims.exp <= nowSeconds) return "the join token has expired";
  return null;
}
