/**
 * Room-side media timeouts (README: MEDIA_TIMEOUT_MS, "every media call is
 * bounded … by MEDIA_TIMEOUT_MS in the room"), inside workerd with a fake
 * bridge: a bridge that never answers a command, and one that never opens the
 * room link after `attach`. The client gets 301 after MEDIA_TIMEOUT_MS (not
 * before, and not never), the pending request is gone from storage, and a
 * retry works; a command that was sent is undone on the bridge (`unpublish`).
 *
 * The bounds are read from the bindings, so the tests hold for any configured
 * MEDIA_TIMEOUT_MS; the upper bound is generous (a busy machine), the lower
 * one is exact (the room must not give up early).
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  answerAttach,
  closeAll,
  connectBridge,
  join,
  mediaTimeoutMs,
  nextAttach,
  openRoomLink,
  SLACK_MS,
  storedPending,
  storedRoster,
} from "./fake-bridge.ts";
import type { Client, Frame } from "./ws-client.ts";

const TEST = { timeout: 3 * mediaTimeoutMs() + 4 * SLACK_MS };

afterEach(closeAll);

/** Sends publishVideo and waits (bounded above MEDIA_TIMEOUT_MS) for its answer; returns it and the time it took. */
async function timedPublish(client: Client, sdpOffer: string): Promise<{ answer: Frame; elapsedMs: number }> {
  const id = client.nextId++;
  const started = Date.now();
  client.ws.send(
    JSON.stringify({ jsonrpc: "2.0", id, method: "publishVideo", params: { sdpOffer, doLoopback: false } }),
  );
  const answer = await client.waitFor(
    (f) => f.id === id && f.method === undefined,
    "the publish answer",
    mediaTimeoutMs() + SLACK_MS,
  );
  return { answer, elapsedMs: Date.now() - started };
}

async function expectNothingPending(room: string, user: string): Promise<void> {
  expect(await storedPending(room)).toEqual([]);
  const me = (await storedRoster(room)).find((p) => p.user === user);
  expect(me?.streams).toEqual({});
}

describe("MEDIA_TIMEOUT_MS in the room", () => {
  it(
    "a bridge that never answers a command: 301 after the timeout, nothing left pending, a retry works",
    TEST,
    async () => {
      await connectBridge("mute-bridge");
      const { client: alice } = await join("mute-1", "alice");
      // The bridge's room link is already open (no summon involved): only the command can time out.
      const link = await openRoomLink("mute-1", "mute-bridge");
      link.reply((await link.incoming("sync")).id, { held: [] });

      const pending = timedPublish(alice, "v=0 never answered");
      const ignored = await link.incoming("publish");
      const { answer, elapsedMs } = await pending;
      expect(answer.error?.code).toBe(301);
      expect(answer.error?.message).toBe(`publish timed out after ${mediaTimeoutMs()} ms`);
      expect(elapsedMs).toBeGreaterThanOrEqual(mediaTimeoutMs());
      await expectNothingPending("mute-1", "alice");
      // The room gave up, so the bridge is told to drop whatever it built (or still builds) for it.
      const undo = await link.incoming("unpublish");
      expect(undo.params).toEqual({ user: "alice" });
      link.reply(undo.id, {});

      // The same link still serves the room: the retry is sent to it and answered.
      const retry = alice.request("publishVideo", { sdpOffer: "v=0 retry", doLoopback: false });
      const publish = await link.incoming("publish");
      expect(publish.id).not.toBe(ignored.id);
      expect(publish.params).toMatchObject({ user: "alice", sdpOffer: "v=0 retry" });
      link.reply(publish.id, { sdpAnswer: "v=0 retry ok" });
      expect((await retry).result).toMatchObject({ sdpAnswer: "v=0 retry ok" });
      // A late answer to the command that timed out changes nothing.
      link.reply(ignored.id, { sdpAnswer: "v=0 too late" });
      const chat = await alice.request("sendMessage", {
        message: "after",
        userMessage: "alice",
        roomMessage: "mute-1",
      });
      expect(chat.error).toBeUndefined();
      expect(alice.frames.filter((f) => f.result?.sdpAnswer !== undefined).map((f) => f.result?.sdpAnswer)).toEqual([
        "v=0 retry ok",
      ]);
    },
  );

  for (const variant of ["never answers the attach", "answers the attach but never opens the room link"] as const) {
    it(
      `a bridge that ${variant}: 301 after the timeout, nothing left pending, a retry summons again`,
      TEST,
      async () => {
        const room = variant === "never answers the attach" ? "stuck-1" : "stuck-2";
        const control = await connectBridge(`stuck-${room}`);
        const { client: alice } = await join(room, "alice");
        const pending = timedPublish(alice, "v=0 no link");
        const first = await nextAttach([control], room);
        if (variant !== "never answers the attach") control.reply(first.frame.id, {});
        const { answer, elapsedMs } = await pending;
        expect(answer.error).toEqual({ code: 301, message: `no media bridge attached within ${mediaTimeoutMs()} ms` });
        expect(elapsedMs).toBeGreaterThanOrEqual(mediaTimeoutMs());
        await expectNothingPending(room, "alice");
        // The stuck attach is finally refused (as the real bridge does after ATTACH_TIMEOUT_MS).
        if (variant === "never answers the attach")
          control.replyError(first.frame.id, 301, "could not open the room link");

        // The retry summons the bridge again; this time it attaches.
        const retry = alice.request("publishVideo", { sdpOffer: "v=0 retry", doLoopback: false });
        const second = await nextAttach([control], room);
        expect(second.frame.id).not.toBe(first.frame.id);
        const link = await answerAttach(control, second.frame, `stuck-${room}`);
        const publish = await link.incoming("publish");
        expect(publish.params).toMatchObject({ user: "alice", sdpOffer: "v=0 retry" });
        link.reply(publish.id, { sdpAnswer: "v=0 retry ok" });
        expect((await retry).result).toMatchObject({ sdpAnswer: "v=0 retry ok" });
      },
    );
  }
});
