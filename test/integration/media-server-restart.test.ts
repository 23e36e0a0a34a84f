/**
 * A media server restart (not a bridge restart) under the running stack
 * (README "Failures lose no room": "A media server that restarts … the users
 * whose media is gone get `mediaError` and the others `participantUnpublished`
 * for their streams, and clients publish and subscribe again").
 *
 * The whole system as `npm start` runs it (worker under wrangler dev, the
 * bridge, the embedded media server); the embedded media server is stopped
 * and a new one is started on the same port, as a restarted KMS would be.
 * werift peers stand in for browsers; RTP must reach the subscriber again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { startSystem, type System } from "../../scripts/system.ts";
import { startSyntheticMedia } from "../bridge/helpers/peers.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { type MediaLeg, publish, subscribe, until } from "./media-peers.ts";

let system: System;
let restarted: MediaServerHandle | null = null;
const clients: RoomTestClient[] = [];
const legs: MediaLeg[] = [];

beforeAll(async () => {
  // Default media timeouts: they only bound hangs, and a loaded machine may need them.
  system = await startSystem({ mediaServerWebrtc: { loopbackOnly: true } });
});

afterAll(async () => {
  for (const leg of legs) {
    leg.stopCandidates();
    await leg.peer.close().catch(() => undefined);
  }
  for (const client of clients) client.terminate();
  await system?.stop();
  await restarted?.close();
});

async function join(room: string, user: string): Promise<RoomTestClient> {
  const client = await RoomTestClient.connect(`${system.url.replace(/^http/, "ws")}/room/${room}`);
  clients.push(client);
  await client.request("joinRoom", { user, room });
  return client;
}

/** Polls the bridge's /health until it is 200 (registered, and a media server connected). */
async function bridgeHealthy(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const response = await fetch(`${system.bridge.httpUrl}/health`).catch(() => null);
    if (response?.status === 200) return;
    last = response ? `${response.status} ${await response.text()}` : "no answer";
    if (Date.now() > deadline) throw new Error(`the bridge never became healthy again; last /health: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function rtpFlows(from: MediaLeg, to: MediaLeg, tag: string): Promise<void> {
  const marker = Buffer.from(tag);
  const received = to.peer.videoPackets(marker);
  const media = startSyntheticMedia(from.peer.video, marker, 50, 3000);
  try {
    await until(() => received() > 10, 30_000, `RTP (${tag}) at the subscriber`);
  } finally {
    media.stop();
  }
}

describe("the media server restarts under a running room", () => {
  // Its waits are bounded one by one (up to 60 s each on a busy machine); the test as a whole gets their sum.
  it("the publisher gets mediaError naming its stream, the others participantUnpublished; media flows again after", {
    timeout: 300_000,
  }, async () => {
    const original = system.mediaServer;
    if (!original) throw new Error("the system runs the embedded media server");
    const alice = await join("kms-restart", "alice");
    const bob = await join("kms-restart", "bob");
    const first = await publish(alice, "alice");
    legs.push(first);
    expect(await bob.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    const firstSub = await subscribe(bob, "alice");
    legs.push(firstSub);
    await rtpFlows(first, firstSub, "BEFORE-KMS-RESTART");

    // The media server goes away with every object, and comes back empty on the same port.
    const port = original.port;
    await original.close();
    restarted = await startMediaServer({ port, webrtc: { loopbackOnly: true }, log: () => undefined });
    expect(restarted.url).toBe(original.url);

    // The room is told: alice that her stream is gone, bob that alice no longer publishes
    // (and, as a subscriber, that the stream he received is gone).
    expect(await alice.next("mediaError", 60_000)).toMatchObject({
      error: expect.any(String),
      streams: ["alice_webcam"],
    });
    expect(await bob.next("participantUnpublished", 60_000)).toEqual({ name: "alice" });
    expect(await bob.next("mediaError", 60_000)).toMatchObject({ streams: ["alice_webcam"] });
    for (const leg of [first, firstSub]) {
      leg.stopCandidates();
      await leg.peer.close();
    }

    // The bridge is connected to the restarted media server again (its /health says so)…
    await bridgeHealthy(60_000);
    // …the room is intact, and a new publish goes through the restarted media server.
    const live = await publish(alice, "alice");
    legs.push(live);
    expect(await bob.next("participantPublished", 30_000)).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    const sub = await subscribe(bob, "alice");
    legs.push(sub);
    await rtpFlows(live, sub, "AFTER-KMS-RESTART");
    expect(restarted.stats().objects).toBeGreaterThan(0);

    for (const client of [alice, bob]) await client.request("leaveRoom");
    for (const leg of [live, sub]) {
      leg.stopCandidates();
      await leg.peer.close();
    }
    const server = restarted;
    await until(() => server.stats().objects === 0, 30_000, "the restarted media server to hold no objects");
  });
});
