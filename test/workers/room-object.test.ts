/**
 * The room Durable Object inside workerd, reached through the worker's real
 * routes and real WebSocket upgrades: hibernation and eviction must lose
 * nothing, the reconnection window is alarm-driven, REST routes work.
 */
import { env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RoomObject } from "../../worker/do/room-object.ts";
import { Client } from "./ws-client.ts";

function roomStub(room: string) {
  return env.ROOM.get(env.ROOM.idFromName(room));
}

/** The roster as the object stored it (its rows in SQLite). */
function storedRoster(room: string) {
  return runInDurableObject(roomStub(room), (_instance: RoomObject, state) =>
    state.storage.sql
      .exec<{ data: string }>("SELECT data FROM participants")
      .toArray()
      .map((r) => JSON.parse(r.data) as { user: string; disconnectedAt: number | null }),
  );
}

describe("room Durable Object", () => {
  it("joins two users over real upgrades and tells the first one about the second", async () => {
    const alice = await Client.open("/room/w1");
    const joined = await alice.request("joinRoom", { user: "alice", room: "w1" });
    expect(joined.result).toMatchObject({ value: [] });
    const bob = await Client.open("/room/w1");
    const bobJoined = await bob.request("joinRoom", { user: "bob", room: "w1" });
    expect(bobJoined.result?.value).toEqual([{ id: "alice" }]);
    const note = await alice.waitFor((f) => f.method === "participantJoined", "participantJoined");
    expect(note.params).toEqual({ id: "bob" });
    alice.ws.close();
    bob.ws.close();
  });

  it("keeps the roster and the sockets' identities across eviction (hibernation)", async () => {
    const alice = await Client.open("/room/w2");
    const aliceSession = (await alice.request("joinRoom", { user: "alice", room: "w2" })).result?.sessionId;
    const bob = await Client.open("/room/w2");
    await bob.request("joinRoom", { user: "bob", room: "w2" });

    const stub = roomStub("w2");
    await evictDurableObject(stub);

    // The object comes back from SQLite and the sockets' attachments.
    expect((await storedRoster("w2")).length).toBe(2);
    const chat = await alice.request("sendMessage", { message: "still here", userMessage: "alice", roomMessage: "w2" });
    expect(chat.result).toEqual({ sessionId: aliceSession });
    const heard = await bob.waitFor((f) => f.method === "sendMessage", "the chat message");
    expect(heard.params).toEqual({ room: "w2", user: "alice", message: "still here" });

    const carol = await Client.open("/room/w2");
    const carolJoined = await carol.request("joinRoom", { user: "carol", room: "w2" });
    expect(carolJoined.result?.value).toEqual([{ id: "alice" }, { id: "bob" }]);
    for (const c of [alice, bob, carol]) c.ws.close();
  });

  it("stores the roster in SQLite rows", async () => {
    const alice = await Client.open("/room/w3");
    await alice.request("joinRoom", { user: "alice", room: "w3" });
    const rows = await runInDurableObject(roomStub("w3"), (_instance: RoomObject, state) =>
      state.storage.sql
        .exec<{ data: string }>("SELECT data FROM participants")
        .toArray()
        .map((r) => JSON.parse(r.data) as { user: string }),
    );
    expect(rows.map((r) => r.user)).toEqual(["alice"]);
    alice.ws.close();
  });

  it("reads rows and socket attachments written before they carried a version (v0)", async () => {
    const alice = await Client.open("/room/w9");
    const aliceSession = (await alice.request("joinRoom", { user: "alice", room: "w9" })).result?.sessionId;
    const stub = roomStub("w9");
    await runInDurableObject(stub, (_instance: RoomObject, state) => {
      // Exactly what the code before versioning wrote: no `v`.
      const bob = { session: "w9_old-bob", user: "bob", publish: "none", loopback: false, dataChannels: false };
      Object.assign(bob, { subscriptions: {}, attributes: {}, disconnectedAt: null });
      state.storage.sql.exec(
        "INSERT INTO participants (session, data) VALUES (?, ?)",
        bob.session,
        JSON.stringify(bob),
      );
      const pending = { session: "w9_old-bob", id: 7, op: "publish" };
      state.storage.sql.exec("INSERT INTO pending (ref, data) VALUES (?, ?)", "w9_old-bob#1", JSON.stringify(pending));
      for (const ws of state.getWebSockets()) ws.serializeAttachment({ role: "client", session: aliceSession });
    });
    await evictDurableObject(stub);

    // alice's socket is still hers (old attachment), bob's seat is back (old row).
    const chat = await alice.request("sendMessage", { message: "hi", userMessage: "alice", roomMessage: "w9" });
    expect(chat.result).toEqual({ sessionId: aliceSession });
    const carol = await Client.open("/room/w9");
    expect((await carol.request("joinRoom", { user: "carol", room: "w9" })).result?.value).toEqual([
      { id: "alice" },
      { id: "bob" },
    ]);
    const bob = await Client.open("/room/w9");
    expect((await bob.request("connect", { sessionId: "w9_old-bob" })).result).toMatchObject({
      sessionId: "w9_old-bob",
    });
    // Rows written from now on carry the version.
    await bob.request("sendMessage", { message: "back", userMessage: "bob", roomMessage: "w9" });
    const versions = await runInDurableObject(stub, (_instance: RoomObject, state) =>
      state.storage.sql
        .exec<{ data: string }>("SELECT data FROM participants")
        .toArray()
        .map((r) => (JSON.parse(r.data) as { v?: number }).v),
    );
    expect(versions).toContain(2);
    for (const c of [alice, bob, carol]) c.ws.close();
  });

  it("holds a dropped user's seat until the alarm after the window, then tells the others", async () => {
    const alice = await Client.open("/room/w4");
    await alice.request("joinRoom", { user: "alice", room: "w4" });
    const bob = await Client.open("/room/w4");
    await bob.request("joinRoom", { user: "bob", room: "w4" });
    bob.ws.close(1001, "going away");
    // Wait until the object has seen the close (the seat is marked, not freed); fail if it never does.
    let marked = false;
    for (const deadline = Date.now() + 20_000; !marked; ) {
      marked = (await storedRoster("w4")).some((p) => p.user === "bob" && p.disconnectedAt !== null);
      if (!marked && Date.now() > deadline) expect.fail("the room never marked bob's seat as dropped");
      if (!marked) await new Promise((r) => setTimeout(r, 20));
    }
    expect(alice.frames.some((f) => f.method === "participantLeft")).toBe(false);
    // The room's own alarm ends the window (RECONNECT_WINDOW_SECONDS, 5 s in this environment).
    const left = await alice.waitFor((f) => f.method === "participantLeft", "participantLeft", 40_000);
    expect(left.params).toEqual({ name: "bob" });
    expect((await storedRoster("w4")).map((p) => p.user)).toEqual(["alice"]);
    alice.ws.close();
  });

  it("resumes a session on a new socket with connect {sessionId}", async () => {
    const alice = await Client.open("/room/w5");
    await alice.request("joinRoom", { user: "alice", room: "w5" });
    const bob = await Client.open("/room/w5");
    const session = (await bob.request("joinRoom", { user: "bob", room: "w5" })).result?.sessionId;
    bob.ws.close(1001, "network change");
    const bob2 = await Client.open("/room/w5");
    const resumed = await bob2.request("connect", { sessionId: session });
    expect(resumed.result).toEqual({ value: [{ id: "alice" }], sessionId: session });
    const chat = await bob2.request("sendMessage", { message: "back", userMessage: "bob", roomMessage: "w5" });
    expect(chat.result).toEqual({ sessionId: session });
    await alice.waitFor((f) => f.method === "sendMessage" && f.params?.message === "back", "bob's message");
    expect(alice.frames.some((f) => f.method === "participantLeft")).toBe(false);
    alice.ws.close();
    bob2.ws.close();
  });

  it("leaveRoom answers, then closes the socket; the last one out removes the room from the directory", async () => {
    const alice = await Client.open("/room/w6");
    const aliceSession = (await alice.request("joinRoom", { user: "alice", room: "w6" })).result?.sessionId;
    expect(aliceSession).toEqual(expect.any(String));
    expect(await (await SELF.fetch("https://example.com/getAllRooms")).json()).toContain("w6");
    const left = await alice.request("leaveRoom");
    expect(left.result).toEqual({ sessionId: aliceSession });
    expect(await alice.closed()).toBe(1000);
    // The directory update is asynchronous (waitUntil): poll briefly.
    let rooms: string[] = [];
    for (let i = 0; i < 50; i++) {
      rooms = await (await SELF.fetch("https://example.com/getAllRooms")).json();
      if (!rooms.includes("w6")) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(rooms).not.toContain("w6");
  });

  it("answers bad frames and keeps the socket usable", async () => {
    const alice = await Client.open("/room/w7");
    alice.ws.send("{not json");
    expect((await alice.waitFor((f) => f.error?.code === -32700, "parse error")).id).toBeNull();
    alice.ws.send("[]");
    await alice.waitFor((f) => f.error?.code === -32600, "invalid request");
    const bad = await alice.request("joinRoom", { user: 42, room: "w7" });
    expect(bad.error?.code).toBe(-32602);
    expect(bad.error?.message).toContain("user");
    const ok = await alice.request("joinRoom", { user: "alice", room: "w7" });
    expect(ok.result?.value).toEqual([]);
    const media = await alice.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
    expect(media.error).toEqual({ code: 301, message: "no media bridge attached" });
    alice.ws.close();
  });
});

describe("REST routes", () => {
  it("/close needs the admin token, then evicts everyone", async () => {
    const alice = await Client.open("/room/w8");
    await alice.request("joinRoom", { user: "alice", room: "w8" });
    expect((await SELF.fetch("https://example.com/close?room=w8")).status).toBe(401);
    const wrong = await SELF.fetch("https://example.com/close?room=w8", { headers: { Authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const auth = { headers: { Authorization: "Bearer test-admin-token" } };
    expect((await SELF.fetch("https://example.com/close?room=unknown-room", auth)).status).toBe(404);
    expect((await SELF.fetch("https://example.com/close", auth)).status).toBe(400);
    const closed = await SELF.fetch("https://example.com/close?room=w8", auth);
    expect(closed.status).toBe(200);
    await alice.waitFor((f) => f.method === "roomClosed", "roomClosed");
    const methods = alice.frames.filter((f) => f.method).map((f) => f.method);
    expect(methods).toEqual(["participantEvicted", "roomClosed"]);
    expect(await alice.closed()).toBe(1000);
  });

  it("serves the client configuration and health", async () => {
    expect(await (await SELF.fetch("https://example.com/getClientConfig")).json()).toEqual({
      loopbackRemote: false,
      loopbackAndLocal: false,
      filters: [],
      iceServers: [],
    });
    const health = await SELF.fetch("https://example.com/health");
    expect(health.status).toBe(200);
    // No bridge ever connects in this file.
    expect(await health.json()).toEqual({ status: "ok", bridges: 0 });
  });

  it("rejects bad room URLs", async () => {
    expect((await SELF.fetch("https://example.com/room/x")).status).toBe(426);
    const tooLong = "x".repeat(200);
    expect(
      (await SELF.fetch(`https://example.com/room/${tooLong}`, { headers: { Upgrade: "websocket" } })).status,
    ).toBe(400);
  });
});

describe("heartbeat", () => {
  it("answers the client library's heartbeat frame with the exact pong frame, joined or not", async () => {
    const { HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE } = await import("../../protocol/room.ts");
    const raw: string[] = [];
    const response = await SELF.fetch("https://example.com/room/hb", { headers: { Upgrade: "websocket" } });
    const ws = response.webSocket;
    if (!ws) throw new Error("no socket");
    ws.accept();
    ws.addEventListener("message", (event) => raw.push(event.data as string));
    ws.send(HEARTBEAT_REQUEST);
    for (let i = 0; i < 100 && raw.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(raw).toEqual([HEARTBEAT_RESPONSE]);
    ws.close();
  });
});
