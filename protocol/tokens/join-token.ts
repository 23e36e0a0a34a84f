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

/** What a participant may do in the room; a token without a role grants `participant`. */
export const ROLES = ["participant", "moderator"] as const;
export type Role = (typeof ROLES)[number];

const joinClaims = z.object({
  pur: z.literal(JOIN_TOKEN_PURPOSE),
  sub: z.string(),
  room: z.string(),
  exp: z.number().int(),
  role: z.enum(ROLES).optional(),
});

export async function signJoinToken(
  secret: string,
  grant: { user: string; room: string; role?: Role; ttlSeconds?: number; nowSeconds?: number },
): Promise<string> {
  const now = grant.nowSeconds ?? Math.floor(Date.now() / 1000);
  return signToken(secret, {
    pur: JOIN_TOKEN_PURPOSE,
    sub: grant.user,
    room: grant.room,
    exp: now + (grant.ttlSeconds ?? 3600),
    ...(grant.role ? { role: grant.role } : {}),
  });
}

export type JoinGrant = { ok: true; role: Role } | { ok: false; problem: string };

/** What the token grants `user` in `room` now (its role), or why it grants nothing. Names are compared in Unicode NFC. */
export async function checkJoinToken(
  secret: string,
  token: string | undefined,
  user: string,
  room: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  maxTtlSeconds = DEFAULT_JOIN_TOKEN_MAX_TTL_SECONDS,
): Promise<JoinGrant> {
  if (token === undefined) return { ok: false, problem: "a join token is required (joinRoom param 'token')" };
  const opened = await openToken(secret, token);
  if (!opened.ok) return { ok: false, problem: `invalid join token: ${opened.reason}` };
  const raw = opened.claims;
  if (typeof raw === "object" && raw !== null && (raw as { pur?: unknown }).pur !== JOIN_TOKEN_PURPOSE)
    return { ok: false, problem: "invalid join token: not a join token (its purpose claim is not 'join')" };
  const parsed = joinClaims.safeParse(raw);
  if (!parsed.success) return { ok: false, problem: "invalid join token: malformed claims" };
  const claims = parsed.data;
  if (claims.sub.normalize("NFC") !== user.normalize("NFC") || claims.room.normalize("NFC") !== room.normalize("NFC"))
    return { ok: false, problem: `the join token is not for user '${user}' in room '${room}'` };
  if (claims.exp <= nowSeconds) return { ok: false, problem: "the join token has expired" };
  if (claims.exp > nowSeconds + maxTtlSeconds)
    return {
      ok: false,
      problem: `the join token lives too long: it expires in ${claims.exp - nowSeconds} s, at most ${maxTtlSeconds} s are allowed (JOIN_TOKEN_MAX_TTL_SECONDS)`,
    };
  return { ok: true, role: claims.role ?? "participant" };
}

/** null when the token lets `user` join `room` now; otherwise why not (checkJoinToken's problem). */
export async function joinTokenProblem(...args: Parameters<typeof checkJoinToken>): Promise<string | null> {
  const grant = await checkJoinToken(...args);
  return grant.ok ? null : grant.problem;
}
