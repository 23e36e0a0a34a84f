/**
 * AUTH_REGEX is matched against the whole user name, like the original's
 * Java `String.matches` (README "Configuration"): with `abc`, only `abc` may
 * create a room; `abcd` (the `$` anchor) and `xabc` (the `^` anchor) get 204.
 * Against the real worker under wrangler dev.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RoomCode } from "../../protocol/errors.ts";
import { WorkerUnderTest } from "./support.ts";

let worker: WorkerUnderTest;

beforeAll(async () => {
  worker = await WorkerUnderTest.start({ vars: { AUTH_REGEX: "abc" } });
});

afterAll(async () => {
  await worker?.stop();
});

describe("AUTH_REGEX = abc", () => {
  it("admits only the whole name: abcd and xabc cannot create a room, abc can, and then anyone joins", async () => {
    for (const user of ["abcd", "xabc", "ab", "abcabc"]) {
      const client = await worker.open("/room/anchored");
      const refused = await client.requestError("joinRoom", { user, room: "anchored" });
      expect(refused.code, user).toBe(RoomCode.ROOM_CANNOT_BE_CREATED);
      expect(refused.message).toBe(`User '${user}' is not allowed to create room 'anchored'`);
    }
    expect(await worker.rooms()).not.toContain("anchored");

    const creator = await worker.join("anchored", "abc");
    expect(creator.peers).toEqual([]);
    // Joining an existing room is not gated.
    const joiner = await worker.join("anchored", "abcd");
    expect(joiner.peers).toEqual(["abc"]);
    for (const c of [joiner.client, creator.client]) await c.request("leaveRoom");
  });
});
