/**
 * Webhooks (README "Webhooks"): the room's events read off successive states,
 * and the signature a receiver checks (timestamp + body, HMAC-SHA256,
 * constant-time comparison, a tolerance against replay).
 */
import { describe, expect, it } from "vitest";
import { roomEvents } from "../../worker/core/room-events.ts";
import { emptyRoom, type Participant, type PublishState, type RoomState } from "../../worker/core/types.ts";
import { withStream } from "../../worker/core/streams.ts";
import { signWebhook, verifyWebhook, type WebhookEvent } from "../../protocol/webhooks.ts";

function seat(user: string, publish: PublishState = "none"): Participant {
  return {
    session: `s-${user}`,
    user,
    multiStream: false,
    streams: publish === "none" ? {} : { webcam: { state: publish, loopback: false } },
    dataChannels: false,
    subscriptions: {},
    attributes: {},
    disconnectedAt: null,
    role: "participant",
  };
}

function room(...people: Participant[]): RoomState {
  return { ...emptyRoom("r"), participants: new Map(people.map((p) => [p.session, p])) };
}

describe("room events for webhooks", () => {
  it("the first join creates the room, the last leave closes it", () => {
    const empty = room();
    const one = room(seat("ann"));
    expect(roomEvents(empty, one)).toEqual([
      { type: "roomCreated", data: {} },
      { type: "participantJoined", data: { user: "ann" } },
    ]);
    expect(roomEvents(one, empty)).toEqual([
      { type: "participantLeft", data: { user: "ann" } },
      { type: "roomClosed", data: {} },
    ]);
  });

  it("publishing and unpublishing; a publisher who leaves unpublishes first", () => {
    const ann = seat("ann");
    const before = room(ann, seat("bob"));
    const live = room(withStream(ann, "webcam", { state: "live", loopback: false }), seat("bob"));
    expect(
      roomEvents(before, room(withStream(ann, "webcam", { state: "pending", loopback: false }), seat("bob"))),
    ).toEqual([]);
    expect(roomEvents(before, live)).toEqual([
      { type: "streamPublished", data: { user: "ann", streamId: "ann_webcam" } },
    ]);
    expect(roomEvents(live, before)).toEqual([
      { type: "streamUnpublished", data: { user: "ann", streamId: "ann_webcam" } },
    ]);
    expect(roomEvents(live, room(seat("bob")))).toEqual([
      { type: "streamUnpublished", data: { user: "ann", streamId: "ann_webcam" } },
      { type: "participantLeft", data: { user: "ann" } },
    ]);
  });

  it("nothing for a change that is not an event (a dropped socket, a chat)", () => {
    const ann = seat("ann");
    const state = room(ann);
    expect(roomEvents(state, state)).toEqual([]);
    expect(roomEvents(state, room({ ...ann, disconnectedAt: 5 }))).toEqual([]);
  });
});

describe("webhook signatures", () => {
  const secret = "a-webhook-secret-of-some-length";
  const event: WebhookEvent = {
    id: "e1",
    type: "participantJoined",
    room: "r",
    timestamp: 1_700_000_000_000,
    seq: 1,
    data: { user: "ann" },
  };
  const body = JSON.stringify(event);
  const now = 1_700_000_000;

  it("a receiver accepts what the worker signed, and reads the event", async () => {
    const signature = await signWebhook(secret, now, body);
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(await verifyWebhook(secret, { signature, timestamp: String(now), body }, now + 10)).toEqual({
      ok: true,
      event,
    });
  });

  it("refuses a changed body, another secret, a replay outside the tolerance, a missing header", async () => {
    const signature = await signWebhook(secret, now, body);
    const changed = body.replace("ann", "eve");
    expect(await verifyWebhook(secret, { signature, timestamp: String(now), body: changed }, now)).toEqual({
      ok: false,
      reason: "bad signature",
    });
    const forged = await signWebhook("another-secret-of-some-length", now, body);
    expect((await verifyWebhook(secret, { signature: forged, timestamp: String(now), body }, now)).ok).toBe(false);
    // The timestamp is signed: moving it forward breaks the signature, keeping it fails the tolerance.
    expect(await verifyWebhook(secret, { signature, timestamp: String(now), body }, now + 301)).toEqual({
      ok: false,
      reason: "timestamp too far from now",
    });
    expect((await verifyWebhook(secret, { signature, timestamp: String(now + 301), body }, now + 301)).ok).toBe(false);
    expect((await verifyWebhook(secret, { signature: null, timestamp: String(now), body }, now)).ok).toBe(false);
    expect((await verifyWebhook(secret, { signature, timestamp: "soon", body }, now)).ok).toBe(false);
  });
});
