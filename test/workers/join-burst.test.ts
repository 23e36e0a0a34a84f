/**
 * A join answers before its roster row is committed, and the others'
 * participantJoined follows the commit; a new frame no longer flushes the
 * held ones first (docs/architecture.md, Signalling performance). What must
 * still hold: every socket sees the room in order (a member is announced
 * before anything it says reaches that socket), every seat is stored, and
 * a restart (eviction) keeps them all.
 */
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RoomObject } from "../../worker/do/room-object.ts";
import { Client, type Frame } from "./ws-client.ts";

const N = 8;

function storedUsers(room: string): Promise<string[]> {
  return runInDurableObject(env.ROOM.get(env.ROOM.idFromName(room)), (_instance: RoomObject, state) =>
    state.storage.sql
      .exec<{ data: string }>("SELECT data FROM participants")
      .toArray()
      .map((r) => (JSON.parse(r.data) as { user: string }).user)
      .sort(),
  );
}

/** Users this socket knows when each frame arrives; throws at a chat from someone it was never told of. */
function checkOrder(self: string, frames: Frame[]): string[] {
  const known = new Set<string>([self]);
  for (const f of frames) {
    if (f.method === undefined && Array.isArray(f.result?.value)) {
      for (const peer of f.result.value as Array<{ id: string }>) known.add(peer.id);
    } else if (f.method === "participantJoined") {
      known.add((f.params as { id: string }).id);
    } else if (f.method === "sendMessage") {
      const from = (f.params as { user: string }).user;
      if (!known.has(from)) throw new Error(`${self} got a chat from ${from} before hearing that ${from} joined`);
    }
  }
  return [...known].sort();
}

describe("a burst of joins", () => {
  it("keeps each socket's order (joined before chatting), stores every seat, and keeps them across a restart", async () => {
    const room = "burst-1";
    const users = Array.from({ length: N }, (_, i) => `u${i}`);
    const clients = await Promise.all(users.map(() => Client.open(`/room/${room}`)));
    // All joins at once, each followed at once by a chat (before its answer, so before its commit).
    for (const [i, c] of clients.entries()) {
      c.ws.send(JSON.stringify({ jsonrpc: "2.0", method: "joinRoom", params: { user: users[i], room }, id: 1 }));
      c.notify("sendMessage", { message: `hi from ${users[i]}`, userMessage: users[i], roomMessage: room });
    }
    for (const c of clients) expect((await c.waitFor((f) => f.id === 1, "the join's answer")).error).toBeUndefined();
    // Everyone hears every chat (its own included), and knew each sender first.
    for (const [i, c] of clients.entries()) {
      for (const from of users) {
        await c.waitFor(
          (f) => f.method === "sendMessage" && (f.params as { user: string }).user === from,
          `${users[i]} hears ${from}`,
        );
      }
      expect(checkOrder(users[i] ?? "", c.frames)).toEqual([...users].sort());
    }
    expect(await storedUsers(room)).toEqual([...users].sort());

    // A restart keeps every seat: a newcomer is told of all of them.
    await evictDurableObject(env.ROOM.get(env.ROOM.idFromName(room)));
    const late = await Client.open(`/room/${room}`);
    const joined = await late.request("joinRoom", { user: "late", room });
    expect(((joined.result?.value ?? []) as Array<{ id: string }>).map((p) => p.id).sort()).toEqual([...users].sort());
    for (const c of [...clients, late]) c.ws.close();
  });
});
