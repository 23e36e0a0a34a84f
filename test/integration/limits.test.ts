/**
 * The worker's limits against the real worker under `wrangler dev`, with
 * small limits so a test reaches them: a flooding socket (2,000 requests as
 * fast as it can send them) gets -32000, then is closed with 1008, while the
 * room keeps serving the others; chat has its own lower rate; a full room;
 * unjoined sockets are capped per room and closed after IDLE_SOCKET_SECONDS
 * by the room's alarm; admin endpoints answer 503 without ADMIN_TOKEN.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JsonRpcCode, RoomCode } from "../../protocol/errors.ts";
import type { RoomTestClient } from "../helpers/room-client.ts";
import { parse, WorkerUnderTest } from "./support.ts";

let worker: WorkerUnderTest;
const IDLE_SOCKET_SECONDS = 15;

beforeAll(async () => {
  worker = await WorkerUnderTest.start({
    vars: {
      RATE_LIMIT_BURST: "100",
      RATE_LIMIT_PER_SECOND: "10",
      CHAT_PER_SECOND: "1",
      MAX_PARTICIPANTS: "3",
      MAX_PENDING_SOCKETS: "5",
      IDLE_SOCKET_SECONDS: String(IDLE_SOCKET_SECONDS),
      // No ADMIN_TOKEN: admin endpoints are off.
    },
  });
});

afterAll(async () => {
  await worker?.stop();
});

/** Waits (bounded) until the socket is closed; its close code and reason. */
async function closeOf(client: RoomTestClient, timeoutMs = 60_000): Promise<{ code: number; reason: string }> {
  return client.waitFor(() => client.closeEvent ?? undefined, timeoutMs, "the socket's close");
}

describe("admin endpoints without ADMIN_TOKEN", () => {
  it("GET /close answers 503 with a clear JSON message, token or not", async () => {
    for (const headers of [{}, { Authorization: "Bearer guess" }] as Record<string, string>[]) {
      const response = await worker.get("/close?room=any", headers);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        error: "admin endpoints are disabled: ADMIN_TOKEN is not configured on the worker",
      });
    }
  });
});

describe("per-socket rate limit", () => {
  it("a socket sending 2,000 requests as fast as it can gets -32000, then 1008; the room keeps serving the others", async () => {
    const room = "flood";
    const { client: flooder } = await worker.join(room, "flooder");
    const { client: bob } = await worker.join(room, "bob");
    await flooder.next("participantJoined");
    const mark = flooder.frames.length;
    // onIceCandidate for an endpoint it does not have: each is answered (303) until the limit.
    const frame = (id: number) =>
      JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "onIceCandidate",
        params: { endpointName: "nobody", candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdpMLineIndex: 0 },
      });
    for (let id = 1; id <= 2000; id++) flooder.sendRaw(frame(id));
    // The others are served meanwhile.
    expect(await bob.request("ping")).toMatchObject({ value: "pong" });
    const chat = await bob.request("sendMessage", { message: "still here", userMessage: "bob", roomMessage: room });
    expect(chat).toHaveProperty("sessionId");

    const closed = await closeOf(flooder);
    expect(closed).toEqual({ code: 1008, reason: "rate limit exceeded" });
    const answers = flooder.frames.slice(mark).map(parse);
    const limited = answers.filter(
      (f) => (f.error as { code?: number } | undefined)?.code === JsonRpcCode.RATE_LIMITED,
    );
    const served = answers.filter((f) => (f.error as { code?: number } | undefined)?.code === RoomCode.MEDIA_ENDPOINT);
    expect(served.length).toBeGreaterThanOrEqual(100); // the burst
    expect(served.length).toBeLessThan(2000);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]).toMatchObject({
      error: { code: -32000, message: "Rate limited: this connection sends requests too fast" },
    });
    // The socket was closed before all 2,000 were answered.
    expect(answers.length).toBeLessThan(2000);

    // The room is intact: bob still chats, a newcomer sees both seats (the flooder's waits out its window).
    const again = await bob.request("sendMessage", { message: "after", userMessage: "bob", roomMessage: room });
    expect(again).toHaveProperty("sessionId");
    expect(await worker.roster(room)).toEqual(["bob", "flooder"]);
  });

  it("the ping method is exempt", async () => {
    const { client } = await worker.join("pings", "pinger");
    const answers = await Promise.all(Array.from({ length: 300 }, () => client.request("ping")));
    expect(answers.every((a) => (a as { value?: string }).value === "pong")).toBe(true);
    expect(client.closeEvent).toBeNull();
  });

  it("chat has its own lower rate: past its burst, sendMessage gets -32000 and reaches nobody", async () => {
    const room = "chatty";
    const { client: carol } = await worker.join(room, "carol");
    const { client: dan } = await worker.join(room, "dan");
    const outcomes = await Promise.allSettled(
      Array.from({ length: 15 }, (_, i) =>
        carol.request("sendMessage", { message: `m${i}`, userMessage: "carol", roomMessage: room }),
      ),
    );
    const accepted = outcomes.filter((o) => o.status === "fulfilled").length;
    const refused = outcomes.filter((o) => o.status === "rejected").map((o) => (o as PromiseRejectedResult).reason);
    expect(accepted).toBeGreaterThanOrEqual(10); // the chat burst at CHAT_PER_SECOND = 1
    expect(refused.length).toBeGreaterThan(0);
    for (const error of refused) {
      expect(error).toMatchObject({ code: JsonRpcCode.RATE_LIMITED });
      expect((error as Error).message).toMatch(/chat messages too fast/);
    }
    // Other requests still pass, and dan heard exactly the accepted messages.
    expect(await carol.request("ping")).toMatchObject({ value: "pong" });
    const ping = await dan.request("ping");
    expect(ping).toMatchObject({ value: "pong" });
    for (let i = 0; i < accepted; i++) await dan.next("sendMessage");
    expect(dan.count("sendMessage")).toBe(0);
  });
});

describe("room and socket limits", () => {
  it("MAX_PARTICIPANTS: the next join gets 201 saying the room is full", async () => {
    const room = "small";
    for (const user of ["u1", "u2", "u3"]) await worker.join(room, user);
    const late = await worker.open(`/room/${room}`);
    const error = await late.requestError("joinRoom", { user: "u4", room });
    expect(error.code).toBe(RoomCode.ROOM_GENERIC);
    expect(error.message).toBe("Room 'small' is full (at most 3 participants)");
    // Through the legacy URL too.
    const legacy = await worker.open("/room");
    expect((await legacy.requestError("joinRoom", { user: "u5", room })).code).toBe(RoomCode.ROOM_GENERIC);
  });

  it("MAX_PENDING_SOCKETS: the next unjoined socket is closed with 1008 and a reason; a join frees a place", async () => {
    const room = "pending-cap";
    const waiting: RoomTestClient[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await worker.open(`/room/${room}`);
      expect(await c.request("ping")).toMatchObject({ value: "pong" });
      waiting.push(c);
    }
    const sixth = await worker.open(`/room/${room}`);
    expect(await closeOf(sixth)).toEqual({
      code: 1008,
      reason: "too many connections waiting to join room 'pending-cap' (at most 5); try again later",
    });
    await waiting[0]?.request("joinRoom", { user: "first", room });
    const seventh = await worker.open(`/room/${room}`);
    expect(await seventh.request("ping")).toMatchObject({ value: "pong" });
    for (const c of [...waiting, seventh]) c.terminate();
  });

  it("IDLE_SOCKET_SECONDS: a socket that never joins is closed by the room's alarm; a joined one is not", async () => {
    const room = "idle";
    const { client: member } = await worker.join(room, "member");
    const idle = await worker.open(`/room/${room}`);
    expect(await idle.request("ping")).toMatchObject({ value: "pong" });
    const refused = await idle.requestError("joinRoom", { user: "member", room }); // a failed join is no join
    expect(refused.code).toBe(RoomCode.EXISTING_USER_IN_ROOM);
    const closed = await closeOf(idle, (IDLE_SOCKET_SECONDS + 45) * 1000);
    expect(closed).toEqual({ code: 1008, reason: `no joinRoom or connect within ${IDLE_SOCKET_SECONDS} s` });
    expect(await member.request("ping")).toMatchObject({ value: "pong" });
    expect(member.closeEvent).toBeNull();
  }, 120_000);
});
