/**
 * AUTH_REGEX (the original demo's `authRegex`) gates room *creation* only:
 * a user whose name does not match cannot open a new room (204), but may join
 * a room that already exists. A separate `wrangler dev` with
 * `AUTH_REGEX = "special.*"`. (Admin endpoints need ADMIN_TOKEN: without it
 * they answer 503, tested in test/integration/limits.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RoomCode } from "../../protocol/errors.ts";
import { WorkerUnderTest } from "./support.ts";

let worker: WorkerUnderTest;
const ADMIN_TOKEN = "auth-regex-admin-token";

beforeAll(async () => {
  worker = await WorkerUnderTest.start({
    vars: { AUTH_REGEX: "special.*", RECONNECT_WINDOW_SECONDS: "1", ADMIN_TOKEN },
  });
});

afterAll(async () => {
  await worker?.stop();
});

describe("AUTH_REGEX = special.*", () => {
  it("refuses room creation to non-matching users with 204, but lets them join an existing room", async () => {
    const room = "gated";
    const bob = await worker.open(`/room/${room}`);
    const refused = await bob.requestError("joinRoom", { user: "bob", room });
    expect(refused.code).toBe(RoomCode.ROOM_CANNOT_BE_CREATED);
    // The regex is anchored, as Java's String.matches() in the original.
    expect((await bob.requestError("joinRoom", { user: "not-special", room })).code).toBe(
      RoomCode.ROOM_CANNOT_BE_CREATED,
    );
    // Nothing was created.
    expect(await worker.rooms()).not.toContain(room);
    expect(await bob.request("ping")).toMatchObject({ value: "pong" });

    // A matching user creates it...
    const anna = await worker.open(`/room/${room}`);
    const annaJoin = await anna.request<{ value: unknown[] }>("joinRoom", { user: "specialAnna", room });
    expect(annaJoin.value).toEqual([]);
    await worker.waitForRooms((rooms) => rooms.includes(room));

    // ...and now bob may join it, on the same socket that was refused.
    const bobJoin = await bob.request<{ value: unknown[] }>("joinRoom", { user: "bob", room });
    expect(bobJoin.value).toEqual([{ id: "specialAnna" }]);
    expect(await anna.next("participantJoined")).toStrictEqual({ id: "bob" });

    // When the creator leaves, the room stays open (bob is in it).
    await anna.request("leaveRoom");
    expect(await bob.next("participantLeft")).toStrictEqual({ name: "specialAnna" });
    const carol = await worker.open(`/room/${room}`);
    expect(await carol.request<{ value: unknown[] }>("joinRoom", { user: "carol", room })).toMatchObject({
      value: [{ id: "bob" }],
    });

    // Once everybody left, the room is gone and creating it is gated again.
    await carol.request("leaveRoom");
    await bob.request("leaveRoom");
    await worker.waitForRooms((rooms) => !rooms.includes(room));
    const again = await worker.open(`/room/${room}`);
    expect((await again.requestError("joinRoom", { user: "bob", room })).code).toBe(RoomCode.ROOM_CANNOT_BE_CREATED);
  });

  it("gates creation through the legacy /room URL too", async () => {
    const room = "gated-legacy";
    const bob = await worker.open("/room");
    expect((await bob.requestError("joinRoom", { user: "bob", room })).code).toBe(RoomCode.ROOM_CANNOT_BE_CREATED);
    const special = await worker.open("/room");
    expect(await special.request<{ value: unknown[] }>("joinRoom", { user: "special-one", room })).toMatchObject({
      value: [],
    });
    const bob2 = await worker.open("/room");
    expect(await bob2.request<{ value: unknown[] }>("joinRoom", { user: "bob", room })).toMatchObject({
      value: [{ id: "special-one" }],
    });
  });

  it("/close with the admin token closes a room whatever its creator's name", async () => {
    const room = "closable";
    const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };
    const special = await worker.open(`/room/${room}`);
    await special.request("joinRoom", { user: "special", room });
    const closed = await worker.get(`/close?room=${room}`, auth);
    expect(closed.status).toBe(200);
    expect(await special.next("participantEvicted")).toStrictEqual({});
    expect(await special.next("roomClosed")).toStrictEqual({ room });
    expect((await special.closedWithin()).code).toBe(1000);
    expect((await worker.get(`/close?room=${room}`, auth)).status).toBe(404);
  });
});
