/**
 * The admin endpoints' gate (`/close`, `/api/rooms`, `/api/recordings`):
 * they refuse unless ADMIN_TOKEN is configured (503), and need
 * `Authorization: Bearer <ADMIN_TOKEN>` (401 otherwise; compared in constant time).
 */
import type { Context } from "hono";
import { bearerToken, constantTimeEqual } from "../protocol/tokens/constant-time.ts";
import { settingsOf, type Env } from "./env.ts";

export function adminRefusal(c: Context<{ Bindings: Env }>): Response | null {
  const { adminToken } = settingsOf(c.env);
  if (adminToken === null) {
    return c.json({ error: "admin endpoints are disabled: ADMIN_TOKEN is not configured on the worker" }, 503);
  }
  const given = bearerToken(c.req.header("Authorization"));
  if (given === null || !constantTimeEqual(given, adminToken)) {
    return c.json({ error: "an admin token is required: Authorization: Bearer <ADMIN_TOKEN>" }, 401);
  }
  return null;
}
