/**
 * The BridgePool's choice between bridges, inside workerd, with two fake
 * bridges at the protocol seam (README "The media bridge link", step 2; the
 * original demo's FixedNKmsManager): round-robin, `special*` users (case-
 * sensitive, like Java's String.startsWith) to the least loaded, all full →
 * 204. Also the bridge routes' refusals: a replayed room-link token (401) and
 * no BRIDGE_SECRET (503).
 */
import { createExecutionContext, SELF, waitOnExecutionContext, env } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { roomAudience } from "../../protocol/tokens/bridge-token.ts";
import type { Env } from "../../worker/env.ts";
import worker from "../../worker/index.ts";
import {
  answerAttach,
  bridgeToken,
  closeAll,
  connectBridge,
  join,
  nextAttach,
  register,
  SLACK_MS,
  storedPending,
  until,
  waitForBridgeCount,
} from "./fake-bridge.ts";
import type { Client } from "./ws-client.ts";

const TEST = { timeout: 4 * SLACK_MS };

afterEach(closeAll);

/**
 * `user` joins `room` and publishes; the bridge the pool picks gets `attach`.
 * That bridge attaches and answers; returns which of `controls` it was.
 */
async function publishThroughPool(controls: Client[], ids: string[], room: string, user: string): Promise<number> {
  const { client } = await join(room, user);
  const publishing = client.request("publishVideo", { sdpOffer: `v=0 ${user}`, doLoopback: false });
  const { index, frame } = await nextAttach(controls, room);
  expect(frame.params).toEqual({ room, user });
  const link = await answerAttach(controls[index] as Client, frame, ids[index] as string);
  const publish = await link.incoming("publish");
  link.reply(publish.id, { sdpAnswer: `v=0 answer for ${user}` });
  expect((await publishing).result).toMatchObject({ sdpAnswer: `v=0 answer for ${user}` });
  return index;
}

function attachesFor(control: Client, room: string): number {
  return control.frames.filter((f) => f.method === "attach" && f.params?.room === room).length;
}

describe("BridgePool selection with two bridges", () => {
  it("hands new rooms out round-robin, and a room keeps its bridge", TEST, async () => {
    const ids = ["rr-a", "rr-b"];
    const controls = [await connectBridge("rr-a"), await connectBridge("rr-b")];
    await waitForBridgeCount(2);
    const picks: number[] = [];
    for (const room of ["rr-1", "rr-2", "rr-3", "rr-4"])
      picks.push(await publishThroughPool(controls, ids, room, "alice"));
    expect(picks[1]).not.toBe(picks[0]);
    expect(picks[2]).toBe(picks[0]);
    expect(picks[3]).toBe(picks[1]);
    // Each room's attach went to one bridge only.
    for (const [i, room] of ["rr-1", "rr-2", "rr-3", "rr-4"].entries()) {
      expect(attachesFor(controls[picks[i] as number] as Client, room)).toBe(1);
      expect(attachesFor(controls[1 - (picks[i] as number)] as Client, room)).toBe(0);
    }
  });

  it(
    "gives `special*` users the least-loaded bridge, without moving the round-robin; `Special*` is not special",
    TEST,
    async () => {
      const ids = ["sp-a", "sp-b"];
      const controls = [await connectBridge("sp-a"), await connectBridge("sp-b")];
      await waitForBridgeCount(2);
      // A plain user: round-robin picks X; the next round-robin pick is then Y.
      const x = await publishThroughPool(controls, ids, "sp-1", "alice");
      const y = 1 - x;
      // Y becomes the more loaded one: 5 of 10 pipelines (X holds 1 of 10: sp-1).
      await register(controls[y] as Client, ids[y] as string, { rooms: ["h1", "h2", "h3", "h4", "h5"] });
      // A special user gets X, the least loaded, although round-robin would say Y.
      expect(await publishThroughPool(controls, ids, "sp-2", "specialcarol")).toBe(x);
      // Case-sensitive: "Special…" is a plain user, and round-robin still points at Y
      // (the special pick did not move it), although X is still the less loaded (2/10 < 5/10).
      expect(await publishThroughPool(controls, ids, "sp-3", "Specialdave")).toBe(y);
      // And once X is the more loaded, a special user goes to Y.
      await register(controls[x] as Client, ids[x] as string, { rooms: ["k1", "k2", "k3", "k4", "k5", "k6", "k7"] });
      expect(await publishThroughPool(controls, ids, "sp-4", "special")).toBe(y);
    },
  );

  it(
    "answers 204 when every bridge is full, for plain and special users; a bridge with room again serves the retry",
    TEST,
    async () => {
      const ids = ["full-a", "full-b"];
      const controls = [
        await connectBridge("full-a", { limit: 1, rooms: ["held-a"] }),
        await connectBridge("full-b", { limit: 1, rooms: ["held-b"] }),
      ];
      await waitForBridgeCount(2);
      const { client: alice } = await join("full-1", "alice");
      const refused = await alice.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
      expect(refused.error).toEqual({ code: 204, message: "all media servers are full" });
      const { client: special } = await join("full-1", "specialsam");
      const alsoRefused = await special.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
      expect(alsoRefused.error).toEqual({ code: 204, message: "all media servers are full" });
      // No bridge was told to attach, and the room waits for nothing.
      for (const control of controls) expect(attachesFor(control, "full-1")).toBe(0);
      expect(await storedPending("full-1")).toEqual([]);

      // full-b released its room: the retry goes there.
      await register(controls[1] as Client, "full-b", { limit: 1, rooms: [] });
      const retry = alice.request("publishVideo", { sdpOffer: "v=0 again", doLoopback: false });
      const { index, frame } = await nextAttach(controls, "full-1");
      expect(index).toBe(1);
      const link = await answerAttach(controls[1] as Client, frame, ids[1] as string);
      link.reply((await link.incoming("publish")).id, { sdpAnswer: "v=0 ok" });
      expect((await retry).result).toMatchObject({ sdpAnswer: "v=0 ok" });
    },
  );
});

/** Opens `/bridge/rooms/<room>` as `bridgeId` and returns the raw upgrade response (refusals included). */
async function dialRoom(room: string, bridgeId: string): Promise<Response> {
  return SELF.fetch(`https://example.com/bridge/rooms/${room}`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${await bridgeToken(roomAudience(room), bridgeId)}` },
  });
}

describe("two bridges never take a room from each other", () => {
  it(
    "a room moved to another bridge while the first one's links were down refuses the first one (409), however often it redials",
    TEST,
    async () => {
      const ids = ["flap-a", "flap-b"];
      const a = await connectBridge("flap-a");
      await waitForBridgeCount(1);
      // alice publishes: the room goes to A, the only bridge.
      const { client: alice } = await join("flap-room", "alice");
      const first = alice.request("publishVideo", { sdpOffer: "v=0 first", doLoopback: false });
      const attachA = await nextAttach([a], "flap-room");
      const linkA = await answerAttach(a, attachA.frame, "flap-a");
      linkA.reply((await linkA.incoming("publish")).id, { sdpAnswer: "v=0 from A" });
      expect((await first).result).toMatchObject({ sdpAnswer: "v=0 from A" });

      // A flaps: its control link and its room link drop. B is there; the room needs media again.
      a.ws.close(4000, "flap");
      linkA.ws.close(4000, "flap");
      const b = await connectBridge("flap-b");
      await waitForBridgeCount(1);
      const { client: bob } = await join("flap-room", "bob");
      const second = bob.request("publishVideo", { sdpOffer: "v=0 second", doLoopback: false });
      const attachB = await nextAttach([b], "flap-room");
      const linkB = await answerAttach(b, attachB.frame, ids[1] as string);
      linkB.reply((await linkB.incoming("publish")).id, { sdpAnswer: "v=0 from B" });
      expect((await second).result).toMatchObject({ sdpAnswer: "v=0 from B" });

      // A comes back and re-registers with the room it held: the pool keeps the room with B.
      const aAgain = await connectBridge("flap-a", { rooms: ["flap-room"] });
      await waitForBridgeCount(2);
      for (let attempt = 0; attempt < 3; attempt++) {
        const refused = await dialRoom("flap-room", "flap-a");
        expect(refused.status).toBe(409);
        expect(await refused.json()).toEqual({ error: "room 'flap-room' is served by media bridge 'flap-b'" });
      }
      // B's link was never replaced, and still carries the room's commands.
      expect(linkB.closeCode).toBeNull();
      const sent = await bob.request("onIceCandidate", {
        endpointName: "bob",
        candidate: "candidate:1 1 UDP 1 127.0.0.1 9 typ host",
        sdpMid: "0",
        sdpMLineIndex: 0,
      });
      expect(sent.error).toBeUndefined();
      const ice = await linkB.incoming("addIceCandidate");
      expect(ice.params).toMatchObject({ user: "bob", endpoint: "bob" });
      linkB.reply(ice.id, {});
      expect(aAgain.frames.filter((f) => f.method === "attach")).toEqual([]);
    },
  );

  it(
    "a bridge whose owner's control link is down takes the room over, and the old owner's link is closed with 4002",
    TEST,
    async () => {
      const a = await connectBridge("over-a");
      await waitForBridgeCount(1);
      const { client: alice } = await join("over-room", "alice");
      const publishing = alice.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
      const attach = await nextAttach([a], "over-room");
      const linkA = await answerAttach(a, attach.frame, "over-a");
      linkA.reply((await linkA.incoming("publish")).id, { sdpAnswer: "v=0 A" });
      await publishing;
      // A's control link is gone; another bridge holding the room dials it: the room moves.
      a.ws.close(4000, "control gone");
      await waitForBridgeCount(0);
      const b = await connectBridge("over-b", { rooms: ["over-room"] });
      await waitForBridgeCount(1);
      const taken = await dialRoom("over-room", "over-b");
      expect(taken.status).toBe(101);
      taken.webSocket?.accept();
      await until(() => (linkA.closeCode === null ? undefined : linkA.closeCode), "A's room link to close");
      expect(linkA.closeCode).toBe(4002);
      // A, back, is refused: B is connected and owns the room.
      await connectBridge("over-a");
      await waitForBridgeCount(2);
      expect((await dialRoom("over-room", "over-a")).status).toBe(409);
      taken.webSocket?.close(1000, "done");
      void b;
    },
  );
});

describe("bridge routes refuse", () => {
  it("a replayed room-link token with 401 (the first use is accepted)", TEST, async () => {
    const token = await bridgeToken(roomAudience("replay-room"), "replay-bridge");
    const upgrade = () =>
      SELF.fetch("https://example.com/bridge/rooms/replay-room", {
        headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` },
      });
    const first = await upgrade();
    expect(first.status).toBe(101);
    first.webSocket?.accept();
    first.webSocket?.close(1000, "done");
    const replay = await upgrade();
    expect(replay.status).toBe(401);
    expect(replay.webSocket).toBeNull();
    expect(await replay.json()).toEqual({ error: "replayed token" });
  });

  it("every /bridge/* request with 503 while BRIDGE_SECRET is not configured", TEST, async () => {
    const token = await bridgeToken(roomAudience("r"), "b");
    for (const unset of [undefined, ""]) {
      for (const path of ["/bridge/control", "/bridge/rooms/r"]) {
        const ctx = createExecutionContext();
        const request = new Request(`https://example.com${path}`, {
          headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` },
        });
        const response = await worker.fetch(request, { ...env, BRIDGE_SECRET: unset } as Env, ctx);
        await waitOnExecutionContext(ctx);
        expect(response.status, `${path} with BRIDGE_SECRET=${JSON.stringify(unset)}`).toBe(503);
        expect(await response.json()).toEqual({ error: "media bridges are disabled: BRIDGE_SECRET is not configured" });
      }
    }
  });
});
