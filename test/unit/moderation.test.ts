/**
 * Moderation in the pure room core (README "Moderation"): moderators (a join
 * token's role, handed to the core beside the params by the adapter) evict
 * and stop streams; everyone else is refused; the administrator's actions
 * arrive as `admin` inputs.
 */
import { testCoreConfig } from "./core-config.ts";
import { describe, expect, it } from "vitest";
import { apply, findByUser } from "../../worker/core/room-core.ts";
import type { CoreContext } from "../../worker/core/hooks.ts";
import { emptyRoom, type Effect, type Input, type Role, type RoomState } from "../../worker/core/types.ts";
import { publishState } from "../../worker/core/streams.ts";
import { JsonRpcCode, RoomCode } from "../../protocol/errors.ts";

const CTX: CoreContext = {
  now: 1_000_000,
  config: testCoreConfig(),
  hooks: {},
};

class Room {
  state: RoomState = emptyRoom("r1");
  id = 1;
  run(input: Input): Effect[] {
    const step = apply(this.state, input, CTX);
    this.state = step.state;
    return step.effects;
  }
  req(session: string, method: string, params: unknown, role?: Role): Effect[] {
    return this.run({ type: "request", session, id: this.id++, method, params, ...(role ? { grant: { role } } : {}) });
  }
  join(session: string, user: string, role?: Role): Effect[] {
    return this.req(session, "joinRoom", { user, room: "r1" }, role);
  }
  publish(session: string): void {
    const out = this.req(session, "publishVideo", { sdpOffer: "v=0", doLoopback: false });
    const media = out.find((e): e is Effect & { kind: "media" } => e.kind === "media" && e.ref !== null);
    if (!media?.ref) throw new Error("no publish command");
    this.run({ type: "mediaResult", ref: media.ref, outcome: { ok: true, value: { sdpAnswer: "v=0 answer" } } });
  }
}

const errorOf = (effects: Effect[]) => effects.find((e): e is Effect & { kind: "error" } => e.kind === "error")?.error;
const notified = (effects: Effect[], session: string) =>
  effects
    .filter((e) => e.kind === "notify" && e.session === session)
    .map((e) => (e.kind === "notify" ? e.notification : null));
const broadcasts = (effects: Effect[]) =>
  effects
    .filter((e) => e.kind === "broadcast" && e.audience !== "multiStream")
    .map((e) => (e.kind === "broadcast" ? [e.except, e.notification] : null));
const mediaOps = (effects: Effect[]) => effects.flatMap((e) => (e.kind === "media" ? [e.command] : []));

describe("moderation in the room core", () => {
  it("a moderator's join answer says so; a participant's does not (the original shape)", () => {
    const room = new Room();
    const mod = room.join("s-mod", "mia", "moderator");
    expect(mod.find((e) => e.kind === "reply")).toMatchObject({ result: { value: [], role: "moderator" } });
    const ann = room.join("s-ann", "ann");
    expect(ann.find((e) => e.kind === "reply")).toEqual(
      expect.objectContaining({ result: { value: [{ id: "mia" }], sessionId: "s-ann" } }),
    );
  });

  it("a role in joinRoom's params grants nothing: only the adapter's grant counts", () => {
    const room = new Room();
    room.req("s-eve", "joinRoom", { user: "eve", room: "r1", role: "moderator" });
    room.join("s-bob", "bob");
    const refused = room.req("s-eve", "evictParticipant", { user: "bob" });
    expect(errorOf(refused)).toEqual({
      code: RoomCode.USER_GENERIC,
      message: "Only moderators can evict participants (a join token with role 'moderator' grants it)",
    });
    expect(findByUser(room.state, "bob")).toBeDefined();
  });

  it("evictParticipant: the user is told and its socket closed, the others get participantLeft, its media released", () => {
    const room = new Room();
    room.join("s-mod", "mia", "moderator");
    room.join("s-bob", "bob");
    room.join("s-cy", "cy");
    room.publish("s-bob");
    const out = room.req("s-mod", "evictParticipant", { user: "bob" });
    expect(notified(out, "s-bob")).toEqual([{ method: "participantEvicted", params: { by: "mia" } }]);
    expect(out).toContainEqual({ kind: "close", session: "s-bob", code: 1000, reason: "evicted" });
    expect(broadcasts(out)).toContainEqual(["s-bob", { method: "participantLeft", params: { name: "bob" } }]);
    expect(mediaOps(out)).toContainEqual({ op: "releaseUser", user: "bob" });
    expect(out.find((e) => e.kind === "reply")).toMatchObject({ session: "s-mod", result: { sessionId: "s-mod" } });
    expect(findByUser(room.state, "bob")).toBeUndefined();
  });

  it("forceUnpublish: the publisher is told, the others get participantUnpublished, the bridge unpublishes", () => {
    const room = new Room();
    room.join("s-mod", "mia", "moderator");
    room.join("s-bob", "bob");
    room.publish("s-bob");
    const out = room.req("s-mod", "forceUnpublish", { user: "bob", streamId: "bob_webcam" });
    expect(notified(out, "s-bob")).toEqual([
      { method: "streamForceUnpublished", params: { streamId: "bob_webcam", by: "mia" } },
    ]);
    expect(broadcasts(out)).toContainEqual(["s-bob", { method: "participantUnpublished", params: { name: "bob" } }]);
    expect(mediaOps(out)).toEqual([{ op: "unpublish", user: "bob" }]);
    expect(publishState(findByUser(room.state, "bob"))).toBe("none");
  });

  it("refuses what cannot be done: unknown user, someone else's stream, nobody publishing, self-eviction, bad params", () => {
    const room = new Room();
    room.join("s-mod", "mia", "moderator");
    room.join("s-bob", "bob");
    expect(errorOf(room.req("s-mod", "evictParticipant", { user: "zed" }))?.code).toBe(RoomCode.USER_NOT_FOUND);
    expect(errorOf(room.req("s-mod", "forceUnpublish", { user: "bob" }))).toEqual({
      code: RoomCode.USER_NOT_STREAMING,
      message: "User 'bob' is not publishing",
    });
    expect(errorOf(room.req("s-mod", "forceUnpublish", { user: "bob", streamId: "mia_webcam" }))?.code).toBe(
      RoomCode.USER_NOT_STREAMING,
    );
    expect(errorOf(room.req("s-mod", "evictParticipant", { user: "mia" }))?.message).toMatch(/leaveRoom/);
    expect(errorOf(room.req("s-mod", "evictParticipant", {}))?.code).toBe(JsonRpcCode.INVALID_PARAMS);
    expect(errorOf(room.req("s-bob", "forceUnpublish", { user: "mia" }))?.message).toMatch(/Only moderators/);
    expect(room.state.participants.size).toBe(2);
  });

  it("stopping a publish still negotiating fails it for the publisher and undoes it on the bridge", () => {
    const room = new Room();
    room.join("s-mod", "mia", "moderator");
    room.join("s-bob", "bob");
    const publishing = room.req("s-bob", "publishVideo", { sdpOffer: "v=0", doLoopback: false });
    const out = room.req("s-mod", "forceUnpublish", { user: "bob" });
    const failed = out.find((e) => e.kind === "error" && e.session === "s-bob");
    expect(failed).toMatchObject({
      error: { code: RoomCode.MEDIA_GENERIC, message: "Publishing was stopped by 'mia'" },
    });
    expect(mediaOps(out)).toEqual([{ op: "unpublish", user: "bob" }]);
    expect(publishState(findByUser(room.state, "bob"))).toBe("none");
    expect(room.state.pending.size).toBe(0);
    expect(publishing.some((e) => e.kind === "media")).toBe(true);
  });

  it("the administrator's actions need no role and name no moderator", () => {
    const room = new Room();
    room.join("s-bob", "bob");
    room.join("s-cy", "cy");
    room.publish("s-bob");
    const unpublished = room.run({ type: "admin", action: { kind: "unpublish", user: "bob", stream: "webcam" } });
    expect(notified(unpublished, "s-bob")).toEqual([
      { method: "streamForceUnpublished", params: { streamId: "bob_webcam" } },
    ]);
    const evicted = room.run({ type: "admin", action: { kind: "evict", user: "cy" } });
    expect(notified(evicted, "s-cy")).toEqual([{ method: "participantEvicted", params: {} }]);
    expect([...room.state.participants.values()].map((p) => p.user)).toEqual(["bob"]);
  });
});
