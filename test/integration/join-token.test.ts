/**
 * JOIN_TOKEN_SECRET against the real worker: joinRoom needs a token signed for
 * that user and room, on the direct and the legacy URL, and frames that
 * follow a joinRoom keep their order while its token is checked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signJoinToken } from "../../protocol/tokens/join-token.ts";
import { RoomCode } from "../../protocol/errors.ts";
import { WorkerUnderTest } from "./support.ts";

const SECRET = "integration-join-secret";
let worker: WorkerUnderTest;

beforeAll(async () => {
  worker = await WorkerUnderTest.start({ vars: { JOIN_TOKEN_SECRET: SECRET } });
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
});
