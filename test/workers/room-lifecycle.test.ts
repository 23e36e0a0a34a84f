/**
 * A room object's life from nothing to nothing (README "Restarts and
 * storage"):
 * - after a restart that lost every socket (a deploy, an eviction, a crash),
 *   a seat whose socket is gone enters the reconnection window, as if its
 *   socket had closed, and is freed after it;
 * - an object reached by a stray upgrade or by `/close` for a room nobody
 *   used stores nothing;
 * - a room that empties deletes its storage once the directory no longer
 *   lists it, and works again from scratch afterwards.
 */
import { env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RoomObject } from "../../worker/do/room-object.ts";
import { Client } from "./ws-client.ts";

function roomStub(room: string) {
  return env.ROOM.get(env.ROOM.idFromName(room));
}

/** What the object stores: its SQLite tables (Cloudflare's own `_cf_` tables aside) and its alarm. */
function storedThings(room: string): Promise<{ tables: string[]; alarm: number | null }> {
  return runInDurableObject(roomStub(room), async (_instance: RoomObject, state) => ({
    tables: state.storage.sql
      .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'`)
      .toArray()
      .map((r) => r.name),
    alarm: await state.storage.getAlarm(),
  }));
}

/** Polls (bounded) until `check` holds; fails with `what` otherwise. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) expect.fail(`${what}; last seen: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function rooms(): Promise<string[]> {
  return (await SELF.fetch("https://example.com/getAllRooms")).json();
}

const ADMIN = { headers: { Authorization: "Bearer test-admin-token" } };

describe("a restart that lost every socket leaves no ghosts", () => {
  it("a seat with no socket after a restart waits out the window, then is freed and its name can join again", async () => {
    const alice = await Client.open("/room/life-1");
    await alice.request("joinRoom", { user: "alice", room: "life-1" });
    const stub = roomStub("life-1");
    // bob's seat as a restart leaves it: a row that says connected, and no socket anywhere.
    await runInDurableObject(stub, (_instance: RoomObject, state) => {
      const bob = {
        v: 1,
        session: "life-1_ghost-bob",
        user: "bob",
        publish: "none",
        loopback: false,
        dataChannels: false,
        subscriptions: {},
        attributes: {},
        disconnectedAt: null,
      };
      state.storage.sql.exec(
        "INSERT INTO participants (session, data) VALUES (?, ?)",
        bob.session,
        JSON.stringify(bob),
      );
    });
    await evictDurableObject(stub);

    // The new instance counts bob as dropped at once; his seat is held for the window.
    const carol = await Client.open("/room/life-1");
    const joined = await carol.request("joinRoom", { user: "carol", room: "life-1" });
    expect(joined.result?.value).toEqual([{ id: "alice" }, { id: "bob" }]);
    const marked = await runInDurableObject(stub, (_instance: RoomObject, state) =>
      state.storage.sql
        .exec<{ data: string }>("SELECT data FROM participants WHERE session = 'life-1_ghost-bob'")
        .toArray()
        .map((r) => (JSON.parse(r.data) as { disconnectedAt: number | null }).disconnectedAt),
    );
    expect(marked).toEqual([expect.any(Number)]);

    // After the window (RECONNECT_WINDOW_SECONDS is 5 here) everyone is told, and "bob" is free.
    const left = await alice.waitFor((f) => f.method === "participantLeft", "participantLeft for bob", 40_000);
    expect(left.params).toEqual({ name: "bob" });
    await carol.waitFor((f) => f.method === "participantLeft", "participantLeft for bob (carol)", 40_000);
    const bob = await Client.open("/room/life-1");
    expect((await bob.request("joinRoom", { user: "bob", room: "life-1" })).result?.value).toEqual([
      { id: "alice" },
      { id: "carol" },
    ]);
    for (const c of [alice, bob, carol]) c.ws.close();
  });

  it("a seat whose socket survived (hibernation) is untouched by the restart check", async () => {
    const alice = await Client.open("/room/life-2");
    const session = (await alice.request("joinRoom", { user: "alice", room: "life-2" })).result?.sessionId;
    await evictDurableObject(roomStub("life-2"));
    const bob = await Client.open("/room/life-2");
    await bob.request("joinRoom", { user: "bob", room: "life-2" });
    const disconnected = await runInDurableObject(roomStub("life-2"), (_instance: RoomObject, state) =>
      state.storage.sql
        .exec<{ data: string }>("SELECT data FROM participants")
        .toArray()
        .map((r) => JSON.parse(r.data) as { user: string; disconnectedAt: number | null })
        .filter((p) => p.disconnectedAt !== null),
    );
    expect(disconnected).toEqual([]);
    const chat = await alice.request("sendMessage", {
      message: "still here",
      userMessage: "alice",
      roomMessage: "life-2",
    });
    expect(chat.result).toEqual({ sessionId: session });
    for (const c of [alice, bob]) c.ws.close();
  });
});

describe("storage follows use", () => {
  it("/close for a room nobody used answers 404 and stores nothing", async () => {
    const response = await SELF.fetch("https://example.com/close?room=life-never-used", ADMIN);
    expect(response.status).toBe(404);
    expect(await storedThings("life-never-used")).toEqual({ tables: [], alarm: null });
  });

  it("a stray upgrade that never joins stores nothing once its socket is gone", async () => {
    const stray = await Client.open("/room/life-stray");
    // While it waits to join, only its idle deadline is kept (an alarm), no table.
    expect((await storedThings("life-stray")).tables).toEqual([]);
    stray.ws.close(1000, "never mind");
    await eventually(
      () => storedThings("life-stray"),
      (s) => s.tables.length === 0 && s.alarm === null,
      "the stray socket's object kept something",
    );
    expect(await rooms()).not.toContain("life-stray");
  });

  it("a room whose last user leaves deletes its storage, and starts afresh on the next join", async () => {
    const alice = await Client.open("/room/life-3");
    await alice.request("joinRoom", { user: "alice", room: "life-3" });
    expect((await storedThings("life-3")).tables.sort()).toEqual(["meta", "participants", "pending"]);
    expect(await rooms()).toContain("life-3");
    await alice.request("leaveRoom");
    await eventually(
      () => storedThings("life-3"),
      (s) => s.tables.length === 0 && s.alarm === null,
      "the emptied room kept its storage",
    );
    expect(await rooms()).not.toContain("life-3");

    // The same object serves the room again from nothing.
    const bob = await Client.open("/room/life-3");
    expect((await bob.request("joinRoom", { user: "bob", room: "life-3" })).result?.value).toEqual([]);
    await eventually(rooms, (r) => r.includes("life-3"), "the room was not listed again");
    const rows = await runInDurableObject(roomStub("life-3"), (_instance: RoomObject, state) =>
      state.storage.sql
        .exec<{ data: string }>("SELECT data FROM participants")
        .toArray()
        .map((r) => (JSON.parse(r.data) as { user: string }).user),
    );
    expect(rows).toEqual(["bob"]);
    bob.ws.close();
  });

  it("a room whose last seat expires after the window deletes its storage", async () => {
    const alice = await Client.open("/room/life-4");
    await alice.request("joinRoom", { user: "alice", room: "life-4" });
    alice.ws.close(1001, "network gone");
    // Held for the window first (storage kept), then freed with everything else.
    await eventually(
      () => storedThings("life-4"),
      (s) => s.tables.length === 0 && s.alarm === null,
      "the room kept its storage after the last seat expired",
    );
    expect(await rooms()).not.toContain("life-4");
  });
});
