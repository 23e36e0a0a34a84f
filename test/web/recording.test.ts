/**
 * The room's recording state, from the library's side, against a scripted
 * JSON-RPC server (ws): `room.recording` follows the reply to the caller's
 * own startRecording/stopRecording at once (whichever of reply and
 * notification arrives first), `recordingStarted` repeated after a resume is
 * not a second event, and another participant's stop clears it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { reply, type ScriptedServer, startScriptedServer } from "./helpers/scripted-server.ts";
import { joined, leaveAll, names, record, until } from "./support.ts";

const WAIT_MS = 30_000;

let server: ScriptedServer;
/** The id the scripted server gives the next recording. */
let nextId = 1;

beforeAll(async () => {
  server = await startScriptedServer((frame, socket) => {
    const session = { sessionId: "s-1" };
    const results: Record<string, object> = {
      joinRoom: { ...session, value: [] },
      startRecording: { ...session, id: `rec_${nextId}` },
      stopRecording: { ...session, id: `rec_${nextId}` },
    };
    // Replies only: the notifications are sent by the tests, when they choose.
    reply(socket, frame.id, results[frame.method] ?? session);
  });
});

afterEach(async () => {
  await leaveAll();
  nextId += 1;
});

afterAll(async () => {
  await server.close();
});

function notify(method: string, params: object): void {
  server.notify(method, params);
}

describe("the room's recording state", () => {
  it("follows the caller's own start and stop from the replies, before any notification", async () => {
    const room = await joined(server.url, "rec", "alice");
    const log = record(room);
    expect(room.recording).toBeNull();

    const id = await room.startRecording();
    expect(id).toBe(`rec_${nextId}`);
    expect(room.recording).toBe(id);
    expect(names(log)).toEqual(["recording-started"]);

    // The notification that follows is the same recording: no second event. (One socket keeps the
    // order: both notifications reach the client before the answer to the stopRecording below.)
    notify("recordingStarted", { id });
    notify("recordingStopped", { id: "rec_other" });
    const stopped = await room.stopRecording();
    expect(stopped).toBe(id);
    expect(room.recording).toBeNull();
    expect(names(log)).toEqual(["recording-started", "recording-stopped"]);

    // The stop's own notification, after the reply already said so: no second event. A later
    // recording, sent behind it, shows when the client has read it.
    notify("recordingStopped", { id });
    notify("recordingStarted", { id: "rec_next" });
    await until(() => room.recording === "rec_next", WAIT_MS, "the next recording");
    expect(names(log)).toEqual(["recording-started", "recording-stopped", "recording-started"]);
  });

  it("hears a recording started and stopped by someone else", async () => {
    const room = await joined(server.url, "rec", "bob");
    const log = record(room);
    notify("recordingStarted", { id: "rec_admin" });
    await until(() => room.recording === "rec_admin", WAIT_MS, "the recording");
    notify("recordingStarted", { id: "rec_admin" });
    // A stop naming another recording is stale: it changes nothing.
    notify("recordingStopped", { id: "rec_older" });
    notify("recordingStopped", { id: "rec_admin" });
    await until(() => room.recording === null, WAIT_MS, "the stop");
    expect(log.map((r) => [r.name, r.event])).toEqual([
      ["recording-started", { id: "rec_admin" }],
      ["recording-stopped", { id: "rec_admin" }],
    ]);
  });
});
