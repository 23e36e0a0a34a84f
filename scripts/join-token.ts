/**
 * `npm run join-token -- <room> <user> [moderator] [--ttl <seconds>] [--url <worker url>]`:
 * signs a join token with JOIN_TOKEN_SECRET (read from the environment) and
 * prints it with a link that opens the demo with it (room, user and token in
 * the query). What an application's own server does for each of its users;
 * this is for trying it locally and for operators.
 */
import { name } from "../protocol/room.ts";
import { signJoinToken } from "../protocol/tokens/join-token.ts";

const MIN_SECRET_LENGTH = 16;
const usage =
  "usage: JOIN_TOKEN_SECRET=<the worker's secret> npm run join-token -- <room> <user> [moderator] [--ttl <seconds>] [--url <worker url>]\n";

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}`);
  process.exit(2);
}

const args = process.argv.slice(2);
const positional: string[] = [];
let ttlSeconds = 3600;
let url = "http://127.0.0.1:8787";
for (let i = 0; i < args.length; i++) {
  const arg = args[i] as string;
  if (arg === "--ttl") {
    ttlSeconds = Number(args[++i]);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) fail("--ttl takes a whole number of seconds");
  } else if (arg === "--url") {
    url = args[++i] ?? fail("--url takes the worker's URL");
  } else positional.push(arg);
}
const [room, user, role, ...rest] = positional;
if (!room || !user || rest.length > 0 || (role !== undefined && role !== "moderator")) fail("wrong arguments");
for (const [what, value] of [
  ["room", room],
  ["user", user],
] as const) {
  const checked = name.safeParse(value);
  if (!checked.success) fail(`invalid ${what} name: ${checked.error.issues[0]?.message ?? "invalid"}`);
}
const secret = process.env.JOIN_TOKEN_SECRET;
if (!secret || secret.length < MIN_SECRET_LENGTH) {
  fail(`JOIN_TOKEN_SECRET must be set in the environment (at least ${MIN_SECRET_LENGTH} characters)`);
}
const token = await signJoinToken(secret, { room, user, ttlSeconds, ...(role ? { role } : {}) });
const link = new URL(url);
link.search = new URLSearchParams({ room, user, token }).toString();
process.stdout.write(`${token}\n${link.toString()}\n`);
