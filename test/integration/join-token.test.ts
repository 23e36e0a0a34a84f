/**
 * JOIN_TOKEN_SECRET against the real worker: joinRoom needs a token signed for
 * that user and room, on the direct and the legacy URL, frames that
 * follow a joinRoom keep their order while its token is checked, and a
 * `/close` that lands while a token is checked leaves no ghost member.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signJoinToken } from "../../protocol/tokens/join-token.ts";
import { RoomCode } from "../../protocol/errors.ts";
import { WorkerUnderTest } from "./support.ts";

const SECRET = "integration-join-secret";
const ADMIN_TOKEN = "integration-join-admin-token";
let worker: WorkerUnderTest;

beforeAll(async () => {
  worker = await WorkerUnderTest.start({ vars: { JOIN_TOKEN_SECRET: SECRET, ADMIN_TOKEN } });
});

afterAll(async () => {
  await worker?.stop();
});

describe("JOIN_TOKEN_SECRET", () => {
  it("refuses a join without a valid token for that user and room, and admits one with it", async () => {
    const client = await worker.open("/room/guarded");
    const missing = await client.requestError("joinRoom", { user: "ana", room: "guarded" });
    expect(missing.code).toBe(RoomCode.USER_GENERIC);
    expect(missing.message).toMatch(/join token is required/);
    const bobs = await signJoinToken(SECRET, { user: "bob", room: "guarded" });
    expect((await client.requestError("joinRoom", { user: "ana", room: "guarded", token: bobs })).message).toMatch(
      /not for user 'ana'/,
    );
    const forged = await signJoinToken("not-the-secret", { user: "ana", room: "guarded" });
    expect((await client.requestError("joinRoom", { user: "ana", room: "guarded", token: forged })).message).toMatch(
      /bad signature/,
    );
    // Nothing was created by the refused joins.
    expect(await worker.rooms()).not.toContain("guarded");

    const token = await signJoinToken(SECRET, { user: "ana", room: "guarded" });
    const joined = await client.request<{ value: unknown[] }>("joinRoom", { user: "ana", room: "guarded", token });
    expect(joined.value).toEqual([]);
    await client.request("leaveRoom");
  });

  it("keeps frames in order behind a joinRoom whose token is being checked, also through the legacy URL", async () => {
    const client = await worker.open("/room");
    const token = await signJoinToken(SECRET, { user: "cy", room: "ordered" });
    // Sent back to back: the chat must not overtake the join.
    const join = client.request<{ value: unknown[]; sessionId: string }>("joinRoom", {
      user: "cy",
      room: "ordered",
      token,
    });
    const chat = client.request("sendMessage", { message: "first words", userMessage: "cy", roomMessage: "ordered" });
    const joined = await join;
    expect(joined.value).toEqual([]);
    // Answered on the session the join created: the chat was handled after it.
    expect(await chat).toStrictEqual({ sessionId: joined.sessionId });
    expect(await client.next("sendMessage")).toEqual({ room: "ordered", user: "cy", message: "first words" });
    await client.request("leaveRoom");
  });

  it("/close while a joiner's token is being checked: the joiner gets a clear answer, and no ghost member stays", async () => {
    // The close and the join race; either order is allowed, a member without a socket (or a socket
    // that believes it joined a room that forgot it) is not. Several rounds, so both orders happen.
    for (let round = 0; round < 6; round++) {
      const room = `close-race-${round}`;
      const ana = await worker.open(`/room/${room}`);
      const anaToken = await signJoinToken(SECRET, { user: "ana", room });
      await ana.request("joinRoom", { user: "ana", room, token: anaToken });
      const bob = await worker.open(`/room/${room}`);
      const bobToken = await signJoinToken(SECRET, { user: "bob", room });
      const joining = bob
        .request<{ value: Array<{ id: string }> }>("joinRoom", { user: "bob", room, token: bobToken })
        .then(
          (result) => ({ result }),
          (error: unknown) => ({ error }),
        );
      const closing = worker.get(`/close?room=${room}`, { Authorization: `Bearer ${ADMIN_TOKEN}` });
      const [joined, closed] = await Promise.all([joining, closing]);
      expect(closed.status).toBe(200);
      expect(await closed.json()).toEqual({ room, closed: true });
      // ana was in the room: evicted, told, closed.
      expect(await ana.next("participantEvicted")).toEqual({});
      expect(await ana.next("roomClosed")).toEqual({ room });
      expect((await ana.closedWithin()).code).toBe(1000);

      // bob's join was answered, one way or the other (a refusal would also be clear, never silence).
      if ("error" in joined) throw new Error(`bob's join failed: ${String(joined.error)}`);
      const peers = joined.result.value.map((p) => p.id);
      let bobIsMember: boolean;
      if (peers.includes("ana")) {
        // Joined before the close: evicted with everyone.
        expect(await bob.next("roomClosed")).toEqual({ room });
        expect((await bob.closedWithin()).code).toBe(1000);
        bobIsMember = false;
      } else {
        // Joined after the close: the room is his, and his socket is open.
        expect(peers).toEqual([]);
        expect(bob.closeEvent).toBeNull();
        bobIsMember = true;
      }
      // No ghost: a newcomer sees exactly the members that really are there.
      const probe = await worker.open(`/room/${room}`);
      const probeToken = await signJoinToken(SECRET, { user: "probe", room });
      const seen = await probe.request<{ value: Array<{ id: string }> }>("joinRoom", {
        user: "probe",
        room,
        token: probeToken,
      });
      expect(seen.value.map((p) => p.id)).toEqual(bobIsMember ? ["bob"] : []);
      await probe.request("leaveRoom");
      if (bobIsMember) await bob.request("leaveRoom");
      await worker.waitForRooms((rooms) => !rooms.includes(room));
    }
  });

  it("a socket that closes while its joinRoom's token is checked leaves no ghost: the close is handled after the join", async () => {
    const room = "close-during-check";
    const token = await signJoinToken(SECRET, { user: "gil", room });
    const gil = await worker.open(`/room/${room}`);
    // The join and the close leave back to back; the token check in between is asynchronous.
    gil.sendRaw(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "joinRoom", params: { user: "gil", room, token } }));
    gil.ws.close(1000, "bye");
    await gil.closedWithin();
    // Whether or not the join got in first, "gil" is free again once the (10 s) window has passed.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const again = await worker.open(`/room/${room}`);
      const refused = await again.request("joinRoom", { user: "gil", room, token }).then(
        () => null,
        (error: unknown) => error,
      );
      if (refused === null) {
        await again.request("leaveRoom");
        break;
      }
      expect(refused).toMatchObject({ code: RoomCode.EXISTING_USER_IN_ROOM });
      again.terminate();
      if (Date.now() > deadline) expect.fail("gil's seat was never freed: a ghost");
      await new Promise((r) => setTimeout(r, 1000));
    }
    await worker.waitForRooms((rooms) => !rooms.includes(room));
  });

  it("a token with role 'moderator' lets its holder evict and stop streams; a plain token (or a role in the params) does not", async () => {
    const room = "moderated";
    const token = (user: string, role?: "moderator") =>
      signJoinToken(SECRET, { user, room, ...(role ? { role } : {}) });
    const mia = await worker.open(`/room/${room}`);
    const joined = await mia.request<{ role?: string }>("joinRoom", {
      user: "mia",
      room,
      token: await token("mia", "moderator"),
    });
    expect(joined.role).toBe("moderator");
    const eve = await worker.open(`/room/${room}`);
    const eveJoined = await eve.request<Record<string, unknown>>("joinRoom", {
      user: "eve",
      room,
      token: await token("eve"),
      role: "moderator",
    });
    expect(eveJoined.role).toBeUndefined();
    const refused = await eve.requestError("evictParticipant", { user: "mia" });
    expect(refused.code).toBe(RoomCode.USER_GENERIC);
    expect(refused.message).toMatch(/Only moderators/);

    await mia.request("evictParticipant", { user: "eve" });
    expect(await eve.next("participantEvicted")).toEqual({ by: "mia" });
    expect((await eve.closedWithin()).code).toBe(1000);
    expect(await mia.next("participantLeft")).toEqual({ name: "eve" });
    await mia.request("leaveRoom");
    await worker.waitForRooms((rooms) => !rooms.includes(room));
  });
});
