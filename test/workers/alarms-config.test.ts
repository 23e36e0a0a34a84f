/**
 * The alarm-driven reconnection window and configuration failures, inside
 * workerd:
 * - two users drop at different times: the alarm expires the first seat,
 *   then is armed again for the second (nobody runs it by hand here);
 * - a seat expires after the object was evicted (the alarm wakes a new
 *   instance, which reads the roster from SQLite);
 * - an invalid AUTH_REGEX fails every request with 500 (README: "a
 *   misconfiguration is loud");
 * - AUTH_REGEX is anchored at both ends like Java's String.matches.
 *
 * Every wait follows the room's own alarm, bounded by the configured
 * RECONNECT_WINDOW_SECONDS plus a generous slack; no test needs the window to
 * be short, and none fails when the machine is slow and the window ends early.
 */
import {
  createExecutionContext,
  env,
  evictDurableObject,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { type Env, settingsOf } from "../../worker/env.ts";
import worker from "../../worker/index.ts";
import type { RoomObject } from "../../worker/do/room-object.ts";
import {
  closeAll,
  join,
  reconnectWindowMs,
  roomStub,
  SLACK_MS,
  type StoredParticipant,
  storedRoster,
  until,
} from "./fake-bridge.ts";
import type { Client } from "./ws-client.ts";

const TEST = { timeout: 3 * reconnectWindowMs() + 4 * SLACK_MS };

afterEach(closeAll);

/** Waits until the room has seen `user`'s socket close: its row marked dropped, or (slow machine) already expired. */
function dropSeen(room: string, user: string): Promise<StoredParticipant | null> {
  return until(async () => {
    const row = (await storedRoster(room)).find((p) => p.user === user);
    if (row === undefined) return null;
    return row.disconnectedAt !== null ? row : undefined;
  }, `the room ${room} to see ${user}'s socket close`);
}

function leftNames(client: Client): string[] {
  return client.frames.filter((f) => f.method === "participantLeft").map((f) => String(f.params?.name));
}

/** Waits, following the room's own alarms (never run by hand), for `names` to have left. */
function waitForLeft(client: Client, names: string[]): Promise<string[]> {
  return until(
    () => (names.every((n) => leftNames(client).includes(n)) ? leftNames(client) : undefined),
    `participantLeft for ${names.join(", ")}`,
    reconnectWindowMs() + SLACK_MS,
  );
}

describe("the reconnection window's alarm", () => {
  it(
    "two drops at different times: the first seat expires, the alarm is armed again for the second",
    TEST,
    async () => {
      const { client: alice } = await join("al-1", "alice");
      const { client: bob } = await join("al-1", "bob");
      const { client: carol } = await join("al-1", "carol");
      bob.ws.close(1001, "gone");
      const bobRow = await dropSeen("al-1", "bob");
      carol.ws.close(1001, "gone later");
      const carolRow = await dropSeen("al-1", "carol");
      if (bobRow && carolRow) expect(carolRow.disconnectedAt).toBeGreaterThanOrEqual(bobRow.disconnectedAt as number);

      await waitForLeft(alice, ["bob"]);
      // Right after bob's expiry: carol's seat is still held with the alarm at her deadline,
      // or (a slow machine) that alarm already fired too.
      const { held, alarm } = await runInDurableObject(roomStub("al-1"), async (_i: RoomObject, state) => ({
        held: state.storage.sql
          .exec<{ data: string }>("SELECT data FROM participants")
          .toArray()
          .map((r) => JSON.parse(r.data) as StoredParticipant)
          .find((p) => p.user === "carol"),
        alarm: await state.storage.getAlarm(),
      }));
      // Armed no later than her deadline (earlier when other work, such as a directory retry, is due first).
      if (held) {
        expect(alarm).not.toBeNull();
        expect(alarm as number).toBeLessThanOrEqual((held.disconnectedAt as number) + reconnectWindowMs());
      }

      expect(await waitForLeft(alice, ["bob", "carol"])).toEqual(["bob", "carol"]);
      expect((await storedRoster("al-1")).map((p) => p.user)).toEqual(["alice"]);
    },
  );

  it(
    "a seat expires after the room object was evicted: the alarm wakes a new instance that reads SQLite",
    TEST,
    async () => {
      const { client: alice, session: aliceSession } = await join("al-2", "alice");
      const { client: bob } = await join("al-2", "bob");
      bob.ws.close(1001, "gone");
      await dropSeen("al-2", "bob");
      await evictDurableObject(roomStub("al-2"));
      expect(await waitForLeft(alice, ["bob"])).toEqual(["bob"]);
      expect((await storedRoster("al-2")).map((p) => p.user)).toEqual(["alice"]);
      // alice's hibernated socket is still hers.
      const chat = await alice.request("sendMessage", { message: "alone", userMessage: "alice", roomMessage: "al-2" });
      expect(chat.result).toEqual({ sessionId: aliceSession });
    },
  );
});

async function call(overrides: Partial<Record<keyof Env, string | undefined>>, path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`https://example.com${path}`, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("AUTH_REGEX", () => {
  it("an invalid regular expression fails every request with 500", async () => {
    for (const invalid of ["(", "[a-", "a{2,1}", "*"]) {
      for (const [path, init] of [
        ["/health", {}],
        ["/getAllRooms", {}],
        ["/getClientConfig", {}],
        ["/close?room=r", { headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` } }],
        ["/room/r", { headers: { Upgrade: "websocket" } }],
        ["/room", { headers: { Upgrade: "websocket" } }],
        ["/bridge/control", { headers: { Upgrade: "websocket", Authorization: "Bearer x" } }],
        ["/bridge/rooms/r", { headers: { Upgrade: "websocket", Authorization: "Bearer x" } }],
      ] as const) {
        const response = await call({ AUTH_REGEX: invalid }, path, init);
        expect(response.status, `${path} with AUTH_REGEX ${invalid}`).toBe(500);
        expect(await response.json()).toEqual({ error: "internal error" });
      }
      expect(() => settingsOf({ ...env, AUTH_REGEX: invalid })).toThrow(/AUTH_REGEX is not a valid regular expression/);
    }
    // A valid one serves again.
    expect((await call({ AUTH_REGEX: "abc" }, "/health")).status).toBe(200);
  });

  it("must match the whole name, like String.matches: `abc` admits abc, not abcd nor xabc", () => {
    const matches = (regex: string, user: string) =>
      settingsOf({ ...env, AUTH_REGEX: regex }).room.authRegex.test(user);
    expect(matches("abc", "abc")).toBe(true);
    expect(matches("abc", "abcd")).toBe(false);
    expect(matches("abc", "xabc")).toBe(false);
    // The whole expression is anchored, not only its first and last alternatives.
    expect(matches("a|b", "a")).toBe(true);
    expect(matches("a|b", "ab")).toBe(false);
    expect(matches("special.*", "special-sam")).toBe(true);
    expect(matches("special.*", "xspecial")).toBe(false);
  });
});
