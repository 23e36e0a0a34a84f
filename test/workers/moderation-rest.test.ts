/**
 * The moderation REST API inside workerd (README "Moderation"): admin token
 * required; rooms and participants listed; evicting a participant and
 * stopping its stream reach the users and the media bridge (a fake bridge at
 * the protocol seam); bad input gets 400/404/409 and changes nothing.
 */
import { SELF } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import {
  answerAttach,
  closeAll,
  connectBridge,
  join,
  nextAttach,
  SLACK_MS,
  waitForBridgeCount,
} from "./fake-bridge.ts";

const TEST = { timeout: 4 * SLACK_MS };
const AUTH = { Authorization: "Bearer test-admin-token" };

afterEach(closeAll);

function api(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`https://example.com${path}`, { ...init, headers: { ...AUTH, ...init.headers } });
}

describe("moderation REST API", () => {
  it("refuses without the admin token, on every route", TEST, async () => {
    for (const [method, path] of [
      ["GET", "/api/rooms"],
      ["GET", "/api/rooms/any"],
      ["DELETE", "/api/rooms/any"],
      ["POST", "/api/rooms/any/participants/bob/evict"],
      ["POST", "/api/rooms/any/participants/bob/unpublish"],
    ] as const) {
      const response = await SELF.fetch(`https://example.com${path}`, { method });
      expect(response.status, `${method} ${path}`).toBe(401);
    }
  });

  it("lists rooms with their counts and a room's participants with their streams", TEST, async () => {
    await join("mod-list", "ann");
    await join("mod-list", "bob");
    const rooms = (await (await api("/api/rooms")).json()) as Array<{ room: string; participants: number }>;
    expect(rooms).toContainEqual({ room: "mod-list", participants: 2 });
    const info = await (await api("/api/rooms/mod-list")).json();
    expect(info).toEqual({
      room: "mod-list",
      participants: [
        { user: "ann", role: "participant", connected: true, publishing: "none", streams: [], subscriptions: [] },
        { user: "bob", role: "participant", connected: true, publishing: "none", streams: [], subscriptions: [] },
      ],
    });
    expect((await api("/api/rooms/mod-nobody")).status).toBe(404);
    expect((await api("/api/rooms/%E2%80%8Bx")).status).toBe(400);
  });

  it("evicts a participant: it is told and closed, the others get participantLeft", TEST, async () => {
    const { client: ann } = await join("mod-evict", "ann");
    const { client: bob } = await join("mod-evict", "bob");
    const response = await api("/api/rooms/mod-evict/participants/bob/evict", { method: "POST" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ room: "mod-evict", user: "bob", done: "evicted" });
    expect((await bob.waitFor((f) => f.method === "participantEvicted", "participantEvicted")).params).toEqual({});
    expect(await bob.closed()).toBe(1000);
    expect((await ann.waitFor((f) => f.method === "participantLeft", "participantLeft")).params).toEqual({
      name: "bob",
    });
    expect((await api("/api/rooms/mod-evict/participants/bob/evict", { method: "POST" })).status).toBe(404);
    expect((await api("/api/rooms/mod-evict/participants/bob/kick", { method: "POST" })).status).toBe(404);
  });

  it(
    "stops a participant's stream: it is told, the others get participantUnpublished, the bridge unpublishes",
    TEST,
    async () => {
      const bridge = await connectBridge("mod-bridge");
      await waitForBridgeCount(1);
      const { client: ann } = await join("mod-unpub", "ann");
      const { client: bob } = await join("mod-unpub", "bob");
      const publishing = bob.request("publishVideo", { sdpOffer: "v=0 bob", doLoopback: false });
      const attach = await nextAttach([bridge], "mod-unpub");
      const link = await answerAttach(bridge, attach.frame, "mod-bridge");
      link.reply((await link.incoming("publish")).id, { sdpAnswer: "v=0 answer" });
      expect((await publishing).result).toMatchObject({ sdpAnswer: "v=0 answer" });

      // Bad input changes nothing.
      const notJson = await api("/api/rooms/mod-unpub/participants/bob/unpublish", { method: "POST", body: "{" });
      expect(notJson.status).toBe(400);
      const extra = await api("/api/rooms/mod-unpub/participants/bob/unpublish", {
        method: "POST",
        body: JSON.stringify({ streamId: "bob_webcam", force: true }),
      });
      expect(extra.status).toBe(400);
      const wrongStream = await api("/api/rooms/mod-unpub/participants/bob/unpublish", {
        method: "POST",
        body: JSON.stringify({ streamId: "ann_webcam" }),
      });
      expect(wrongStream.status).toBe(404);
      expect((await api("/api/rooms/mod-unpub/participants/ann/unpublish", { method: "POST" })).status).toBe(409);

      const done = await api("/api/rooms/mod-unpub/participants/bob/unpublish", {
        method: "POST",
        body: JSON.stringify({ streamId: "bob_webcam" }),
      });
      expect(await done.json()).toEqual({ room: "mod-unpub", user: "bob", done: "unpublished" });
      const told = await bob.waitFor((f) => f.method === "streamForceUnpublished", "streamForceUnpublished");
      expect(told.params).toEqual({ streamId: "bob_webcam" });
      await ann.waitFor(
        (f) => f.method === "participantUnpublished" && f.params?.name === "bob",
        "participantUnpublished",
      );
      const unpublish = await link.incoming("unpublish");
      expect(unpublish.params).toEqual({ user: "bob" });
      link.reply(unpublish.id, {});
      const info = (await (await api("/api/rooms/mod-unpub")).json()) as {
        participants: Array<{ publishing: string }>;
      };
      expect(info.participants.map((p) => p.publishing)).toEqual(["none", "none"]);
    },
  );

  it("DELETE /api/rooms/:room closes the room like /close", TEST, async () => {
    const { client: ann } = await join("mod-close", "ann");
    const response = await api("/api/rooms/mod-close", { method: "DELETE" });
    expect(await response.json()).toEqual({ room: "mod-close", closed: true });
    await ann.waitFor((f) => f.method === "roomClosed", "roomClosed");
    expect((await api("/api/rooms/mod-close", { method: "DELETE" })).status).toBe(404);
  });
});
