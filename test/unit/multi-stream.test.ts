/**
 * Several streams per participant (webcam, screen…), the core's decisions:
 * who hears of which stream (multiStream clients all, legacy clients only
 * webcams), the per-participant limit, unpublishing one stream, the roster
 * per client kind, ICE endpoint names, and bad stream ids refused.
 */
import { testCoreConfig } from "./core-config.ts";
import { describe, expect, it } from "vitest";
import { apply } from "../../worker/core/room-core.ts";
import type { CoreContext } from "../../worker/core/hooks.ts";
import { emptyRoom, inAudience, type Effect, type Input, type RoomState } from "../../worker/core/types.ts";
import { JsonRpcCode, RoomCode } from "../../protocol/errors.ts";
import type { MediaCommand } from "../../protocol/bridge.ts";
import type { Notification } from "../../protocol/room.ts";
import { publishState } from "../../worker/core/streams.ts";

class Room {
  state: RoomState = emptyRoom("r1");
  nextId = 1;
  readonly ctx: CoreContext = {
    now: 1_000_000,
    config: testCoreConfig(),
    hooks: {},
  };

  input(input: Input): Effect[] {
    const step = apply(this.state, input, this.ctx);
    this.state = step.state;
    return step.effects;
  }

  req(session: string, method: string, params?: unknown): Effect[] {
    return this.input({ type: "request", session, id: this.nextId++, method, params });
  }

  join(session: string, user: string, multiStream?: boolean): Effect[] {
    return this.req(session, "joinRoom", { user, room: "r1", ...(multiStream === undefined ? {} : { multiStream }) });
  }

  /** Publishes `stream` (absent: the original request, no streamId) and answers it. */
  publish(session: string, stream?: string): Effect[] {
    const out = this.req(session, "publishVideo", {
      sdpOffer: "v=0 offer",
      doLoopback: false,
      ...(stream === undefined ? {} : { streamId: stream }),
    });
    const media = out.find((e) => e.kind === "media" && e.ref !== null);
    if (media?.kind !== "media" || media.ref === null) return out;
    return [
      ...out,
      ...this.input({ type: "mediaResult", ref: media.ref, outcome: { ok: true, value: { sdpAnswer: "v=0 answer" } } }),
    ];
  }

  /** What `session` receives of these effects (broadcasts as the room object delivers them). */
  heard(effects: Effect[], session: string, method?: string): Notification[] {
    const out: Notification[] = [];
    const me = this.state.participants.get(session);
    for (const e of effects) {
      if (e.kind === "notify" && e.session === session) out.push(e.notification);
      if (e.kind === "broadcast" && e.except !== session && me && inAudience(me, e.audience)) out.push(e.notification);
    }
    return method === undefined ? out : out.filter((n) => n.method === method);
  }
}

const mediaOps = (effects: Effect[]): MediaCommand[] => effects.flatMap((e) => (e.kind === "media" ? [e.command] : []));
const errorOf = (effects: Effect[]) => effects.find((e): e is Effect & { kind: "error" } => e.kind === "error")?.error;
const replyOf = (effects: Effect[]) => effects.find((e): e is Effect & { kind: "reply" } => e.kind === "reply")?.result;

/** alice publishes; mo joined with multiStream, leo without (the original client). */
function threeRoom(): Room {
  const room = new Room();
  room.join("a", "alice", true);
  room.join("m", "mo", true);
  room.join("l", "leo");
  return room;
}

describe("several streams per participant", () => {
  it("announces a screen only to multiStream clients, listing every live stream; legacy clients hear only the webcam", () => {
    const room = threeRoom();
    const webcam = room.publish("a");
    expect(room.heard(webcam, "m", "participantPublished")).toEqual([
      { method: "participantPublished", params: { id: "alice", streams: [{ id: "webcam" }] } },
    ]);
    expect(room.heard(webcam, "l", "participantPublished")).toEqual([
      { method: "participantPublished", params: { id: "alice", streams: [{ id: "webcam" }] } },
    ]);
    const screen = room.publish("a", "screen");
    expect(mediaOps(screen)[0]).toMatchObject({ op: "publish", user: "alice", stream: "screen" });
    expect(room.heard(screen, "m", "participantPublished")).toEqual([
      { method: "participantPublished", params: { id: "alice", streams: [{ id: "webcam" }, { id: "screen" }] } },
    ]);
    expect(room.heard(screen, "l")).toEqual([]);
    expect(room.heard(screen, "a", "participantPublished")).toEqual([]);
  });

  it("a screen published before the webcam: legacy clients hear of alice only when the webcam goes live", () => {
    const room = threeRoom();
    expect(room.heard(room.publish("a", "screen"), "l")).toEqual([]);
    expect(room.heard(room.publish("a"), "l", "participantPublished")).toEqual([
      { method: "participantPublished", params: { id: "alice", streams: [{ id: "webcam" }] } },
    ]);
  });

  it("unpublishing the screen: multiStream clients are told which stream, legacy clients nothing; the webcam stays", () => {
    const room = threeRoom();
    room.publish("a");
    room.publish("a", "screen");
    room.req("m", "receiveVideoFrom", { sender: "alice_screen", sdpOffer: "v=0" });
    const out = room.req("a", "unpublishVideo", { streamId: "screen" });
    expect(replyOf(out)).toEqual({ sessionId: "a" });
    expect(mediaOps(out)).toContainEqual({ op: "unpublish", user: "alice", stream: "screen" });
    expect(room.heard(out, "m", "participantUnpublished")).toEqual([
      { method: "participantUnpublished", params: { name: "alice", streamId: "alice_screen" } },
    ]);
    expect(room.heard(out, "l")).toEqual([]);
    expect(publishState(room.state.participants.get("a"))).toBe("live");
    expect(publishState(room.state.participants.get("a"), "screen")).toBe("none");
    // mo's subscription (still being negotiated) to the screen is given up.
    expect(room.state.participants.get("m")?.subscriptions).toEqual({});
  });

  it("unpublishing the webcam: legacy clients get the original notification, multiStream ones the stream id", () => {
    const room = threeRoom();
    room.publish("a");
    room.publish("a", "screen");
    const out = room.req("a", "unpublishVideo", {});
    expect(mediaOps(out)).toContainEqual({ op: "unpublish", user: "alice" });
    expect(room.heard(out, "l", "participantUnpublished")).toEqual([
      { method: "participantUnpublished", params: { name: "alice" } },
    ]);
    expect(room.heard(out, "m", "participantUnpublished")).toEqual([
      { method: "participantUnpublished", params: { name: "alice", streamId: "alice_webcam" } },
    ]);
    expect(publishState(room.state.participants.get("a"), "screen")).toBe("live");
  });

  it("the roster lists every live stream to multiStream clients, only the webcam to others (join and connect)", () => {
    const room = new Room();
    room.join("a", "alice");
    room.publish("a");
    room.publish("a", "screen");
    room.join("b", "bea");
    expect(replyOf(room.join("m", "mo", true))?.value).toEqual([
      { id: "alice", streams: [{ id: "webcam" }, { id: "screen" }] },
      { id: "bea" },
    ]);
    expect(replyOf(room.join("l", "leo"))?.value).toEqual([
      { id: "alice", streams: [{ id: "webcam" }] },
      { id: "bea" },
      { id: "mo" },
    ]);
    room.req("a", "unpublishVideo", {});
    // Only a screen: a legacy client sees a participant without streams.
    expect(replyOf(room.req("l2", "connect", { sessionId: "l" }))?.value).toContainEqual({ id: "alice" });
    expect(replyOf(room.req("m2", "connect", { sessionId: "m" }))?.value).toContainEqual({
      id: "alice",
      streams: [{ id: "screen" }],
    });
  });

  it("at most 3 streams per participant; the same stream twice is refused", () => {
    const room = threeRoom();
    room.publish("a");
    room.publish("a", "screen");
    expect(errorOf(room.publish("a", "screen"))).toMatchObject({
      code: RoomCode.USER_GENERIC,
      message: "User 'alice' is already publishing stream 'screen'",
    });
    room.publish("a", "slides");
    const fourth = room.publish("a", "extra");
    expect(errorOf(fourth)).toMatchObject({ code: RoomCode.USER_GENERIC });
    expect(errorOf(fourth)?.message).toContain("at most 3 per participant");
    expect(mediaOps(fourth)).toEqual([]);
  });

  it("bad stream ids are refused with -32602 naming the field", () => {
    const room = threeRoom();
    for (const streamId of ["Screen", "my_screen", "", "x".repeat(33), "scr een"]) {
      const error = errorOf(room.req("a", "publishVideo", { sdpOffer: "v=0", doLoopback: false, streamId }));
      expect(error?.code).toBe(JsonRpcCode.INVALID_PARAMS);
      expect(error?.message).toContain("streamId");
    }
    expect(errorOf(room.req("a", "unpublishVideo", { streamId: "a_b" }))?.code).toBe(JsonRpcCode.INVALID_PARAMS);
    expect(errorOf(room.req("a", "unpublishVideo", { streamId: "screen" }))).toMatchObject({
      code: RoomCode.USER_NOT_STREAMING,
      message: "User 'alice' is not publishing stream 'screen'",
    });
  });

  it("subscribes to each stream separately, ICE endpoint names: the user for a webcam, <user>_<stream> otherwise", () => {
    const room = threeRoom();
    room.publish("a");
    room.publish("a", "screen");
    const sub = room.req("m", "receiveVideoFrom", { sender: "alice_screen", sdpOffer: "v=0" });
    expect(mediaOps(sub)).toEqual([
      { op: "subscribe", user: "mo", sender: "alice", stream: "screen", sdpOffer: "v=0" },
    ]);
    room.req("m", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" });
    expect(room.state.participants.get("m")?.subscriptions).toEqual({
      alice_screen: "pending",
      alice_webcam: "pending",
    });
    const candidate = { candidate: "candidate:1", sdpMid: "0", sdpMLineIndex: 0 };
    expect(mediaOps(room.req("m", "onIceCandidate", { endpointName: "alice_screen", ...candidate }))).toEqual([
      { op: "addIceCandidate", user: "mo", endpoint: "alice", stream: "screen", ...candidate },
    ]);
    expect(mediaOps(room.req("m", "onIceCandidate", { endpointName: "alice", ...candidate }))).toEqual([
      { op: "addIceCandidate", user: "mo", endpoint: "alice", ...candidate },
    ]);
    expect(mediaOps(room.req("a", "onIceCandidate", { endpointName: "alice_screen", ...candidate }))).toEqual([
      { op: "addIceCandidate", user: "alice", endpoint: "alice", stream: "screen", ...candidate },
    ]);
    expect(errorOf(room.req("l", "onIceCandidate", { endpointName: "alice_screen", ...candidate }))?.code).toBe(
      RoomCode.MEDIA_ENDPOINT,
    );
    const ice = room.input({
      type: "mediaEvent",
      event: { event: "iceCandidate", user: "mo", endpoint: "alice", stream: "screen", ...candidate },
    });
    expect(room.heard(ice, "m")).toEqual([
      { method: "iceCandidate", params: { endpointName: "alice_screen", ...candidate } },
    ]);
    const unsub = room.req("m", "unsubscribeFromVideo", { sender: "alice_screen" });
    expect(replyOf(unsub)).toEqual({ sessionId: "m" });
    expect(room.state.participants.get("m")?.subscriptions).toEqual({ alice_webcam: "pending" });
  });

  it("forceUnpublish stops one stream; the legacy client keeps alice's webcam", () => {
    const room = new Room();
    room.input({
      type: "request",
      session: "x",
      id: 0,
      method: "joinRoom",
      params: { user: "mia", room: "r1" },
      grant: { role: "moderator" },
    });
    room.join("a", "alice", true);
    room.join("l", "leo");
    room.publish("a");
    room.publish("a", "screen");
    const out = room.req("x", "forceUnpublish", { user: "alice", streamId: "alice_screen" });
    expect(replyOf(out)).toEqual({ sessionId: "x" });
    expect(room.heard(out, "a")).toEqual([
      { method: "streamForceUnpublished", params: { streamId: "alice_screen", by: "mia" } },
    ]);
    expect(room.heard(out, "l")).toEqual([]);
    expect(publishState(room.state.participants.get("a"))).toBe("live");
    const admin = room.input({ type: "admin", action: { kind: "unpublish", user: "alice", stream: "webcam" } });
    expect(room.heard(admin, "l")).toEqual([{ method: "participantUnpublished", params: { name: "alice" } }]);
  });

  it("a media loss ends every stream and names them all", () => {
    const room = threeRoom();
    room.publish("a");
    room.publish("a", "screen");
    const out = room.input({ type: "mediaEvent", event: { event: "mediaLost", error: "gone" } });
    expect(room.heard(out, "a", "mediaError")).toEqual([
      { method: "mediaError", params: { error: "gone", streams: ["alice_webcam", "alice_screen"] } },
    ]);
    expect(room.heard(out, "l", "participantUnpublished")).toEqual([
      { method: "participantUnpublished", params: { name: "alice" } },
    ]);
    expect(room.heard(out, "m", "participantUnpublished")).toHaveLength(2);
    expect(room.state.participants.get("a")?.streams).toEqual({});
  });

  it("a recording records every stream, the stream in the file name; the screen's file ends with the screen", () => {
    const room = threeRoom();
    room.publish("a");
    room.publish("a", "screen");
    const started = room.input({ type: "recording", action: { kind: "start", id: "rec_1", token: "t" } });
    expect(mediaOps(started).map((c) => (c.op === "record" ? [c.user, c.stream, c.file] : c.op))).toEqual([
      ["alice", "webcam", "001-alice-webcam.webm"],
      ["alice", "screen", "002-alice-screen.webm"],
    ]);
    const ended = room.req("a", "unpublishVideo", { streamId: "screen" });
    expect(ended).toContainEqual(
      expect.objectContaining({
        kind: "ledger",
        op: expect.objectContaining({ op: "endFile", name: "002-alice-screen.webm" }),
      }),
    );
    expect(room.state.recording?.files).toEqual({ alice_webcam: "001-alice-webcam.webm" });
  });
});

describe("setVideoQuality (simulcast layer per subscriber)", () => {
  it("sends the bridge a setVideoQuality command for a stream being received, and answers at once", () => {
    const room = threeRoom();
    room.publish("a");
    room.req("m", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 offer" });
    const out = room.req("m", "setVideoQuality", { sender: "alice_webcam", quality: "low" });
    expect(mediaOps(out)).toEqual([{ op: "setVideoQuality", user: "mo", sender: "alice", quality: "low" }]);
    expect(replyOf(out)).toEqual({ sessionId: "m" });
  });

  it("refuses a stream not received (101) and bad params (-32602), changing nothing", () => {
    const room = threeRoom();
    room.publish("a");
    const before = room.state;
    const notReceiving = room.req("m", "setVideoQuality", { sender: "alice_webcam", quality: "high" });
    expect(errorOf(notReceiving)?.code).toBe(RoomCode.USER_GENERIC);
    expect(mediaOps(notReceiving)).toEqual([]);
    for (const params of [
      { sender: "alice_webcam", quality: "ultra" },
      { quality: "low" },
      { sender: 7, quality: "low" },
    ]) {
      const bad = room.req("m", "setVideoQuality", params);
      expect(errorOf(bad)?.code).toBe(JsonRpcCode.INVALID_PARAMS);
      expect(mediaOps(bad)).toEqual([]);
    }
    expect(room.state.participants).toEqual(before.participants);
  });
});
