/**
 * The worker's safety configuration, inside workerd: admin endpoints refuse
 * without ADMIN_TOKEN, short secrets fail every request loudly. The worker's
 * fetch is called with an altered copy of the test bindings.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index.ts";
import type { Env } from "../../worker/env.ts";

async function call(overrides: Partial<Record<keyof Env, string | undefined>>, path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`https://example.com${path}`, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("admin endpoints", () => {
  it("refuse with 503 and a clear JSON message while ADMIN_TOKEN is not configured", async () => {
    for (const unset of [undefined, ""]) {
      const response = await call({ ADMIN_TOKEN: unset }, "/close?room=anything", {
        headers: { Authorization: "Bearer anything" },
      });
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        error: "admin endpoints are disabled: ADMIN_TOKEN is not configured on the worker",
      });
    }
  });

  it("with ADMIN_TOKEN: 401 for a missing, wrong or non-bearer token; the original URL works with it", async () => {
    const path = "/close?room=no-such-room-here";
    expect((await call({}, path)).status).toBe(401);
    const wrong = await call({}, path, { headers: { Authorization: "Bearer test-admin-token-but-longer" } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: "an admin token is required: Authorization: Bearer <ADMIN_TOKEN>" });
    expect((await call({}, path, { headers: { Authorization: "test-admin-token" } })).status).toBe(401);
    const right = await call({}, path, { headers: { Authorization: "Bearer test-admin-token" } });
    expect(right.status).toBe(404); // authorised; the room does not exist
  });
});

describe("secrets too short to be safe", () => {
  for (const key of ["BRIDGE_SECRET", "JOIN_TOKEN_SECRET"] as const) {
    it(`a ${key} of 15 characters fails every request with 500`, async () => {
      const bad = { [key]: "x".repeat(15) };
      for (const [path, init] of [
        ["/health", {}],
        ["/getAllRooms", {}],
        ["/getClientConfig", {}],
        ["/close?room=r", { headers: { Authorization: "Bearer test-admin-token" } }],
        ["/room/r", { headers: { Upgrade: "websocket" } }],
        ["/room", { headers: { Upgrade: "websocket" } }],
        ["/bridge/control", { headers: { Upgrade: "websocket", Authorization: "Bearer x" } }],
      ] as const) {
        const response = await call(bad, path, init);
        expect(response.status, path).toBe(500);
        expect(await response.json()).toEqual({ error: "internal error" });
      }
      // 16 characters are enough.
      expect((await call({ [key]: "x".repeat(16) }, "/health")).status).toBe(200);
    });
  }

  it("a malformed limit fails every request too", async () => {
    for (const [key, value] of [
      ["MAX_PARTICIPANTS", "0"],
      ["RATE_LIMIT_BURST", "lots"],
      ["RATE_LIMIT_PER_SECOND", "-1"],
      ["CHAT_PER_SECOND", "0"],
      ["IDLE_SOCKET_SECONDS", "1.5"],
      ["MAX_PENDING_SOCKETS", ""],
      ["MAX_ICE_CANDIDATES", "x"],
      ["JOIN_TOKEN_MAX_TTL_SECONDS", "0"],
    ] as const) {
      expect((await call({ [key]: value }, "/getAllRooms")).status, key).toBe(500);
    }
  });

  it("webhooks: a receiver URL that is not http(s), a missing or short secret, a malformed max age fail every request", async () => {
    const secret = "a-webhook-secret-long-enough";
    for (const overrides of [
      { WEBHOOK_URLS: "ftp://example.com/hook", WEBHOOK_SECRET: secret },
      { WEBHOOK_URLS: "https://example.com/hook,not a url", WEBHOOK_SECRET: secret },
      { WEBHOOK_URLS: "https://example.com/hook" },
      { WEBHOOK_URLS: "https://example.com/hook", WEBHOOK_SECRET: "short" },
      { WEBHOOK_URLS: "https://example.com/hook", WEBHOOK_SECRET: secret, WEBHOOK_MAX_AGE_SECONDS: "10" },
    ]) {
      expect((await call(overrides, "/getAllRooms")).status, JSON.stringify(overrides)).toBe(500);
    }
    const fine = { WEBHOOK_URLS: " https://a.example/hook , https://b.example/hook ", WEBHOOK_SECRET: secret };
    expect((await call(fine, "/getAllRooms")).status).toBe(200);
  });

  it("STUN/TURN: URIs of the wrong scheme, TURN without (or with a short) secret fail every request; a good set is served", async () => {
    const secret = "a-turn-secret-long-enough";
    for (const overrides of [
      { STUN_URLS: "http://stun.example.com" },
      { TURN_URLS: "stun:turn.example.com:3478", TURN_SECRET: secret },
      { TURN_URLS: "turn:turn.example.com:3478" },
      { TURN_URLS: "turn:turn.example.com:3478", TURN_SECRET: "short" },
      { TURN_URLS: "turn:turn.example.com:3478", TURN_SECRET: secret, TURN_TTL_SECONDS: "5" },
    ]) {
      expect((await call(overrides, "/getAllRooms")).status, JSON.stringify(overrides)).toBe(500);
    }
    const fine = {
      STUN_URLS: "stun:127.0.0.1:3478",
      TURN_URLS: "turn:127.0.0.1:3478?transport=udp",
      TURN_SECRET: secret,
    };
    const config = (await (await call(fine, "/getClientConfig")).json()) as { iceServers: unknown };
    expect(config.iceServers).toEqual([
      { urls: ["stun:127.0.0.1:3478"] },
      {
        urls: ["turn:127.0.0.1:3478?transport=udp"],
        username: expect.stringMatching(/^\d+:client-config$/),
        credential: expect.any(String),
      },
    ]);
  });
});
