/**
 * A room's participants start and stop recordings themselves (README
 * "Recordings"): refused while ALLOW_RECORDING_FROM_CLIENTS is off (the
 * default); with it on, anyone may (the `record` commands, the notifications
 * and the ledger follow as for the admin API), frames keep their order
 * around the upload token's signing; with join tokens, only moderators may.
 *
 * The workers project's bindings are shared by every test file, so these
 * tests give one room object the option (recording-helpers.ts `withRoomOptions`).
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../../worker/index.ts";
import type { Env } from "../../worker/env.ts";
import { RoomCode } from "../../protocol/errors.ts";
import { signJoinToken } from "../../protocol/tokens/join-token.ts";
import { closeAll, openClient, SLACK_MS } from "./fake-bridge.ts";
import { getRecording, notified, RecordedRoom, withRoomOptions } from "./recording-helpers.ts";
import type { Client, Frame } from "./ws-client.ts";

const TEST = { timeout: 4 * SLACK_MS };
const JOIN_SECRET = "recording-clients-join-secret";

afterEach(closeAll);

function resultId(frame: Frame): string {
  expect(frame.error).toBeUndefined();
  const id = frame.result?.id;
  if (typeof id !== "string") throw new Error(`no recording id in ${JSON.stringify(frame)}`);
  return id;
}

describe("startRecording / stopRecording from participants", () => {
  it("/getClientConfig says recordingFromClients only when the option is on and recording works", TEST, async () => {
    async function config(overrides: Partial<Record<keyof Env, unknown>>): Promise<unknown> {
      const ctx = createExecutionContext();
      const response = await worker.fetch(
        new Request("https://example.com/getClientConfig"),
        { ...env, ...overrides } as Env,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return response.json();
    }
    expect(await config({})).not.toHaveProperty("recordingFromClients");
    expect(await config({ ALLOW_RECORDING_FROM_CLIENTS: "true" })).toMatchObject({ recordingFromClients: true });
    expect(await config({ ALLOW_RECORDING_FROM_CLIENTS: "true", RECORDINGS: undefined })).not.toHaveProperty(
      "recordingFromClients",
    );
  });

  it("are refused while ALLOW_RECORDING_FROM_CLIENTS is off (the default)", TEST, async () => {
    const r = await RecordedRoom.open("cl-off");
    const ann = await r.join("ann");
    await r.publish("ann");
    for (const method of ["startRecording", "stopRecording"]) {
      const answer = await ann.request(method);
      expect(answer.error?.code, method).toBe(RoomCode.GENERIC);
      expect(answer.error?.message, method).toContain("ALLOW_RECORDING_FROM_CLIENTS");
    }
    expect(ann.frames.filter((f) => f.method === "recordingStarted")).toEqual([]);
    expect(r.theLink().frames.filter((f) => f.method === "record")).toEqual([]);
  });

  it("with the option on, anyone starts and stops; everyone is told; refusals are clear", TEST, async () => {
    const r = await RecordedRoom.open("cl-on");
    await withRoomOptions("cl-on", { ALLOW_RECORDING_FROM_CLIENTS: "true" });
    const ann = await r.join("ann");
    const bob = await r.join("bob");
    const nothing = await bob.request("startRecording");
    expect(nothing.error).toEqual({
      code: RoomCode.ROOM_GENERIC,
      message: "Room 'cl-on' has no published stream to record",
    });
    const none = await bob.request("stopRecording");
    expect(none.error).toEqual({ code: RoomCode.ROOM_GENERIC, message: "Room 'cl-on' is not being recorded" });
    expect((await bob.request("startRecording", { name: "" })).error?.code).toBe(-32602);

    await r.publish("ann");
    const id = resultId(await bob.request("startRecording", { name: "by bob" }));
    expect(await r.record()).toMatchObject({ recording: id, user: "ann", file: "001-ann-webcam.webm" });
    for (const client of [ann, bob]) await notified(client, "recordingStarted", id);
    expect(await getRecording(id)).toMatchObject({ name: "by bob", status: "recording", room: "cl-on" });
    const second = await ann.request("startRecording");
    expect(second.error?.code).toBe(RoomCode.ROOM_GENERIC);
    expect(second.error?.message).toContain(id);

    expect(resultId(await ann.request("stopRecording"))).toBe(id);
    expect((await r.theLink().incoming("stopRecording")).params).toEqual({ recording: id });
    for (const client of [ann, bob]) await notified(client, "recordingStopped", id);
    expect((await getRecording(id)).status).toBe("stopping");
  });

  it("frames sent right behind a startRecording wait for it (the upload token is signed first)", TEST, async () => {
    const r = await RecordedRoom.open("cl-order");
    await withRoomOptions("cl-order", { ALLOW_RECORDING_FROM_CLIENTS: "true" });
    const ann = await r.join("ann");
    await r.publish("ann");
    const [started, stopped] = await Promise.all([ann.request("startRecording"), ann.request("stopRecording")]);
    const id = resultId(started);
    expect(resultId(stopped)).toBe(id);
    await r.record();
    await r.theLink().incoming("stopRecording");
  });

  it("with join tokens, only moderators may", TEST, async () => {
    const r = await RecordedRoom.open("cl-mod");
    await withRoomOptions("cl-mod", { ALLOW_RECORDING_FROM_CLIENTS: "true", JOIN_TOKEN_SECRET: JOIN_SECRET });
    async function joinWithToken(user: string, role?: "moderator"): Promise<Client> {
      const client = await openClient("/room/cl-mod");
      const token = await signJoinToken(JOIN_SECRET, { user, room: "cl-mod", ...(role ? { role } : {}) });
      expect((await client.request("joinRoom", { user, room: "cl-mod", token })).error).toBeUndefined();
      r.members.set(user, client);
      return client;
    }
    const mod = await joinWithToken("mod", "moderator");
    const pat = await joinWithToken("pat");
    await r.publish("pat");
    for (const method of ["startRecording", "stopRecording"]) {
      const refused = await pat.request(method);
      expect(refused.error?.code, method).toBe(RoomCode.USER_GENERIC);
      expect(refused.error?.message, method).toContain("Only moderators");
    }
    const id = resultId(await mod.request("startRecording"));
    await notified(pat, "recordingStarted", id);
    expect(resultId(await mod.request("stopRecording"))).toBe(id);
  });
});
