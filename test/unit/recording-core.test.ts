/**
 * Recording in the pure room core (README "Recordings"): when a recording
 * may start, the `record` / `stopRecording` commands and ledger ops each
 * input leads to (files follow publishes, unpublishes, leaves, media losses;
 * the last leave and a close stop it before the media is released), the
 * notifications (everyone, late joiners, resumed sessions), the clients'
 * permission, and the webhook events read off the states.
 */
import { testCoreConfig } from "./core-config.ts";
import { describe, expect, it } from "vitest";
import { apply } from "../../worker/core/room-core.ts";
import type { CoreContext, RecordingPolicy } from "../../worker/core/hooks.ts";
import { startRefusal } from "../../worker/core/recording.ts";
import { roomEvents } from "../../worker/core/room-events.ts";
import {
  emptyRoom,
  type Effect,
  type Grant,
  type Input,
  type LedgerOp,
  type Role,
  type RoomState,
} from "../../worker/core/types.ts";
import type { MediaCommand } from "../../protocol/bridge.ts";
import { RoomCode } from "../../protocol/errors.ts";

const REC = "rec_unit-test-1";
const TOKEN = "v1.token.sig";

class Room {
  state: RoomState = emptyRoom("r1");
  now = 1_000_000;
  id = 1;
  policy: RecordingPolicy | undefined;

  constructor(policy?: RecordingPolicy) {
    this.policy = policy;
  }

  ctx(): CoreContext {
    return {
      now: this.now,
      config: testCoreConfig(this.policy ? { recording: this.policy } : {}),
      hooks: {},
    };
  }

  run(input: Input): Effect[] {
    const step = apply(this.state, input, this.ctx());
    this.state = step.state;
    return step.effects;
  }

  req(session: string, method: string, params: unknown = {}, grant: Grant = {}): Effect[] {
    return this.run({ type: "request", session, id: this.id++, method, params, grant });
  }

  join(session: string, user: string, role?: Role): Effect[] {
    return this.req(session, "joinRoom", { user, room: "r1" }, role ? { role } : {});
  }

  publish(session: string): Effect[] {
    const out = this.req(session, "publishVideo", { sdpOffer: "v=0", doLoopback: false });
    const media = out.find((e): e is Effect & { kind: "media" } => e.kind === "media" && e.ref !== null);
    if (!media?.ref) throw new Error("no publish command");
    return this.run({ type: "mediaResult", ref: media.ref, outcome: { ok: true, value: { sdpAnswer: "v=0 a" } } });
  }

  start(id = REC, name?: string): Effect[] {
    return this.run({ type: "recording", action: { kind: "start", id, token: TOKEN, ...(name ? { name } : {}) } });
  }
}

const mediaOps = (effects: Effect[]): MediaCommand[] => effects.flatMap((e) => (e.kind === "media" ? [e.command] : []));
const ledgerOps = (effects: Effect[]): LedgerOp[] => effects.flatMap((e) => (e.kind === "ledger" ? [e.op] : []));
const errorOf = (effects: Effect[]) => effects.find((e): e is Effect & { kind: "error" } => e.kind === "error")?.error;
const replyOf = (effects: Effect[]) => effects.find((e): e is Effect & { kind: "reply" } => e.kind === "reply")?.result;
/** What the effects are, in order (alarms left out: they only name the room's next deadline). */
const kinds = (effects: Effect[]) =>
  effects.flatMap((e) => {
    // Alarms only name the room's next deadline; multiStream clients' copies are multi-stream.test.ts's.
    if (e.kind === "alarm" || (e.kind === "broadcast" && e.audience === "multiStream")) return [];
    if (e.kind === "media") return `media:${e.command.op}`;
    if (e.kind === "broadcast" || e.kind === "notify") return `${e.kind}:${e.notification.method}`;
    if (e.kind === "ledger") return `ledger:${e.op.op}`;
    return [e.kind];
  });

/** ann and bob publish, carl only watches. */
function busyRoom(policy?: RecordingPolicy): Room {
  const room = new Room(policy);
  room.join("s-ann", "ann");
  room.join("s-bob", "bob");
  room.join("s-carl", "carl");
  room.publish("s-ann");
  room.publish("s-bob");
  return room;
}

describe("starting a recording", () => {
  it("needs a live stream and no recording running", () => {
    const room = new Room();
    room.join("s-ann", "ann");
    expect(startRefusal(room.state)).toEqual({
      kind: "nothingToRecord",
      message: "Room 'r1' has no published stream to record",
    });
    room.publish("s-ann");
    expect(startRefusal(room.state)).toBeNull();
    room.start();
    expect(startRefusal(room.state)).toEqual({
      kind: "alreadyRecording",
      running: REC,
      message: `Room 'r1' is already being recorded (recording ${REC}); stop it first`,
    });
    // An admin start the adapter did not check changes nothing.
    expect(room.start("rec_another-one")).toEqual([]);
  });

  it("tells the ledger first, then records each live stream, then tells everyone", () => {
    const room = busyRoom();
    room.now = 2_000_000;
    const effects = room.start(REC, "standup");
    expect(kinds(effects)).toEqual(["ledger:start", "media:record", "media:record", "broadcast:recordingStarted"]);
    expect(ledgerOps(effects)).toEqual([
      {
        op: "start",
        id: REC,
        room: "r1",
        name: "standup",
        startedAt: 2_000_000,
        files: [
          { name: "001-ann-webcam.webm", user: "ann", stream: "webcam", startOffsetMs: 0 },
          { name: "002-bob-webcam.webm", user: "bob", stream: "webcam", startOffsetMs: 0 },
        ],
      },
    ]);
    expect(mediaOps(effects)).toEqual([
      {
        op: "record",
        recording: REC,
        user: "ann",
        stream: "webcam",
        file: "001-ann-webcam.webm",
        token: TOKEN,
        startedAt: 2_000_000,
      },
      {
        op: "record",
        recording: REC,
        user: "bob",
        stream: "webcam",
        file: "002-bob-webcam.webm",
        token: TOKEN,
        startedAt: 2_000_000,
      },
    ]);
    expect(effects.at(-1)).toEqual({
      kind: "broadcast",
      except: null,
      notification: { method: "recordingStarted", params: { id: REC } },
    });
    expect(room.state.recording).toEqual({
      id: REC,
      startedAt: 2_000_000,
      token: TOKEN,
      seq: 2,
      files: { ann_webcam: "001-ann-webcam.webm", bob_webcam: "002-bob-webcam.webm" },
    });
  });

  it("names files after a slug of the user: any Unicode name gives a valid file name", () => {
    const room = new Room();
    room.join("s-1", "Zoë O'Brien");
    room.join("s-2", "日本");
    room.publish("s-1");
    room.publish("s-2");
    const files = mediaOps(room.start()).map((c) => (c.op === "record" ? c.file : ""));
    expect(files).toEqual(["001-Zoe-O-Brien-webcam.webm", "002--webcam.webm"]);
  });
});

describe("files follow the streams", () => {
  it("a later publisher gets the next file, at its offset on the recording's timeline", () => {
    const room = busyRoom();
    room.start();
    room.now += 5000;
    const effects = room.publish("s-carl");
    expect(ledgerOps(effects)).toEqual([
      {
        op: "addFile",
        id: REC,
        file: { name: "003-carl-webcam.webm", user: "carl", stream: "webcam", startOffsetMs: 5000 },
      },
    ]);
    expect(mediaOps(effects)).toEqual([
      expect.objectContaining({ op: "record", user: "carl", file: "003-carl-webcam.webm" }),
    ]);
    // The publish is answered and announced before the recording of it starts.
    expect(kinds(effects)).toEqual(["reply", "broadcast:participantPublished", "ledger:addFile", "media:record"]);
  });

  it("an unpublish ends the file (the bridge ends it itself); publishing again starts a new one", () => {
    const room = busyRoom();
    room.start();
    room.now += 1000;
    const gone = room.req("s-bob", "unpublishVideo");
    expect(mediaOps(gone)).toEqual([{ op: "unpublish", user: "bob" }]);
    expect(ledgerOps(gone)).toEqual([{ op: "endFile", id: REC, name: "002-bob-webcam.webm", at: room.now }]);
    const again = room.publish("s-bob");
    expect(mediaOps(again)).toEqual([expect.objectContaining({ op: "record", file: "003-bob-webcam.webm" })]);
  });

  it("a forced unpublish, a leave and a media loss end files the same way", () => {
    const room = busyRoom();
    room.join("s-mia", "mia", "moderator");
    room.start();
    const forced = room.req("s-mia", "forceUnpublish", { user: "bob" });
    expect(ledgerOps(forced)).toEqual([expect.objectContaining({ op: "endFile", name: "002-bob-webcam.webm" })]);
    const left = room.req("s-ann", "leaveRoom");
    expect(ledgerOps(left)).toEqual([expect.objectContaining({ op: "endFile", name: "001-ann-webcam.webm" })]);
    expect(mediaOps(left).map((c) => c.op)).toEqual(["releaseUser"]);
    room.publish("s-carl");
    const lost = room.run({ type: "mediaEvent", event: { event: "mediaLost", error: "gone" } });
    expect(ledgerOps(lost)).toEqual([expect.objectContaining({ op: "endFile", name: "003-carl-webcam.webm" })]);
    expect(room.state.recording?.files).toEqual({});
    // The recording keeps running with nobody publishing; the next publish is file 4.
    expect(mediaOps(room.publish("s-carl"))).toEqual([expect.objectContaining({ file: "004-carl-webcam.webm" })]);
  });

  it("a chat, a ping or a dropped socket (the seat kept) change no file", () => {
    const room = busyRoom();
    room.start();
    expect(
      ledgerOps(room.req("s-ann", "sendMessage", { message: "hi", userMessage: "ann", roomMessage: "r1" })),
    ).toEqual([]);
    expect(ledgerOps(room.run({ type: "socketClosed", session: "s-bob" }))).toEqual([]);
    expect(room.state.recording?.files).toEqual({
      ann_webcam: "001-ann-webcam.webm",
      bob_webcam: "002-bob-webcam.webm",
    });
  });

  it("a refused record fails its file in the ledger, and no new file is tried while the user publishes", () => {
    const room = busyRoom();
    room.start();
    const refused = room.run({ type: "recordingRefused", recording: REC, file: "001-ann-webcam.webm", reason: "no" });
    expect(refused).toEqual([
      { kind: "ledger", op: { op: "failFile", id: REC, name: "001-ann-webcam.webm", reason: "no" } },
    ]);
    expect(room.state.recording?.files.ann_webcam).toBe("001-ann-webcam.webm");
  });
});

describe("stopping", () => {
  it("the administrator's stop: stopRecording, the ledger, everyone told; another id changes nothing", () => {
    const room = busyRoom();
    room.start();
    expect(room.run({ type: "recording", action: { kind: "stop", id: "rec_not-this-one" } })).toEqual([]);
    room.now += 10;
    const stopped = room.run({ type: "recording", action: { kind: "stop", id: REC } });
    expect(kinds(stopped)).toEqual(["media:stopRecording", "ledger:stop", "broadcast:recordingStopped"]);
    expect(mediaOps(stopped)).toEqual([{ op: "stopRecording", recording: REC }]);
    expect(ledgerOps(stopped)).toEqual([{ op: "stop", id: REC, at: room.now }]);
    expect(room.state.recording).toBeNull();
    expect(room.run({ type: "recording", action: { kind: "stop", id: REC } })).toEqual([]);
  });

  it("the last one out stops it before the media is released; an expired seat too", () => {
    const room = new Room();
    room.join("s-ann", "ann");
    room.publish("s-ann");
    room.start();
    const left = room.req("s-ann", "leaveRoom");
    expect(kinds(left).filter((k) => k.startsWith("media") || k.startsWith("ledger"))).toEqual([
      "media:stopRecording",
      "ledger:stop",
      "media:releaseUser",
      "media:releaseRoom",
    ]);

    const other = new Room();
    other.join("s-bob", "bob");
    other.publish("s-bob");
    other.start();
    other.run({ type: "socketClosed", session: "s-bob" });
    other.now += 10_000;
    const expired = other.run({ type: "tick" });
    expect(mediaOps(expired).map((c) => c.op)).toEqual(["stopRecording", "releaseUser", "releaseRoom"]);
    expect(other.state.recording).toBeNull();
  });

  it("an admin close stops it first: the participants hear recordingStopped before roomClosed", () => {
    const room = busyRoom();
    room.start();
    const closed = room.run({ type: "close", reason: "closed" });
    const order = kinds(closed);
    expect(order[0]).toBe("media:stopRecording");
    expect(order.indexOf("broadcast:recordingStopped")).toBeLessThan(order.indexOf("notify:roomClosed"));
    expect(room.state.recording).toBeNull();
  });
});

describe("who hears of it", () => {
  it("a late joiner right after its answer; a resumed session right after its connect answer", () => {
    const room = busyRoom();
    room.start();
    const joined = room.join("s-dave", "dave");
    expect(kinds(joined).slice(-2)).toEqual(["reply", "notify:recordingStarted"]);
    expect(joined.find((e) => e.kind === "notify")).toEqual({
      kind: "notify",
      session: "s-dave",
      notification: { method: "recordingStarted", params: { id: REC } },
    });
    room.run({ type: "socketClosed", session: "s-dave" });
    const resumed = room.req("s-new", "connect", { sessionId: "s-dave" });
    expect(kinds(resumed).slice(-2)).toEqual(["reply", "notify:recordingStarted"]);
    expect(resumed.find((e) => e.kind === "notify")).toMatchObject({ session: "s-dave" });
  });

  it("nobody is told anything while the room is not recorded", () => {
    const room = busyRoom();
    expect(kinds(room.join("s-dave", "dave"))).not.toContain("notify:recordingStarted");
  });
});

describe("startRecording / stopRecording from participants", () => {
  const grant: Grant = { recording: { id: REC, token: TOKEN } };

  it("are refused without the option, whatever the grant", () => {
    const room = busyRoom();
    const refused = room.req("s-ann", "startRecording", {}, grant);
    expect(errorOf(refused)?.code).toBe(RoomCode.GENERIC);
    expect(errorOf(refused)?.message).toContain("ALLOW_RECORDING_FROM_CLIENTS");
    expect(room.state.recording).toBeNull();
    expect(errorOf(room.req("s-ann", "stopRecording"))?.code).toBe(RoomCode.GENERIC);
  });

  it("with the option: start answers the id, stop answers it too; refusals name the reason", () => {
    const room = busyRoom({ fromClients: true, moderatorsOnly: false });
    expect(errorOf(room.req("s-ann", "stopRecording"))?.message).toBe("Room 'r1' is not being recorded");
    const unavailable = room.req("s-ann", "startRecording", {}, { recording: { unavailable: "no bucket" } });
    expect(errorOf(unavailable)?.message).toBe("Recording is not available: no bucket");
    const started = room.req("s-carl", "startRecording", { name: "mine" }, grant);
    expect(replyOf(started)).toEqual({ id: REC, sessionId: "s-carl" });
    expect(ledgerOps(started)[0]).toMatchObject({ op: "start", name: "mine" });
    const twice = room.req("s-ann", "startRecording", {}, { recording: { id: "rec_second-one", token: TOKEN } });
    expect(errorOf(twice)?.code).toBe(RoomCode.ROOM_GENERIC);
    expect(errorOf(twice)?.message).toContain(REC);
    const stopped = room.req("s-bob", "stopRecording");
    expect(replyOf(stopped)).toEqual({ id: REC, sessionId: "s-bob" });
    expect(mediaOps(stopped)).toEqual([{ op: "stopRecording", recording: REC }]);
    // Nothing to record: refused with the same sentence as the REST API's 422.
    const quiet = new Room({ fromClients: true, moderatorsOnly: false });
    quiet.join("s-x", "x");
    expect(errorOf(quiet.req("s-x", "startRecording", {}, grant))?.message).toBe(
      "Room 'r1' has no published stream to record",
    );
    expect(errorOf(quiet.req("s-nobody", "startRecording", {}, grant))?.code).toBe(RoomCode.USER_NOT_FOUND);
  });

  it("with join tokens in use, only moderators may", () => {
    const room = busyRoom({ fromClients: true, moderatorsOnly: true });
    room.join("s-mia", "mia", "moderator");
    for (const method of ["startRecording", "stopRecording"]) {
      const refused = room.req("s-ann", method, {}, grant);
      expect(errorOf(refused)).toEqual({
        code: RoomCode.USER_GENERIC,
        message: "Only moderators can start or stop recordings (a join token with role 'moderator' grants it)",
      });
    }
    expect(replyOf(room.req("s-mia", "startRecording", {}, grant))).toMatchObject({ id: REC });
    expect(replyOf(room.req("s-mia", "stopRecording"))).toMatchObject({ id: REC });
  });
});

describe("webhook events of recordings", () => {
  it("recordingStarted after the streams it records; recordingStopped before the leave that stopped it", () => {
    const room = new Room();
    room.join("s-ann", "ann");
    room.publish("s-ann");
    const before = room.state;
    room.start();
    expect(roomEvents(before, room.state)).toEqual([{ type: "recordingStarted", data: { recording: REC } }]);
    const running = room.state;
    room.req("s-ann", "leaveRoom");
    expect(roomEvents(running, room.state)).toEqual([
      { type: "streamUnpublished", data: { user: "ann", streamId: "ann_webcam" } },
      { type: "recordingStopped", data: { recording: REC } },
      { type: "participantLeft", data: { user: "ann" } },
      { type: "roomClosed", data: {} },
    ]);
  });

  it("a file that starts or ends is no event of its own", () => {
    const room = busyRoom();
    room.start();
    const before = room.state;
    room.publish("s-carl");
    expect(roomEvents(before, room.state)).toEqual([
      { type: "streamPublished", data: { user: "carl", streamId: "carl_webcam" } },
    ]);
  });
});
