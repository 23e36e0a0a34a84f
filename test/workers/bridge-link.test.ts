/**
 * The worker's side of the media bridge link, inside workerd. The test plays
 * the bridge at the protocol seam (protocol/bridge.ts): it dials
 * `/bridge/control` and `/bridge/rooms/:room` with signed tokens, exactly as
 * the Node bridge does; the real bridge is exercised in the integration tests.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  CONTROL_AUDIENCE,
  deriveBridgeKey,
  roomAudience,
  signBridgeToken,
} from "../../protocol/tokens/bridge-token.ts";
import { signJoinToken } from "../../protocol/tokens/join-token.ts";
import { Client } from "./ws-client.ts";

const SECRET = "test-bridge-secret";

async function token(audience: string, bridgeId = "bridge-1", opts: { ttlSeconds?: number; nowSeconds?: number } = {}) {
  return signBridgeToken(SECRET, { bridgeId, audience, ...opts });
}

async function upgradeStatus(path: string, headers: Record<string, string>): Promise<number> {
  const response = await SELF.fetch(`https://example.com${path}`, { headers: { Upgrade: "websocket", ...headers } });
  response.webSocket?.accept();
  response.webSocket?.close();
  return response.status;
}

/** A fake bridge: registers on the control link and opens room links when asked to attach. */
async function connectBridge(bridgeId: string, filters: string[] = []): Promise<Client> {
  const control = await Client.open("/bridge/control", {
    Authorization: `Bearer ${await token(CONTROL_AUDIENCE, bridgeId)}`,
  });
  const registered = await control.request("register", {
    bridgeId,
    kms: [{ uri: "ws://127.0.0.1:8888/kurento", limit: 10 }],
    rooms: [],
    filters,
  });
  expect(registered.result).toEqual({ accepted: true });
  return control;
}

async function attachRoom(control: Client, room: string, bridgeId = "bridge-1"): Promise<Client> {
  const attach = await control.incoming("attach");
  expect(attach.params?.room).toBe(room);
  const link = await Client.open(`/bridge/rooms/${room}`, {
    Authorization: `Bearer ${await token(roomAudience(room), bridgeId)}`,
  });
  control.reply(attach.id, {});
  return link;
}

describe("bridge authentication", () => {
  it("refuses a missing, forged, expired, misdirected or replayed token before upgrading", async () => {
    expect(await upgradeStatus("/bridge/control", {})).toBe(401);
    const forged = await signBridgeToken("wrong-secret", { bridgeId: "b", audience: CONTROL_AUDIENCE });
    expect(await upgradeStatus("/bridge/control", { Authorization: `Bearer ${forged}` })).toBe(401);
    const expired = await token(CONTROL_AUDIENCE, "b", { nowSeconds: Math.floor(Date.now() / 1000) - 120 });
    expect(await upgradeStatus("/bridge/control", { Authorization: `Bearer ${expired}` })).toBe(401);
    const forRoom = await token(roomAudience("r"), "b");
    expect(await upgradeStatus("/bridge/control", { Authorization: `Bearer ${forRoom}` })).toBe(401);
    expect(await upgradeStatus("/bridge/rooms/other", { Authorization: `Bearer ${forRoom}` })).toBe(401);
    expect(await upgradeStatus("/bridge/control", { Authorization: "Bearer v1.garbage.garbage" })).toBe(401);

    const once = await token(CONTROL_AUDIENCE, "b");
    expect(await upgradeStatus("/bridge/control", { Authorization: `Bearer ${once}` })).toBe(101);
    expect(await upgradeStatus("/bridge/control", { Authorization: `Bearer ${once}` })).toBe(401);
  });

  it("a bridge holding the key of b1 cannot connect as b2 (401); with its own id it registers", async () => {
    const keyB1 = { bridgeKey: await deriveBridgeKey(SECRET, "key-b1") };
    // First b2 is connected (with the master secret), as another operator's bridge would be.
    const b2 = await connectBridge("key-b2");
    const asB2 = await signBridgeToken(keyB1, { bridgeId: "key-b2", audience: CONTROL_AUDIENCE });
    const refused = await SELF.fetch("https://example.com/bridge/control", {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${asB2}` },
    });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: "bad signature" });
    const roomAsB2 = await signBridgeToken(keyB1, { bridgeId: "key-b2", audience: roomAudience("kr") });
    expect(await upgradeStatus("/bridge/rooms/kr", { Authorization: `Bearer ${roomAsB2}` })).toBe(401);
    // b2's control link was not taken over.
    expect(b2.closeCode).toBeNull();
    expect((await b2.request("register", { bridgeId: "key-b2", kms: [], rooms: [], filters: [] })).error?.code).toBe(
      -32602,
    );

    const asB1 = await signBridgeToken(keyB1, { bridgeId: "key-b1", audience: CONTROL_AUDIENCE });
    const b1 = await Client.open("/bridge/control", { Authorization: `Bearer ${asB1}` });
    const registered = await b1.request("register", {
      bridgeId: "key-b1",
      kms: [{ uri: "ws://127.0.0.1:8888/kurento", limit: 10 }],
      rooms: [],
      filters: [],
    });
    expect(registered.result).toEqual({ accepted: true });
    b1.ws.close();
    b2.ws.close();
  });

  it("never accepts a join token as a bridge token, even one signed with the bridge's key", async () => {
    const key = await deriveBridgeKey(SECRET, "jt-bridge");
    const joinToken = await signJoinToken(key, { user: "jt-bridge", room: "control" });
    expect(await upgradeStatus("/bridge/control", { Authorization: `Bearer ${joinToken}` })).toBe(401);
  });

  it("answers a malformed register with an error and keeps the link", async () => {
    const control = await Client.open("/bridge/control", {
      Authorization: `Bearer ${await token(CONTROL_AUDIENCE, "bad-reg")}`,
    });
    const bad = await control.request("register", { bridgeId: "bad-reg", kms: [] });
    expect(bad.error?.code).toBe(-32602);
    control.ws.send("not json");
    await control.waitFor((f) => f.error?.code === -32700, "parse error");
    const other = await control.request("register", {
      bridgeId: "someone-else",
      kms: [{ uri: "ws://x", limit: 1 }],
      rooms: [],
      filters: [],
    });
    expect(other.error?.message).toContain("token");
    control.ws.close();
  });
});

describe("no bridge registered yet", () => {
  it("a media request while no bridge is registered gets 301; once a bridge registers, the next one succeeds", async () => {
    const alice = await Client.open("/room/m6");
    await alice.request("joinRoom", { user: "alice", room: "m6" });
    const refused = await alice.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
    expect(refused.error?.code).toBe(301);
    const control = await connectBridge("bridge-6");
    const publishing = alice.request("publishVideo", { sdpOffer: "v=0 again", doLoopback: false });
    const link = await attachRoom(control, "m6", "bridge-6");
    link.reply((await link.incoming("sync")).id, { held: [] });
    const publish = await link.incoming("publish");
    link.reply(publish.id, { sdpAnswer: "v=0 ok" });
    expect((await publishing).result).toMatchObject({ sdpAnswer: "v=0 ok" });
    control.ws.close();
    link.ws.close();
    alice.ws.close();
  });
});

describe("media through an attached bridge", () => {
  it("summons a bridge, syncs, and carries publish, subscribe and ICE both ways", async () => {
    const control = await connectBridge("bridge-1", ["hat"]);
    const health = (await (await SELF.fetch("https://example.com/health")).json()) as { bridges: number };
    expect(health.bridges).toBeGreaterThanOrEqual(1);
    expect(
      ((await (await SELF.fetch("https://example.com/getClientConfig")).json()) as { filters: string[] }).filters,
    ).toEqual(["hat"]);

    const alice = await Client.open("/room/m1");
    const aliceSession = (await alice.request("joinRoom", { user: "alice", room: "m1" })).result?.sessionId;
    expect(aliceSession).toEqual(expect.any(String));
    const bob = await Client.open("/room/m1");
    await bob.request("joinRoom", { user: "bob", room: "m1" });

    alice.ws.send(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 100,
        method: "publishVideo",
        params: { sdpOffer: "v=0 alice", doLoopback: false },
      }),
    );
    // A trickled candidate before the answer is queued behind the publish, in order.
    alice.ws.send(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 101,
        method: "onIceCandidate",
        params: {
          endpointName: "alice",
          candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host",
          sdpMid: "0",
          sdpMLineIndex: 0,
        },
      }),
    );
    const link = await attachRoom(control, "m1");
    const sync = await link.incoming("sync");
    expect(sync.params).toEqual({ users: ["alice", "bob"] });
    link.reply(sync.id, { held: [] });
    const publish = await link.incoming("publish");
    expect(publish.params).toEqual({ user: "alice", sdpOffer: "v=0 alice", loopback: false, dataChannels: false });
    const ice = await link.incoming("addIceCandidate");
    expect(ice.params).toMatchObject({ user: "alice", endpoint: "alice", sdpMLineIndex: 0 });
    link.reply(ice.id, {});
    link.reply(publish.id, { sdpAnswer: "v=0 answer for alice" });
    const published = await alice.waitFor((f) => f.id === 100, "publish answer");
    expect(published.result).toMatchObject({ sdpAnswer: "v=0 answer for alice" });
    const iceAnswer = await alice.waitFor((f) => f.id === 101, "ICE answer");
    expect(iceAnswer.result).toEqual({ sessionId: aliceSession });
    const note = await bob.waitFor((f) => f.method === "participantPublished", "participantPublished");
    expect(note.params).toEqual({ id: "alice", streams: [{ id: "webcam" }] });

    // Server candidates reach their user.
    link.notify("iceCandidate", {
      user: "alice",
      endpoint: "alice",
      candidate: "candidate:2 1 udp 2 127.0.0.1 10 typ host",
      sdpMid: "0",
      sdpMLineIndex: 0,
    });
    const serverIce = await alice.waitFor((f) => f.method === "iceCandidate", "server candidate");
    expect(serverIce.params).toEqual({
      endpointName: "alice",
      candidate: "candidate:2 1 udp 2 127.0.0.1 10 typ host",
      sdpMid: "0",
      sdpMLineIndex: 0,
    });

    // A subscription goes straight to the attached bridge.
    const subscribing = bob.request("receiveVideoFrom", { sender: "alice_webcam", sdpOffer: "v=0 bob" });
    const subscribe = await link.incoming("subscribe");
    expect(subscribe.params).toEqual({ user: "bob", sender: "alice", sdpOffer: "v=0 bob" });
    link.reply(subscribe.id, { sdpAnswer: "v=0 answer for bob" });
    expect((await subscribing).result).toMatchObject({ sdpAnswer: "v=0 answer for bob" });

    // An element error reaches its owner only; a pipeline error everyone.
    link.notify("mediaError", { user: "bob", error: "ERR: endpoint" });
    expect((await bob.waitFor((f) => f.method === "mediaError", "bob's media error")).params).toEqual({
      error: "ERR: endpoint",
    });
    link.notify("mediaError", { error: "ERR: pipeline" });
    await alice.waitFor((f) => f.method === "mediaError", "alice's media error");

    // Malformed events are ignored, never fatal.
    link.notify("iceCandidate", { user: 5 });
    link.ws.send("garbage");
    const chat = await alice.request("sendMessage", { message: "still fine", userMessage: "alice", roomMessage: "m1" });
    expect(chat.result).toEqual({ sessionId: aliceSession });

    // The last one out releases the room's media on the bridge.
    await alice.request("leaveRoom");
    const releaseAlice = await link.incoming("releaseUser");
    expect(releaseAlice.params).toEqual({ user: "alice" });
    link.reply(releaseAlice.id, {});
    await bob.request("leaveRoom");
    const releaseBob = await link.incoming("releaseUser");
    link.reply(releaseBob.id, {});
    const releaseRoom = await link.incoming("releaseRoom");
    link.reply(releaseRoom.id, {});
    expect(await link.closed()).toBe(1000);
    control.ws.close();
  });

  it("a bridge that drops mid-request fails the request with a media error, and a new bridge finds the media lost", async () => {
    const control = await connectBridge("bridge-2");
    const alice = await Client.open("/room/m2");
    await alice.request("joinRoom", { user: "alice", room: "m2" });
    const publishing = alice.request("publishVideo", { sdpOffer: "v=0", doLoopback: true });
    const link = await attachRoom(control, "m2", "bridge-2");
    const sync = await link.incoming("sync");
    link.reply(sync.id, { held: [] });
    const publish = await link.incoming("publish");
    link.reply(publish.id, { sdpAnswer: "v=0 ok" });
    expect((await publishing).result).toMatchObject({ sdpAnswer: "v=0 ok" });

    // The bridge vanishes while a subscription-like request (hat) is in flight.
    const hat = alice.request("customRequest", { hat: true });
    await link.incoming("applyFilter");
    link.ws.close(1011, "bridge crashed");
    const failed = await hat;
    expect(failed.error?.code).toBe(301);
    expect(failed.error?.message).toContain("disconnected");

    // A bridge comes back (after a restart: it holds nothing): alice is told her media is gone.
    const link2 = await Client.open("/bridge/rooms/m2", {
      Authorization: `Bearer ${await token(roomAudience("m2"), "bridge-2")}`,
    });
    const sync2 = await link2.incoming("sync");
    expect(sync2.params).toEqual({ users: ["alice"] });
    link2.reply(sync2.id, { held: [] });
    const lost = await alice.waitFor((f) => f.method === "mediaError", "mediaError after the restart");
    expect(lost.params?.error).toContain("publish and subscribe again");
    // ...and can publish again.
    const again = alice.request("publishVideo", { sdpOffer: "v=0 again", doLoopback: false });
    const publish2 = await link2.incoming("publish");
    link2.reply(publish2.id, { sdpAnswer: "v=0 again ok" });
    expect((await again).result).toMatchObject({ sdpAnswer: "v=0 again ok" });
    control.ws.close();
    alice.ws.close();
  });

  it("a bridge that does not come back within the grace period: everyone's media counts as lost", async () => {
    const control = await connectBridge("bridge-4");
    const alice = await Client.open("/room/m4");
    await alice.request("joinRoom", { user: "alice", room: "m4" });
    const bob = await Client.open("/room/m4");
    await bob.request("joinRoom", { user: "bob", room: "m4" });
    const publishing = alice.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
    const link = await attachRoom(control, "m4", "bridge-4");
    link.reply((await link.incoming("sync")).id, { held: [] });
    link.reply((await link.incoming("publish")).id, { sdpAnswer: "v=0 ok" });
    await publishing;
    await bob.waitFor((f) => f.method === "participantPublished", "participantPublished");
    control.ws.close();
    link.ws.close(1011, "bridge process died");
    // BRIDGE_RETURN_GRACE_MS (3 s) later:
    const lost = await alice.waitFor((f) => f.method === "mediaError", "mediaError");
    expect(lost.params?.error).toContain("media bridge was lost");
    expect((await bob.waitFor((f) => f.method === "participantUnpublished", "participantUnpublished")).params).toEqual({
      name: "alice",
    });
    alice.ws.close();
    bob.ws.close();
  });

  it("a bridge error is passed to the client as it is", async () => {
    const control = await connectBridge("bridge-3");
    const alice = await Client.open("/room/m3");
    await alice.request("joinRoom", { user: "alice", room: "m3" });
    const publishing = alice.request("publishVideo", { sdpOffer: "not an sdp", doLoopback: false });
    const link = await attachRoom(control, "m3", "bridge-3");
    const sync = await link.incoming("sync");
    link.reply(sync.id, { held: [] });
    const publish = await link.incoming("publish");
    link.replyError(publish.id, 302, "SDP offer could not be processed");
    expect((await publishing).error).toEqual({ code: 302, message: "SDP offer could not be processed" });
    control.ws.close();
    alice.ws.close();
  });

  it("a failed pool call leaves nothing behind: a bridge link that opens later serves the room's media", async () => {
    const control = await connectBridge("bridge-5");
    const pool = env.POOL.get(env.POOL.idFromName("pool"));
    const poolSql = (statement: string) =>
      runInDurableObject(pool, (_instance, state) => void state.storage.sql.exec(statement));
    const alice = await Client.open("/room/m5");
    await alice.request("joinRoom", { user: "alice", room: "m5" });

    // The pool call itself fails (here: its storage throws), so no bridge is told to attach.
    await poolSql("ALTER TABLE assignments RENAME TO assignments_unavailable");
    try {
      const failed = await alice.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
      expect(failed.error?.code).toBe(301);
    } finally {
      await poolSql("ALTER TABLE assignments_unavailable RENAME TO assignments");
    }

    // The bridge's room link (re)connects on its own, as a bridge's reconnecting link does.
    const link = await Client.open("/bridge/rooms/m5", {
      Authorization: `Bearer ${await token(roomAudience("m5"), "bridge-5")}`,
    });
    const sync = await link.incoming("sync");
    expect(sync.params).toEqual({ users: ["alice"] });
    link.reply(sync.id, { held: [] });

    // Media commands now go to that link (before the fix: each failed with the pool's old error).
    const again = alice.request("publishVideo", { sdpOffer: "v=0 again", doLoopback: false });
    const first = await Promise.race([
      again.then((answer) => ({ answer })),
      link.incoming("publish").then((publish) => ({ publish })),
    ]);
    if ("answer" in first) expect.fail(`answered without reaching the bridge: ${JSON.stringify(first.answer)}`);
    link.reply(first.publish.id, { sdpAnswer: "v=0 again ok" });
    expect((await again).result).toMatchObject({ sdpAnswer: "v=0 again ok" });
    control.ws.close();
    link.ws.close();
    alice.ws.close();
  });
});
