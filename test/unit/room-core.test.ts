import { describe, expect, it } from "vitest";
import { apply, findByUser } from "../../worker/core/room-core.ts";
import { hatFilterHandler } from "../../worker/core/hat-filter.ts";
import type { CoreContext, RoomHooks } from "../../worker/core/hooks.ts";
import {
  emptyRoom,
  inAudience,
  type Effect,
  type Input,
  type MediaOutcome,
  type RoomState,
} from "../../worker/core/types.ts";
import { publishState } from "../../worker/core/streams.ts";
import { RoomCode, JsonRpcCode, INVALID_SESSION_CODE } from "../../protocol/errors.ts";
import type { MediaCommand } from "../../protocol/bridge.ts";

/** Drives the pure core like the Durable Object does, recording every effect. */
class Room {
  state: RoomState;
  now = 1_000_000;
  effects: Effect[] = [];
  nextId = 1;
  readonly hooks: RoomHooks;
  readonly windowMs: number;
  readonly authRegex: RegExp;
  readonly maxParticipants: number;
  readonly maxIceCandidates: number;
  readonly mediaTimeoutMs: number;

  constructor(
    opts: {
      hooks?: RoomHooks;
      windowMs?: number;
      authRegex?: RegExp;
      maxParticipants?: number;
      maxIceCandidates?: number;
      mediaTimeoutMs?: number;
    } = {},
  ) {
    this.state = emptyRoom("r1");
    this.hooks = opts.hooks ?? { customRequest: hatFilterHandler };
    this.windowMs = opts.windowMs ?? 10_000;
    this.authRegex = opts.authRegex ?? /^(?:.*)$/;
    this.maxParticipants = opts.maxParticipants ?? 100;
    this.maxIceCandidates = opts.maxIceCandidates ?? 100;
    this.mediaTimeoutMs = opts.mediaTimeoutMs ?? 25_000;
  }

  ctx(): CoreContext {
    return {
      now: this.now,
      config: {
        authRegex: this.authRegex,
        reconnectWindowMs: this.windowMs,
        maxParticipants: this.maxParticipants,
        maxIceCandidates: this.maxIceCandidates,
        mediaTimeoutMs: this.mediaTimeoutMs,
      },
      hooks: this.hooks,
    };
  }

  input(input: Input): Effect[] {
    const step = apply(this.state, input, this.ctx());
    this.state = step.state;
    this.effects.push(...step.effects);
    return step.effects;
  }

  req(session: string, method: string, params?: unknown): Effect[] {
    return this.input({ type: "request", session, id: this.nextId++, method, params });
  }

  join(session: string, user: string): Effect[] {
    return this.req(session, "joinRoom", { user, room: "r1" });
  }

  /** Publishes and completes the media round trip with an answer. */
  publish(session: string, loopback = false): Effect[] {
    const out = this.req(session, "publishVideo", { sdpOffer: "v=0 offer", doLoopback: loopback });
    return [...out, ...this.completeMedia(out, { ok: true, value: { sdpAnswer: "v=0 answer" } })];
  }

  completeMedia(effects: Effect[], outcome: MediaOutcome): Effect[] {
    const media = effects.find((e): e is Effect & { kind: "media" } => e.kind === "media" && e.ref !== null);
    if (!media || media.ref === null) throw new Error("no media request among the effects");
    return this.input({ type: "mediaResult", ref: media.ref, outcome });
  }
}

function notificationsTo(effects: Effect[], room: Room, session: string, method?: string) {
  const out: { method: string; params: unknown }[] = [];
  for (const e of effects) {
    if (e.kind === "notify" && e.session === session) out.push(e.notification);
    if (e.kind === "broadcast" && e.except !== session) {
      const p = room.state.participants.get(session);
      if (p && p.disconnectedAt === null && inAudience(p, e.audience)) out.push(e.notification);
    }
  }
  return method ? out.filter((n) => n.method === method) : out;
}

function broadcasts(effects: Effect[], method: string) {
  return effects.filter(
    // What the legacy clients of these tests hear (multiStream ones: test/unit/multi-stream.test.ts).
    (e): e is Effect & { kind: "broadcast" } =>
      e.kind === "broadcast" && e.notification.method === method && e.audience !== "multiStream",
  );
}

function replyOf(effects: Effect[]) {
  const e = effects.find((x) => x.kind === "reply" || x.kind === "error");
  if (!e) throw new Error("no reply");
  return e;
}

function errorCode(effects: Effect[]): number {
  const e = replyOf(effects);
  if (e.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(e)}`);
  return e.error.code;
}

function resultOf(effects: Effect[]): Record<string, unknown> {
  const e = replyOf(effects);
  if (e.kind !== "reply") throw new Error(`expected a result, got ${JSON.stringify(e)}`);
  return e.result;
}

function mediaCommands(effects: Effect[]): MediaCommand[] {
  return effects.filter((e): e is Effect & { kind: "media" } => e.kind === "media").map((e) => e.command);
}

describe("joinRoom", () => {
  it("the k-th join produces k-1 participantJoined and lists the k-1 existing users", () => {
    const room = new Room();
    for (let k = 1; k <= 6; k++) {
      const effects = room.join(`s${k}`, `user${k}`);
      const joined = broadcasts(effects, "participantJoined");
      // one broadcast, delivered to every other connected participant
      const deliveries = [...room.state.participants.keys()].filter((s) => s !== `s${k}`).length;
      expect(joined).toHaveLength(1);
      expect(joined[0]?.except).toBe(`s${k}`);
      expect(deliveries).toBe(k - 1);
      const result = resultOf(effects);
      expect((result.value as unknown[]).map((p) => (p as { id: string }).id)).toEqual(
        Array.from({ length: k - 1 }, (_, i) => `user${i + 1}`),
      );
      expect(result.sessionId).toBe(`s${k}`);
    }
  });

  it("tells the others before answering the joiner", () => {
    const room = new Room();
    room.join("a", "alice");
    const effects = room.join("b", "bob");
    const kinds = effects.map((e) => e.kind);
    expect(kinds.indexOf("broadcast")).toBeLessThan(kinds.indexOf("reply"));
  });

  it("opens the room in the directory on the first join only", () => {
    const room = new Room();
    expect(room.join("a", "alice").filter((e) => e.kind === "directory")).toEqual([{ kind: "directory", open: true }]);
    expect(room.join("b", "bob").filter((e) => e.kind === "directory")).toEqual([]);
  });

  it("lists the streams of peers that publish", () => {
    const room = new Room();
    room.join("a", "alice");
    room.publish("a");
    const result = resultOf(room.join("b", "bob"));
    expect(result.value).toEqual([{ id: "alice", streams: [{ id: "webcam" }] }]);
  });

  it("refuses a duplicate user name with 104 and leaves state unchanged", () => {
    const room = new Room();
    room.join("a", "alice");
    const before = room.state;
    expect(errorCode(room.join("b", "alice"))).toBe(RoomCode.EXISTING_USER_IN_ROOM);
    expect(room.state).toBe(before);
  });

  it("refuses a second join on one session with 101", () => {
    const room = new Room();
    room.join("a", "alice");
    expect(errorCode(room.join("a", "alice2"))).toBe(RoomCode.USER_GENERIC);
    expect(room.state.participants.size).toBe(1);
  });

  it("refuses a join for another room name on this room's connection", () => {
    const room = new Room();
    expect(errorCode(room.req("a", "joinRoom", { user: "alice", room: "elsewhere" }))).toBe(RoomCode.ROOM_GENERIC);
  });

  it("authRegex gates room creation (204) but not joining an existing room", () => {
    const room = new Room({ authRegex: /^(?:special.*)$/ });
    expect(errorCode(room.join("a", "alice"))).toBe(RoomCode.ROOM_CANNOT_BE_CREATED);
    expect(room.state.participants.size).toBe(0);
    expect(resultOf(room.join("s", "specialUser")).value).toEqual([]);
    expect(resultOf(room.join("a", "alice")).value).toEqual([{ id: "specialUser" }]);
  });

  it("an authorizeJoin hook can refuse a join", () => {
    const room = new Room({
      hooks: {
        authorizeJoin: ({ user }) => (user === "mallory" ? { code: RoomCode.USER_GENERIC, message: "banned" } : null),
      },
    });
    expect(errorCode(room.join("m", "mallory"))).toBe(RoomCode.USER_GENERIC);
    expect(resultOf(room.join("a", "alice")).value).toEqual([]);
  });

  it.each([
    ["empty", ""],
    ["blank", "   "],
    ["too long", "x".repeat(129)],
    ["control characters", "bad\u0007name"],
  ])("rejects a %s user name with -32602 naming the field", (_label, user) => {
    const room = new Room();
    const effects = room.req("a", "joinRoom", { user, room: "r1" });
    const e = replyOf(effects);
    expect(e.kind === "error" && e.error.code).toBe(JsonRpcCode.INVALID_PARAMS);
    expect(e.kind === "error" && e.error.message).toContain("user");
    expect(room.state.participants.size).toBe(0);
  });

  it("ignores unknown extra params (the original client's setRpcParams)", () => {
    const room = new Room();
    expect(resultOf(room.req("a", "joinRoom", { user: "alice", room: "r1", token: "t", anything: 1 })).value).toEqual(
      [],
    );
  });
});

describe("requests that need membership", () => {
  it.each([
    "publishVideo",
    "unpublishVideo",
    "receiveVideoFrom",
    "unsubscribeFromVideo",
    "onIceCandidate",
    "sendMessage",
    "customRequest",
    "leaveRoom",
  ])("%s before joinRoom gets 102 when its params are valid", (method) => {
    const room = new Room();
    const params: Record<string, unknown> = {
      publishVideo: { sdpOffer: "v=0" },
      receiveVideoFrom: { sender: "bob_webcam", sdpOffer: "v=0" },
      unsubscribeFromVideo: { sender: "bob_webcam" },
      onIceCandidate: { endpointName: "bob", candidate: "c", sdpMid: "0", sdpMLineIndex: 0 },
      sendMessage: { message: "m", userMessage: "a", roomMessage: "r1" },
      customRequest: { hat: true },
    };
    expect(errorCode(room.req("x", method, params[method] ?? {}))).toBe(RoomCode.USER_NOT_FOUND);
  });

  it("answers unknown methods with -32601 and ignores unknown notifications", () => {
    const room = new Room();
    expect(errorCode(room.req("a", "fooBar", {}))).toBe(JsonRpcCode.METHOD_NOT_FOUND);
    expect(room.input({ type: "request", session: "a", id: null, method: "fooBar", params: {} })).toEqual([]);
  });

  it("ping answers pong with the session id, joined or not", () => {
    const room = new Room();
    expect(resultOf(room.req("a", "ping", { interval: 5000 }))).toEqual({ value: "pong", sessionId: "a" });
  });
});

describe("publish and subscribe", () => {
  it("a publish in a room of N produces N-1 participantPublished, after the publisher's answer", () => {
    const room = new Room();
    for (const [i, s] of ["a", "b", "c", "d"].entries()) room.join(s, `u${i}`);
    const out = room.req("a", "publishVideo", { sdpOffer: "v=0 offer", doLoopback: true });
    expect(mediaCommands(out)).toEqual([
      { op: "publish", user: "u0", sdpOffer: "v=0 offer", loopback: true, dataChannels: false },
    ]);
    expect(out.some((e) => e.kind === "reply")).toBe(false);
    const done = room.completeMedia(out, { ok: true, value: { sdpAnswer: "v=0 answer" } });
    expect(done[0]).toMatchObject({ kind: "reply", session: "a", result: { sdpAnswer: "v=0 answer", sessionId: "a" } });
    for (const s of ["b", "c", "d"]) {
      expect(notificationsTo(done, room, s, "participantPublished")).toEqual([
        { method: "participantPublished", params: { id: "u0", streams: [{ id: "webcam" }] } },
      ]);
    }
    expect(notificationsTo(done, room, "a", "participantPublished")).toEqual([]);
  });

  it("a failed publish answers the error and leaves the user not publishing", () => {
    const room = new Room();
    room.join("a", "alice");
    const out = room.req("a", "publishVideo", { sdpOffer: "v=0" });
    const done = room.completeMedia(out, { ok: false, error: { code: RoomCode.MEDIA_SDP, message: "bad sdp" } });
    expect(errorCode(done)).toBe(RoomCode.MEDIA_SDP);
    expect(publishState(findByUser(room.state, "alice"))).toBe("none");
    expect(room.state.pending.size).toBe(0);
  });

  it("refuses a second publish", () => {
    const room = new Room();
    room.join("a", "alice");
    room.publish("a");
    expect(errorCode(room.req("a", "publishVideo", { sdpOffer: "v=0" }))).toBe(RoomCode.USER_GENERIC);
  });

  it("an unpublish in a room of N produces N-1 participantUnpublished and drops subscriptions to it", () => {
    const room = new Room();
    for (const [i, s] of ["a", "b", "c"].entries()) room.join(s, `u${i}`);
    room.publish("a");
    const sub = room.req("b", "receiveVideoFrom", { sender: "u0_webcam", sdpOffer: "v=0" });
    room.completeMedia(sub, { ok: true, value: { sdpAnswer: "ans" } });
    expect(findByUser(room.state, "u1")?.subscriptions).toEqual({ u0_webcam: "live" });
    const out = room.req("a", "unpublishVideo", {});
    expect(resultOf(out)).toEqual({ sessionId: "a" });
    expect(mediaCommands(out)).toEqual([{ op: "unpublish", user: "u0" }]);
    expect(notificationsTo(out, room, "b", "participantUnpublished")).toHaveLength(1);
    expect(notificationsTo(out, room, "c", "participantUnpublished")).toHaveLength(1);
    expect(notificationsTo(out, room, "a", "participantUnpublished")).toHaveLength(0);
    expect(findByUser(room.state, "u1")?.subscriptions).toEqual({});
  });

  it("unpublish without publishing is 105", () => {
    const room = new Room();
    room.join("a", "alice");
    expect(errorCode(room.req("a", "unpublishVideo"))).toBe(RoomCode.USER_NOT_STREAMING);
  });

  it("subscribes to a publisher, splitting the sender at the last underscore", () => {
    const room = new Room();
    room.join("a", "alice_smith");
    room.join("b", "bob");
    room.publish("a");
    const out = room.req("b", "receiveVideoFrom", { sender: "alice_smith_webcam", sdpOffer: "v=0 sub" });
    expect(mediaCommands(out)).toEqual([{ op: "subscribe", user: "bob", sender: "alice_smith", sdpOffer: "v=0 sub" }]);
    const done = room.completeMedia(out, { ok: true, value: { sdpAnswer: "v=0 sub answer" } });
    expect(resultOf(done)).toEqual({ sdpAnswer: "v=0 sub answer", sessionId: "b" });
  });

  it("receiving one's own stream is 105, a non-publisher is 105, an unknown user 102, another stream 105", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    expect(errorCode(room.req("a", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" }))).toBe(
      RoomCode.USER_NOT_STREAMING,
    );
    expect(errorCode(room.req("a", "receiveVideoFrom", { sender: "bob_webcam", sdpOffer: "v=0" }))).toBe(
      RoomCode.USER_NOT_STREAMING,
    );
    expect(errorCode(room.req("b", "receiveVideoFrom", { sender: "carol_webcam", sdpOffer: "v=0" }))).toBe(
      RoomCode.USER_NOT_FOUND,
    );
    expect(errorCode(room.req("b", "receiveVideoFrom", { sender: "alice_screen", sdpOffer: "v=0" }))).toBe(
      RoomCode.USER_NOT_STREAMING,
    );
  });

  it("rejects a sender without an underscore as invalid params", () => {
    const room = new Room();
    room.join("a", "alice");
    expect(errorCode(room.req("a", "receiveVideoFrom", { sender: "alice", sdpOffer: "v=0" }))).toBe(
      JsonRpcCode.INVALID_PARAMS,
    );
  });

  it("unsubscribes, and refuses to unsubscribe from what it does not receive", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    room.completeMedia(room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" }), {
      ok: true,
      value: { sdpAnswer: "x" },
    });
    const out = room.req("b", "unsubscribeFromVideo", { sender: "alice_webcam" });
    expect(resultOf(out)).toEqual({ sessionId: "b" });
    expect(mediaCommands(out)).toEqual([{ op: "unsubscribe", user: "bob", sender: "alice" }]);
    expect(errorCode(room.req("b", "unsubscribeFromVideo", { sender: "alice_webcam" }))).toBe(RoomCode.USER_GENERIC);
  });

  it("routes client ICE candidates to known endpoints only, even before the SDP answer", () => {
    const room = new Room();
    room.join("a", "alice");
    const cand = { candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0 };
    expect(errorCode(room.req("a", "onIceCandidate", { endpointName: "alice", ...cand }))).toBe(
      RoomCode.MEDIA_ENDPOINT,
    );
    room.req("a", "publishVideo", { sdpOffer: "v=0" }); // pending
    const out = room.req("a", "onIceCandidate", { endpointName: "alice", ...cand });
    expect(resultOf(out)).toEqual({ sessionId: "a" });
    expect(mediaCommands(out)).toEqual([{ op: "addIceCandidate", user: "alice", endpoint: "alice", ...cand }]);
  });

  it("delivers server ICE candidates to their user and media errors to their user or everyone", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    const ice = room.input({
      type: "mediaEvent",
      event: { event: "iceCandidate", user: "bob", endpoint: "alice", candidate: "c", sdpMid: "0", sdpMLineIndex: 0 },
    });
    expect(ice).toEqual([
      {
        kind: "notify",
        session: "b",
        notification: {
          method: "iceCandidate",
          params: { endpointName: "alice", candidate: "c", sdpMid: "0", sdpMLineIndex: 0 },
        },
      },
    ]);
    const own = room.input({
      type: "mediaEvent",
      event: { event: "mediaError", user: "alice", error: "ERR: element" },
    });
    expect(own).toEqual([
      { kind: "notify", session: "a", notification: { method: "mediaError", params: { error: "ERR: element" } } },
    ]);
    const all = room.input({ type: "mediaEvent", event: { event: "mediaError", error: "ERR: pipeline" } });
    expect(all).toEqual([
      { kind: "broadcast", except: null, notification: { method: "mediaError", params: { error: "ERR: pipeline" } } },
    ]);
  });

  it("passes the streams a bridge mediaError names through to the client", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    const streams = ["alice_webcam", "bob_webcam"];
    const own = room.input({
      type: "mediaEvent",
      event: { event: "mediaError", user: "alice", error: "ERR: element", streams },
    });
    expect(own).toEqual([
      {
        kind: "notify",
        session: "a",
        notification: { method: "mediaError", params: { error: "ERR: element", streams } },
      },
    ]);
    const all = room.input({
      type: "mediaEvent",
      event: { event: "mediaError", error: "ERR: pipeline", streams: ["bob_webcam"] },
    });
    expect(all).toEqual([
      {
        kind: "broadcast",
        except: null,
        notification: { method: "mediaError", params: { error: "ERR: pipeline", streams: ["bob_webcam"] } },
      },
    ]);
  });

  it("ignores a media result for a request whose asker has left", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    const out = room.req("a", "publishVideo", { sdpOffer: "v=0" });
    room.req("a", "leaveRoom");
    const late = room.completeMedia(out, { ok: true, value: { sdpAnswer: "x" } });
    expect(late).toEqual([]);
  });
});

describe("leaveRoom", () => {
  it("a leave produces one participantLeft per remaining user, then the answer, then the close", () => {
    const room = new Room();
    for (const [i, s] of ["a", "b", "c"].entries()) room.join(s, `u${i}`);
    const out = room.req("b", "leaveRoom", {});
    expect(notificationsTo(out, room, "a", "participantLeft")).toEqual([
      { method: "participantLeft", params: { name: "u1" } },
    ]);
    expect(notificationsTo(out, room, "c", "participantLeft")).toHaveLength(1);
    const kinds = out.map((e) => e.kind);
    expect(kinds.indexOf("broadcast")).toBeLessThan(kinds.indexOf("reply"));
    expect(kinds.indexOf("reply")).toBeLessThan(kinds.indexOf("close"));
    expect(mediaCommands(out)).toEqual([{ op: "releaseUser", user: "u1" }]);
    expect(room.state.participants.size).toBe(2);
  });

  it("the last one out closes the room and releases its media", () => {
    const room = new Room();
    room.join("a", "alice");
    const out = room.req("a", "leaveRoom");
    expect(mediaCommands(out)).toEqual([{ op: "releaseUser", user: "alice" }, { op: "releaseRoom" }]);
    expect(out).toContainEqual({ kind: "directory", open: false });
    expect(room.state.participants.size).toBe(0);
  });

  it("drops the leaver from the others' subscriptions", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    room.completeMedia(room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" }), {
      ok: true,
      value: { sdpAnswer: "x" },
    });
    room.req("a", "leaveRoom");
    expect(findByUser(room.state, "bob")?.subscriptions).toEqual({});
  });
});

describe("sendMessage", () => {
  it("reaches everyone, sender included, once", () => {
    const room = new Room();
    for (const [i, s] of ["a", "b", "c"].entries()) room.join(s, `u${i}`);
    const out = room.req("a", "sendMessage", { message: "hello", userMessage: "u0", roomMessage: "r1" });
    expect(resultOf(out)).toEqual({ sessionId: "a" });
    for (const s of ["a", "b", "c"]) {
      expect(notificationsTo(out, room, s, "sendMessage")).toEqual([
        { method: "sendMessage", params: { room: "r1", user: "u0", message: "hello" } },
      ]);
    }
  });

  it("checks the user (102) and the room (202) it claims", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    expect(errorCode(room.req("a", "sendMessage", { message: "x", userMessage: "bob", roomMessage: "r1" }))).toBe(
      RoomCode.USER_NOT_FOUND,
    );
    expect(errorCode(room.req("a", "sendMessage", { message: "x", userMessage: "alice", roomMessage: "r2" }))).toBe(
      RoomCode.ROOM_NOT_FOUND,
    );
  });

  it("does not copy state for a chat message", () => {
    const room = new Room();
    room.join("a", "alice");
    const before = room.state;
    room.req("a", "sendMessage", { message: "x", userMessage: "alice", roomMessage: "r1" });
    expect(room.state).toBe(before);
  });
});

describe("customRequest (hat filter)", () => {
  it("puts a hat on a publisher's video and takes it off", () => {
    const room = new Room();
    room.join("a", "alice");
    room.publish("a");
    const on = room.req("a", "customRequest", { hat: true });
    expect(mediaCommands(on)).toEqual([{ op: "applyFilter", user: "alice", filter: "hat" }]);
    expect(resultOf(room.completeMedia(on, { ok: true, value: {} }))).toEqual({ sessionId: "a" });
    expect(findByUser(room.state, "alice")?.attributes).toEqual({ hat: true });
    expect(errorCode(room.req("a", "customRequest", { hat: true }))).toBe(RoomCode.USER_GENERIC);
    const off = room.req("a", "customRequest", { hat: false });
    expect(mediaCommands(off)).toEqual([{ op: "removeFilter", user: "alice", filter: "hat" }]);
    room.completeMedia(off, { ok: true, value: {} });
    expect(findByUser(room.state, "alice")?.attributes).toEqual({ hat: false });
  });

  it("gives the original's errors", () => {
    const room = new Room();
    room.join("a", "alice");
    const missing = replyOf(room.req("a", "customRequest", {}));
    expect(missing.kind === "error" && missing.error).toMatchObject({
      code: JsonRpcCode.INVALID_PARAMS,
      message: expect.stringContaining("'hat' is missing"),
    });
    const noHat = replyOf(room.req("a", "customRequest", { hat: false }));
    expect(noHat.kind === "error" && noHat.error.message).toBe("This user has no hat filter yet");
    expect(errorCode(room.req("a", "customRequest", { hat: true }))).toBe(RoomCode.USER_NOT_STREAMING);
  });

  it("relays a media server's refusal and keeps the hat off", () => {
    const room = new Room();
    room.join("a", "alice");
    room.publish("a");
    const on = room.req("a", "customRequest", { hat: true });
    const done = room.completeMedia(on, {
      ok: false,
      error: { code: RoomCode.MEDIA_GENERIC, message: "filters unsupported" },
    });
    expect(errorCode(done)).toBe(RoomCode.MEDIA_GENERIC);
    expect(findByUser(room.state, "alice")?.attributes).toEqual({});
  });

  it("without a handler, customRequest is refused clearly", () => {
    const room = new Room({ hooks: {} });
    room.join("a", "alice");
    expect(errorCode(room.req("a", "customRequest", { hat: true }))).toBe(RoomCode.GENERIC);
  });
});

describe("reconnection window", () => {
  it("keeps the seat of a dropped socket, then expires it with participantLeft", () => {
    const room = new Room({ windowMs: 10_000 });
    room.join("a", "alice");
    room.join("b", "bob");
    const drop = room.input({ type: "socketClosed", session: "b" });
    expect(drop).toEqual([{ kind: "alarm", at: room.now + 10_000 }]);
    expect(findByUser(room.state, "bob")?.disconnectedAt).toBe(room.now);
    // a join meanwhile still sees bob, and bob's name is still taken
    expect(errorCode(room.join("c", "bob"))).toBe(RoomCode.EXISTING_USER_IN_ROOM);
    room.now += 5_000;
    const early = room.input({ type: "tick" });
    expect(early).toEqual([{ kind: "alarm", at: room.now + 5_000 }]);
    room.now += 5_000;
    const late = room.input({ type: "tick" });
    expect(notificationsTo(late, room, "a", "participantLeft")).toEqual([
      { method: "participantLeft", params: { name: "bob" } },
    ]);
    expect(mediaCommands(late)).toEqual([{ op: "releaseUser", user: "bob" }]);
    expect(late.at(-1)).toEqual({ kind: "alarm", at: null });
  });

  it("connect {sessionId} resumes the seat on a new socket", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.input({ type: "socketClosed", session: "b" });
    const out = room.req("b2", "connect", { sessionId: "b" });
    expect(out).toContainEqual({ kind: "bind", from: "b2", to: "b" });
    expect(out).toContainEqual(
      expect.objectContaining({ kind: "reply", session: "b", result: { value: [{ id: "alice" }], sessionId: "b" } }),
    );
    expect(out).toContainEqual({ kind: "alarm", at: null });
    expect(findByUser(room.state, "bob")?.disconnectedAt).toBeNull();
    expect(resultOf(room.req("b", "sendMessage", { message: "back", userMessage: "bob", roomMessage: "r1" }))).toEqual({
      sessionId: "b",
    });
  });

  it("connect tells a resumed session what it missed: who joined and who publishes now", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.input({ type: "socketClosed", session: "b" });
    room.join("c", "carol");
    room.publish("c");
    const out = room.req("b2", "connect", { sessionId: "b" });
    expect(resultOf(out)).toEqual({
      value: [{ id: "alice" }, { id: "carol", streams: [{ id: "webcam" }] }],
      sessionId: "b",
    });
  });

  it("connect with an unknown session is 40007; without one it just answers", () => {
    const room = new Room();
    expect(errorCode(room.req("x", "connect", { sessionId: "nope" }))).toBe(INVALID_SESSION_CODE);
    expect(resultOf(room.req("x", "connect", {}))).toEqual({ sessionId: "x" });
  });

  it("a zero window removes a dropped participant at once", () => {
    const room = new Room({ windowMs: 0 });
    room.join("a", "alice");
    room.join("b", "bob");
    const out = room.input({ type: "socketClosed", session: "b" });
    expect(notificationsTo(out, room, "a", "participantLeft")).toHaveLength(1);
    expect(room.state.participants.size).toBe(1);
  });

  it("a closed socket of a non-member changes nothing", () => {
    const room = new Room();
    room.join("a", "alice");
    const before = room.state;
    expect(room.input({ type: "socketClosed", session: "zzz" })).toEqual([]);
    expect(room.state).toBe(before);
  });
});

describe("server-side close", () => {
  it("evicts everyone: participantEvicted, roomClosed, then the close; releases the room", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    const out = room.input({ type: "close", reason: "admin" });
    for (const s of ["a", "b"]) {
      const mine = out.filter((e) => "session" in e && e.session === s);
      expect(mine).toEqual([
        { kind: "notify", session: s, notification: { method: "participantEvicted", params: {} } },
        { kind: "notify", session: s, notification: { method: "roomClosed", params: { room: "r1" } } },
        { kind: "close", session: s, code: 1000, reason: "room closed" },
      ]);
    }
    expect(mediaCommands(out)).toEqual([{ op: "releaseRoom" }]);
    expect(out).toContainEqual({ kind: "directory", open: false });
    expect(room.state.participants.size).toBe(0);
  });
});

describe("media lost (media server restart, bridge replaced)", () => {
  it("resets the users' media, tells them, and unpublishes their streams for the others", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.join("c", "carol");
    room.publish("a");
    room.completeMedia(room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" }), {
      ok: true,
      value: { sdpAnswer: "x" },
    });
    const out = room.input({ type: "mediaEvent", event: { event: "mediaLost", error: "media server restarted" } });
    expect(notificationsTo(out, room, "a", "mediaError")).toEqual([
      { method: "mediaError", params: { error: "media server restarted", streams: ["alice_webcam"] } },
    ]);
    expect(notificationsTo(out, room, "b", "mediaError")).toHaveLength(1);
    expect(notificationsTo(out, room, "c", "mediaError")).toHaveLength(0); // carol had no media
    expect(notificationsTo(out, room, "b", "participantUnpublished")).toEqual([
      { method: "participantUnpublished", params: { name: "alice" } },
    ]);
    expect(publishState(findByUser(room.state, "alice"))).toBe("none");
    expect(findByUser(room.state, "bob")?.subscriptions).toEqual({});
    // alice can publish again
    expect(resultOf(room.publish("a"))).toMatchObject({ sdpAnswer: "v=0 answer" });
  });

  it("names, for each participant, the stream ids it lost: its own published stream and the senders it received", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.join("c", "carol");
    room.publish("a");
    room.publish("b");
    const answer = { ok: true, value: { sdpAnswer: "x" } } as const;
    room.completeMedia(room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" }), answer);
    room.completeMedia(room.req("c", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" }), answer);
    room.completeMedia(room.req("c", "receiveVideoFrom", { sender: "bob_webcam", sdpOffer: "v=0" }), answer);
    const out = room.input({ type: "mediaEvent", event: { event: "mediaLost", error: "restart" } });
    const streamsOf = (session: string) =>
      notificationsTo(out, room, session, "mediaError").map((n) => (n.params as { streams?: string[] }).streams);
    expect(streamsOf("a")).toEqual([["alice_webcam"]]);
    expect(streamsOf("b")).toEqual([["bob_webcam", "alice_webcam"]]);
    expect(streamsOf("c")).toEqual([["alice_webcam", "bob_webcam"]]);
  });

  it("a loss limited to some users names only their streams; a subscriber of theirs hears participantUnpublished", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    room.publish("b");
    const answer = { ok: true, value: { sdpAnswer: "x" } } as const;
    room.completeMedia(room.req("a", "receiveVideoFrom", { sender: "bob_webcam", sdpOffer: "v=0" }), answer);
    const out = room.input({ type: "mediaEvent", event: { event: "mediaLost", users: ["bob"], error: "lost" } });
    expect(notificationsTo(out, room, "b", "mediaError")).toEqual([
      { method: "mediaError", params: { error: "lost", streams: ["bob_webcam"] } },
    ]);
    expect(notificationsTo(out, room, "a", "mediaError")).toEqual([]);
    expect(notificationsTo(out, room, "a", "participantUnpublished")).toEqual([
      { method: "participantUnpublished", params: { name: "bob" } },
    ]);
  });

  it("only touches the users named", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    room.publish("b");
    room.input({ type: "mediaEvent", event: { event: "mediaLost", users: ["bob"], error: "lost" } });
    expect(publishState(findByUser(room.state, "alice"))).toBe("live");
    expect(publishState(findByUser(room.state, "bob"))).toBe("none");
  });
});

/** The ref of the media request among `effects` (the command's JSON-RPC id on the bridge link). */
function refOf(effects: Effect[]): string {
  const media = effects.find((e): e is Effect & { kind: "media" } => e.kind === "media" && e.ref !== null);
  if (!media || media.ref === null) throw new Error("no media request among the effects");
  return media.ref;
}

const ok = (sdpAnswer: string): MediaOutcome => ({ ok: true, value: { sdpAnswer } });

describe("media requests overtaken by events", () => {
  it("a publish whose media was reset meanwhile gets an error at once, the bridge undoes it, its late result changes nothing", () => {
    const room = new Room();
    room.join("a", "alice");
    const out = room.req("a", "publishVideo", { sdpOffer: "v=0" });
    const reset = room.input({ type: "mediaEvent", event: { event: "mediaLost", error: "restart" } });
    expect(errorCode(reset)).toBe(RoomCode.MEDIA_GENERIC);
    expect(mediaCommands(reset)).toEqual([{ op: "unpublish", user: "alice" }]);
    expect(room.state.pending.size).toBe(0);
    expect(room.completeMedia(out, ok("x"))).toEqual([]);
    expect(publishState(findByUser(room.state, "alice"))).toBe("none");
  });

  it("a subscription whose publisher unpublished meanwhile gets an error at once, undone on the bridge", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    const sub = room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" });
    const unpub = room.req("a", "unpublishVideo");
    const bobsError = unpub.find((e) => e.kind === "error" && e.session === "b");
    expect(bobsError).toMatchObject({ error: { code: RoomCode.MEDIA_GENERIC } });
    expect(mediaCommands(unpub)).toEqual([
      { op: "unsubscribe", user: "bob", sender: "alice" },
      { op: "unpublish", user: "alice" },
    ]);
    expect(room.completeMedia(sub, ok("x"))).toEqual([]);
    expect(findByUser(room.state, "bob")?.subscriptions).toEqual({});
  });

  it("a late answer to an unsubscribed try is never taken for the next try of the same subscription", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    const first = room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 first" });
    const firstId = room.nextId - 1;
    const unsub = room.req("b", "unsubscribeFromVideo", { sender: "alice_webcam" });
    // The try in flight gets 301, the unsubscription its {} answer; one unsubscribe reaches the bridge.
    expect(unsub.filter((e) => e.kind === "error")).toMatchObject([{ id: firstId, error: { code: 301 } }]);
    expect(unsub.filter((e) => e.kind === "reply")).toHaveLength(1);
    expect(mediaCommands(unsub)).toEqual([{ op: "unsubscribe", user: "bob", sender: "alice" }]);
    const second = room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 second" });
    const secondId = room.nextId - 1;
    expect(refOf(second)).not.toBe(refOf(first));

    // The first try's answer arrives late: ignored, the second try still pending.
    expect(room.completeMedia(first, ok("answer to the first"))).toEqual([]);
    expect(findByUser(room.state, "bob")?.subscriptions).toEqual({ alice_webcam: "pending" });
    const done = room.completeMedia(second, ok("answer to the second"));
    expect(done.filter((e) => e.kind !== "alarm")).toEqual([
      { kind: "reply", session: "b", id: secondId, result: { sdpAnswer: "answer to the second", sessionId: "b" } },
    ]);
    expect(findByUser(room.state, "bob")?.subscriptions).toEqual({ alice_webcam: "live" });
  });

  it("a late answer to a publish reset by a media loss is never taken for the next publish", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    const first = room.req("a", "publishVideo", { sdpOffer: "v=0 first" });
    room.input({ type: "mediaEvent", event: { event: "mediaLost", users: ["alice"], error: "lost" } });
    const second = room.req("a", "publishVideo", { sdpOffer: "v=0 second" });
    expect(mediaCommands(second)).toHaveLength(1);
    expect(room.completeMedia(first, ok("stale"))).toEqual([]);
    expect(publishState(findByUser(room.state, "alice"))).toBe("pending");
    const done = room.completeMedia(second, ok("fresh"));
    expect(resultOf(done)).toEqual({ sdpAnswer: "fresh", sessionId: "a" });
    expect(broadcasts(done, "participantPublished")).toHaveLength(1);
  });

  it("a result for a ref the room never had changes nothing", () => {
    const room = new Room();
    room.join("a", "alice");
    room.req("a", "publishVideo", { sdpOffer: "v=0" });
    const before = room.state;
    expect(room.input({ type: "mediaResult", ref: "media-999", outcome: ok("x") })).toEqual([]);
    expect(room.state).toBe(before);
  });
});

describe("a media request whose asker's socket dropped", () => {
  it("publish: given up when the socket closes, undone on the bridge; the late result sends no answer and no participantPublished", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    const out = room.req("a", "publishVideo", { sdpOffer: "v=0" });
    const drop = room.input({ type: "socketClosed", session: "a" });
    expect(mediaCommands(drop)).toEqual([{ op: "unpublish", user: "alice" }]);
    expect(drop.filter((e) => e.kind === "reply" || e.kind === "error")).toEqual([]);
    expect(findByUser(room.state, "alice")).toMatchObject({ streams: {}, disconnectedAt: room.now });
    expect(room.state.pending.size).toBe(0);

    expect(room.completeMedia(out, ok("nobody reads this"))).toEqual([]);
    expect(publishState(findByUser(room.state, "alice"))).toBe("none");

    // Back within the window: the roster says alice publishes nothing, and she can publish again.
    const back = room.req("a2", "connect", { sessionId: "a" });
    expect(resultOf(back)).toEqual({ value: [{ id: "bob" }], sessionId: "a" });
    const again = room.publish("a");
    expect(broadcasts(again, "participantPublished")).toHaveLength(1);
  });

  it("subscribe: the same; the live subscriptions of the dropped user are kept for the window", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.join("c", "carol");
    room.publish("a");
    room.publish("c");
    const live = room.req("b", "receiveVideoFrom", { sender: "carol_webcam", sdpOffer: "v=0" });
    room.completeMedia(live, ok("live"));
    const sub = room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" });
    const drop = room.input({ type: "socketClosed", session: "b" });
    expect(mediaCommands(drop)).toEqual([{ op: "unsubscribe", user: "bob", sender: "alice" }]);
    expect(findByUser(room.state, "bob")?.subscriptions).toEqual({ carol_webcam: "live" });
    expect(room.completeMedia(sub, ok("late"))).toEqual([]);
  });

  it("a result for an asker marked dropped while still pending (rows stored before): interrupted, undone, no answer, no broadcast", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    const out = room.req("a", "publishVideo", { sdpOffer: "v=0" });
    // Such a row: alice dropped, her publish still pending (as earlier versions of the room left it).
    const alice = room.state.participants.get("a");
    if (!alice) throw new Error("alice not seated");
    const participants = new Map(room.state.participants).set("a", { ...alice, disconnectedAt: room.now });
    room.state = { ...room.state, participants };

    const late = room.completeMedia(out, ok("nobody reads this"));
    expect(late).toEqual([{ kind: "media", command: { op: "unpublish", user: "alice" }, ref: null }]);
    expect(publishState(findByUser(room.state, "alice"))).toBe("none");
    expect(room.state.pending.size).toBe(0);

    // A failed result for such an asker: nothing to undo, nothing to say.
    const out2 = room.req("b", "publishVideo", { sdpOffer: "v=0" });
    const bob = room.state.participants.get("b");
    if (!bob) throw new Error("bob not seated");
    room.state = {
      ...room.state,
      participants: new Map(room.state.participants).set("b", { ...bob, disconnectedAt: room.now }),
    };
    const failed = room.completeMedia(out2, { ok: false, error: { code: 301, message: "boom" } });
    expect(failed).toEqual([]);
    expect(publishState(findByUser(room.state, "bob"))).toBe("none");
  });
});

describe("media request deadlines (MEDIA_TIMEOUT_MS)", () => {
  it("the request names the alarm at its deadline; the tick there answers 301 and undoes it on the bridge", () => {
    const room = new Room({ mediaTimeoutMs: 5_000 });
    room.join("a", "alice");
    const out = room.req("a", "publishVideo", { sdpOffer: "v=0" });
    const deadline = room.now + 5_000;
    expect(out).toContainEqual({ kind: "alarm", at: deadline });
    expect([...room.state.pending.values()][0]?.deadline).toBe(deadline);

    room.now = deadline - 1;
    const early = room.input({ type: "tick" });
    expect(early).toEqual([{ kind: "alarm", at: deadline }]);
    expect(room.state.pending.size).toBe(1);

    room.now = deadline;
    const due = room.input({ type: "tick" });
    expect(errorCode(due)).toBe(RoomCode.MEDIA_GENERIC);
    expect(mediaCommands(due)).toEqual([{ op: "unpublish", user: "alice" }]);
    expect(due).toContainEqual({ kind: "alarm", at: null });
    expect(publishState(findByUser(room.state, "alice"))).toBe("none");
    // The bridge's answer after the deadline changes nothing; a retry is a fresh request.
    expect(room.completeMedia(out, ok("too late"))).toEqual([]);
    expect(broadcasts(room.publish("a"), "participantPublished")).toHaveLength(1);
  });

  it("mediaGiveUp (the adapter's precise wording) answers with its error and undoes a subscription", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    const sub = room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0" });
    const error = { code: 301, message: "subscribe timed out after 25000 ms" };
    const out = room.input({ type: "mediaGiveUp", ref: refOf(sub), error });
    expect(out.find((e) => e.kind === "error")).toMatchObject({ session: "b", error });
    expect(mediaCommands(out)).toEqual([{ op: "unsubscribe", user: "bob", sender: "alice" }]);
    expect(findByUser(room.state, "bob")?.subscriptions).toEqual({});
    // Twice (the tick after the adapter): nothing more.
    expect(room.input({ type: "mediaGiveUp", ref: refOf(sub), error })).toEqual([]);
  });

  it("a hat that timed out is taken off on the bridge (the handler's undo), and stays off", () => {
    const room = new Room();
    room.join("a", "alice");
    room.publish("a");
    const on = room.req("a", "customRequest", { hat: true });
    room.now += 25_000;
    const due = room.input({ type: "tick" });
    expect(errorCode(due)).toBe(RoomCode.MEDIA_GENERIC);
    expect(mediaCommands(due)).toEqual([{ op: "removeFilter", user: "alice", filter: "hat" }]);
    expect(room.completeMedia(on, { ok: true, value: {} })).toEqual([]);
    expect(findByUser(room.state, "alice")?.attributes).toEqual({});
  });
});

describe("limits and names (safe to deploy)", () => {
  const cand = { candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0 };

  it("a full room refuses the next join with 201 saying it is full, and changes nothing", () => {
    const room = new Room({ maxParticipants: 3 });
    for (const [s, u] of [
      ["a", "alice"],
      ["b", "bob"],
      ["c", "carol"],
    ] as const)
      resultOf(room.join(s, u));
    const before = room.state;
    const out = room.join("d", "dave");
    const error = replyOf(out);
    expect(error).toMatchObject({ kind: "error", error: { code: RoomCode.ROOM_GENERIC } });
    expect(error.kind === "error" && error.error.message).toMatch(/is full \(at most 3 participants\)/);
    expect(out.filter((e) => e.kind === "broadcast")).toEqual([]);
    expect(room.state).toBe(before);
    // A seat held for a dropped socket counts; once it is freed, the next join fits.
    room.input({ type: "socketClosed", session: "c" });
    expect(errorCode(room.join("d", "dave"))).toBe(RoomCode.ROOM_GENERIC);
    room.req("b", "leaveRoom");
    expect(resultOf(room.join("d", "dave")).sessionId).toBe("d");
  });

  it("a second receiveVideoFrom of the same sender, pending or live, gets 101 and no media command", () => {
    const room = new Room();
    room.join("a", "alice");
    room.join("b", "bob");
    room.publish("a");
    const first = room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 one" });
    expect(mediaCommands(first)).toHaveLength(1);
    const pendingState = room.state;
    const again = room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 two" });
    expect(errorCode(again)).toBe(RoomCode.USER_GENERIC);
    expect(replyOf(again).kind === "error" && (replyOf(again) as { error: { message: string } }).error.message).toMatch(
      /already receiving media from 'alice'/,
    );
    expect(mediaCommands(again)).toEqual([]);
    expect(room.state).toBe(pendingState);
    // The first request still completes normally.
    expect(resultOf(room.completeMedia(first, { ok: true, value: { sdpAnswer: "v=0 ans" } }))).toMatchObject({
      sdpAnswer: "v=0 ans",
    });
    const live = room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 three" });
    expect(errorCode(live)).toBe(RoomCode.USER_GENERIC);
    expect(mediaCommands(live)).toEqual([]);
    expect(findByUser(room.state, "bob")?.subscriptions).toEqual({ alice_webcam: "live" });
    // After unsubscribing, subscribing again works.
    room.req("b", "unsubscribeFromVideo", { sender: "alice_webcam" });
    expect(
      mediaCommands(room.req("b", "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 4" })),
    ).toHaveLength(1);
  });

  it("caps ICE candidates per endpoint: the excess gets 303 and no media command; a new negotiation restarts the count", () => {
    const room = new Room({ maxIceCandidates: 3 });
    room.join("a", "alice");
    room.join("b", "bob");
    room.req("a", "publishVideo", { sdpOffer: "v=0" });
    for (let i = 0; i < 3; i++) {
      const ok = room.req("a", "onIceCandidate", { endpointName: "alice", ...cand });
      expect(mediaCommands(ok)).toHaveLength(1);
    }
    const excess = room.req("a", "onIceCandidate", { endpointName: "alice", ...cand });
    expect(errorCode(excess)).toBe(RoomCode.MEDIA_ENDPOINT);
    expect((replyOf(excess) as { error: { message: string } }).error.message).toMatch(/Too many ICE candidates/);
    expect(mediaCommands(excess)).toEqual([]);
    // Another endpoint has its own count; nothing of this is persisted state.
    room.completeMedia(room.effects, { ok: true, value: { sdpAnswer: "x" } });
    room.publish("b");
    room.req("a", "receiveVideoFrom", { sender: "bob_webcam", sdpOffer: "v=0" });
    expect(mediaCommands(room.req("a", "onIceCandidate", { endpointName: "bob", ...cand }))).toHaveLength(1);
    // Publishing again (a new negotiation) restarts alice's own count.
    room.req("a", "unpublishVideo");
    room.req("a", "publishVideo", { sdpOffer: "v=0 again" });
    expect(mediaCommands(room.req("a", "onIceCandidate", { endpointName: "alice", ...cand }))).toHaveLength(1);
    // Leaving forgets the counts.
    room.req("a", "leaveRoom");
    expect(room.state.iceCandidates.has("a")).toBe(false);
  });

  it("compares names after NFC normalisation: a decomposed 'é' is the same user (104)", () => {
    const room = new Room();
    const composed = "Ren\u00e9";
    const decomposed = "Rene\u0301";
    expect(resultOf(room.join("a", composed)).sessionId).toBe("a");
    expect(errorCode(room.join("b", decomposed))).toBe(RoomCode.EXISTING_USER_IN_ROOM);
    // The decomposed form also names the composed user's stream and endpoint.
    room.join("c", "carol");
    room.publish("a");
    const out = room.req("c", "receiveVideoFrom", { sender: `${decomposed}_webcam`, sdpOffer: "v=0" });
    expect(mediaCommands(out)).toMatchObject([{ op: "subscribe", sender: composed }]);
  });

  it("refuses '.', '..', bidi controls and invisible characters in names with -32602 naming the field", () => {
    const room = new Room();
    const refused = (params: Record<string, unknown>, field: string) => {
      const before = room.state;
      const e = replyOf(room.req("x", "joinRoom", params));
      expect(e).toMatchObject({ kind: "error", error: { code: JsonRpcCode.INVALID_PARAMS } });
      expect((e as { error: { message: string } }).error.message).toContain(field);
      expect(room.state).toBe(before);
    };
    refused({ user: ".", room: "r1" }, "user");
    refused({ user: "..", room: "r1" }, "user");
    for (const ch of ["\u202a", "\u202e", "\u2066", "\u2069", "\u200b", "\u200f", "\ufeff", "\u2060", "\u0085"]) {
      refused({ user: `ad${ch}min`, room: "r1" }, "user");
      refused({ user: "ok", room: `r${ch}1` }, "room");
    }
    // Ordinary non-ASCII names still work.
    expect(resultOf(room.join("y", "Zoë 李")).sessionId).toBe("y");
  });
});
