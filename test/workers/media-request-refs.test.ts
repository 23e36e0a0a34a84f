/**
 * Media requests matched by their persisted ref (README "The media bridge link"), inside workerd
 * with a fake bridge:
 * - each command that answers a client request goes out with its pending ref as JSON-RPC id, so
 *   the bridge's answer reaches the client even when the room object was evicted in between, and a
 *   late answer can never settle a newer request;
 * - the deadline is in the pending row and the room's alarm enforces it (an evicted instance's
 *   timers do not exist in production), then the bridge is told to undo the command;
 * - a request that waited for a bridge to attach when the object was evicted fails at once (301)
 *   when the room restarts, and is never sent;
 * - a late answer to a subscription try that was given up is never taken for the next try.
 */
import { evictDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import {
  attachedLink,
  closeAll,
  connectBridge,
  flushLink,
  join,
  mediaTimeoutMs,
  nextAttach,
  openRoomLink,
  roomStub,
  SLACK_MS,
  storedAlarm,
  storedPending,
} from "./fake-bridge.ts";
import type { Client, Frame } from "./ws-client.ts";

const TEST = { timeout: 2 * mediaTimeoutMs() + 4 * SLACK_MS };

afterEach(closeAll);

function send(client: Client, method: string, params: Record<string, unknown>): number {
  const id = client.nextId++;
  client.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  return id;
}

function answersTo(client: Client, id: number): Frame[] {
  return client.frames.filter((f) => f.id === id && f.method === undefined);
}

function answer(client: Client, id: number, timeoutMs = SLACK_MS): Promise<Frame> {
  return client.waitFor((f) => f.id === id && f.method === undefined, `the answer to request ${id}`, timeoutMs);
}

describe("eviction between a media command and its answer", () => {
  it(
    "the bridge's answer reaches the publisher by ref, exactly once; the others see participantPublished",
    TEST,
    async () => {
      const link = await attachedLink("refs-1", "refs-1-bridge");
      const { client: alice } = await join("refs-1", "alice");
      const { client: bob } = await join("refs-1", "bob");
      const id = send(alice, "publishVideo", { sdpOffer: "v=0 alice", doLoopback: false });
      const publish = await link.incoming("publish");
      // The command's id is the stored pending ref.
      expect((await storedPending("refs-1")).map((r) => r.ref)).toEqual([publish.id]);

      await evictDurableObject(roomStub("refs-1"));
      link.reply(publish.id, { sdpAnswer: "v=0 answer after eviction" });

      expect((await answer(alice, id)).result).toEqual({
        sdpAnswer: "v=0 answer after eviction",
        sessionId: expect.any(String),
      });
      expect((await bob.waitFor((f) => f.method === "participantPublished", "participantPublished")).params).toEqual({
        id: "alice",
        streams: [{ id: "webcam" }],
      });
      await flushLink(link, "alice", alice, "after-answer");
      expect(answersTo(alice, id)).toHaveLength(1);
      expect(await storedPending("refs-1")).toEqual([]);
      expect(link.frames.filter((f) => f.method === "unpublish")).toEqual([]);
    },
  );

  it("a late answer for the evicted instance's command never settles a request of the new one", TEST, async () => {
    const link = await attachedLink("refs-2", "refs-2-bridge");
    const { client: alice } = await join("refs-2", "alice");
    const { client: bob } = await join("refs-2", "bob");
    const aliceId = send(alice, "publishVideo", { sdpOffer: "v=0 alice", doLoopback: false });
    const first = await link.incoming("publish");

    await evictDurableObject(roomStub("refs-2"));
    const bobId = send(bob, "publishVideo", { sdpOffer: "v=0 bob", doLoopback: false });
    const second = await link.incoming("publish");
    expect(second.params).toMatchObject({ user: "bob" });
    expect(second.id).not.toBe(first.id);

    link.reply(first.id, { sdpAnswer: "v=0 for alice" });
    expect((await answer(alice, aliceId)).result).toMatchObject({ sdpAnswer: "v=0 for alice" });
    await flushLink(link, "bob", bob, "after-first");
    expect(answersTo(bob, bobId)).toEqual([]);
    link.reply(second.id, { sdpAnswer: "v=0 for bob" });
    expect((await answer(bob, bobId)).result).toMatchObject({ sdpAnswer: "v=0 for bob" });
  });

  it(
    "a bridge that never answers: the room's alarm answers 301 at the stored deadline and the bridge is told to unpublish",
    TEST,
    async () => {
      const link = await attachedLink("refs-3", "refs-3-bridge");
      const { client: alice } = await join("refs-3", "alice");
      const { client: bob } = await join("refs-3", "bob");
      const sentAt = Date.now();
      const id = send(alice, "publishVideo", { sdpOffer: "v=0 alice", doLoopback: false });
      const publish = await link.incoming("publish");
      // The deadline is in the row, and the alarm is set for it: nothing depends on a timer in memory.
      const [row] = await storedPending("refs-3");
      const deadline = (JSON.parse(row?.data ?? "{}") as { deadline?: number }).deadline ?? 0;
      expect(deadline).toBeGreaterThanOrEqual(sentAt + mediaTimeoutMs());
      expect(await storedAlarm("refs-3")).toBe(deadline);

      await evictDurableObject(roomStub("refs-3"));
      const timedOut = await answer(alice, id, mediaTimeoutMs() + SLACK_MS);
      expect(timedOut.error).toEqual({ code: 301, message: `publish timed out after ${mediaTimeoutMs()} ms` });
      expect(Date.now()).toBeGreaterThanOrEqual(deadline);
      const undo = await link.waitFor((f) => f.method === "unpublish", "the unpublish undoing alice's publish");
      expect(undo.params).toEqual({ user: "alice" });
      link.reply(undo.id as string, {});
      expect(await storedPending("refs-3")).toEqual([]);

      // The bridge's answer after the deadline changes nothing; a retry is a fresh request.
      link.reply(publish.id, { sdpAnswer: "v=0 too late" });
      await flushLink(link, "bob", bob, "after-late-answer");
      expect(answersTo(alice, id)).toHaveLength(1);
      expect(bob.frames.filter((f) => f.method === "participantPublished")).toEqual([]);
      const retry = alice.request("publishVideo", { sdpOffer: "v=0 retry", doLoopback: false });
      const again = await link.incoming("publish");
      expect(again.id).not.toBe(publish.id);
      link.reply(again.id, { sdpAnswer: "v=0 retry ok" });
      expect((await retry).result).toMatchObject({ sdpAnswer: "v=0 retry ok" });
    },
  );

  it(
    "a publish that waited for a bridge to attach: the bridge that attaches after the restart never gets it; 301 then, and an unpublish",
    TEST,
    async () => {
      const control = await connectBridge("refs-4-bridge");
      const { client: alice } = await join("refs-4", "alice");
      const id = send(alice, "publishVideo", { sdpOffer: "v=0 waits", doLoopback: false });
      const attach = await nextAttach([control], "refs-4");
      // The bridge says it attached, but its room link only arrives after the object went away.
      // (The pool's call is answered first: an object with a call in flight is not evicted at once.)
      control.reply(attach.frame.id, {});
      await evictDurableObject(roomStub("refs-4"));
      expect(await storedPending("refs-4")).toHaveLength(1);

      const link = await openRoomLink("refs-4", "refs-4-bridge");
      link.reply((await link.incoming("sync")).id, { held: [] });
      expect((await answer(alice, id)).error).toEqual({
        code: 301,
        message: "The room restarted while publish waited for the media bridge; try again",
      });
      const undo = await link.incoming("unpublish");
      expect(undo.params).toEqual({ user: "alice" });
      link.reply(undo.id, {});
      await flushLink(link, "alice", alice, "after-attach");
      expect(link.frames.filter((f) => f.method).map((f) => f.method)).toEqual(["sync", "unpublish"]);
      expect(await storedPending("refs-4")).toEqual([]);

      const retry = alice.request("publishVideo", { sdpOffer: "v=0 retry", doLoopback: false });
      const publish = await link.incoming("publish");
      expect(publish.params).toMatchObject({ user: "alice", sdpOffer: "v=0 retry" });
      link.reply(publish.id, { sdpAnswer: "v=0 retry ok" });
      expect((await retry).result).toMatchObject({ sdpAnswer: "v=0 retry ok" });
    },
  );

  it(
    "a publish that waited for a bridge that never comes: the room's alarm answers 301 at the stored deadline after the restart",
    TEST,
    async () => {
      const control = await connectBridge("refs-6-bridge");
      const { client: alice } = await join("refs-6", "alice");
      const sentAt = Date.now();
      const id = send(alice, "publishVideo", { sdpOffer: "v=0 waits", doLoopback: false });
      const attach = await nextAttach([control], "refs-6");
      control.reply(attach.frame.id, {});
      await evictDurableObject(roomStub("refs-6"));

      const failed = await answer(alice, id, mediaTimeoutMs() + SLACK_MS);
      expect(failed.error).toEqual({ code: 301, message: `no media bridge attached within ${mediaTimeoutMs()} ms` });
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(mediaTimeoutMs());
      expect(await storedPending("refs-6")).toEqual([]);

      // The retry summons a bridge again, which attaches this time.
      const retry = alice.request("publishVideo", { sdpOffer: "v=0 retry", doLoopback: false });
      const second = await nextAttach([control], "refs-6");
      const link = await openRoomLink("refs-6", "refs-6-bridge");
      control.reply(second.frame.id, {});
      link.reply((await link.incoming("sync")).id, { held: [] });
      const publish = await link.incoming("publish");
      expect(publish.params).toMatchObject({ user: "alice", sdpOffer: "v=0 retry" });
      link.reply(publish.id, { sdpAnswer: "v=0 retry ok" });
      expect((await retry).result).toMatchObject({ sdpAnswer: "v=0 retry ok" });
    },
  );
});

describe("a late answer to a subscription try that was given up", () => {
  it(
    "is not taken for the next try: the client gets the second try's answer, the bridge one unsubscribe",
    TEST,
    async () => {
      const link = await attachedLink("refs-5", "refs-5-bridge");
      const { client: alice } = await join("refs-5", "alice");
      const { client: bob } = await join("refs-5", "bob");
      const published = alice.request("publishVideo", { sdpOffer: "v=0 alice", doLoopback: false });
      link.reply((await link.incoming("publish")).id, { sdpAnswer: "v=0 alice ok" });
      expect((await published).result).toMatchObject({ sdpAnswer: "v=0 alice ok" });

      const firstId = send(bob, "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 first" });
      const first = await link.incoming("subscribe");
      const unsubscribed = await bob.request("unsubscribeFromVideo", { sender: "alice_webcam" });
      expect(unsubscribed.error).toBeUndefined();
      expect((await answer(bob, firstId)).error?.code).toBe(301);
      const undo = await link.incoming("unsubscribe");
      expect(undo.params).toEqual({ user: "bob", sender: "alice" });
      link.reply(undo.id, {});

      const secondId = send(bob, "receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 second" });
      const second = await link.incoming("subscribe");
      expect(second.id).not.toBe(first.id);
      link.reply(first.id, { sdpAnswer: "v=0 answer to the first try" });
      await flushLink(link, "bob", bob, "after-first-answer");
      expect(answersTo(bob, secondId)).toEqual([]);
      link.reply(second.id, { sdpAnswer: "v=0 answer to the second try" });
      expect((await answer(bob, secondId)).result).toMatchObject({ sdpAnswer: "v=0 answer to the second try" });
      expect(answersTo(bob, firstId)).toHaveLength(1);
      expect(link.frames.filter((f) => f.method === "unsubscribe")).toHaveLength(1);
    },
  );
});
