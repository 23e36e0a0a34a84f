/**
 * The whole system as `npm start` runs it: worker (wrangler dev) + media
 * bridge (real kurento-client) + a media server: the embedded one (project
 * `integration`) or a real KMS (project `integration-kms`, MEDIA_BACKEND=kms).
 * Clients are `ws` sockets speaking the Room protocol with werift peers
 * standing in for browsers (127.0.0.1 only): real SDP offers and answers,
 * trickle ICE both ways, RTP from a publisher reaching a subscriber, and
 * every media object released afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mediaBackendFromEnv, startSystem, waitForBridges, type System } from "../../scripts/system.ts";
import { loadConfig, startBridge, type BridgeHandle } from "../../bridge/main.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { startSyntheticMedia } from "../bridge/helpers/peers.ts";
import { type MediaLeg, publish, subscribe } from "./media-peers.ts";
import { startVp8Media, vp8Frames } from "./vp8-media.ts";

const BACKEND = mediaBackendFromEnv();
const SERVER = BACKEND === "kms" ? "a real KMS" : "the embedded media server";

const ADMIN_TOKEN = "media-admin-token";
let system: System;

beforeAll(async () => {
  system = await startSystem({
    // Default media timeouts: they only bound hangs, and a loaded machine may need them.
    vars: { ADMIN_TOKEN },
    mediaServerWebrtc: { loopbackOnly: true },
  });
});

afterAll(async () => {
  await system?.stop();
});

function wsUrl(path: string): string {
  return system.url.replace(/^http/, "ws") + path;
}

async function join(room: string, user: string): Promise<RoomTestClient> {
  const client = await RoomTestClient.connect(wsUrl(`/room/${room}`));
  await client.request("joinRoom", { user, room });
  return client;
}

/** Waits (bounded) until the media server holds `count` objects, or more than zero with `"some"`. */
async function mediaObjectsReach(count: number | "some", what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = -1;
  for (;;) {
    last = await system.mediaObjects();
    if (count === "some" ? last > 0 : last === count) return;
    if (Date.now() > deadline) throw new Error(`timed out after 30000 ms waiting for ${what} (holds ${last} objects)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Video from `from` reaches `to`. The embedded media server forwards RTP as
 * is, so marked packets prove these very packets arrived; a KMS parses VP8,
 * so there the publisher sends a real VP8 clip and any video packet counts,
 * as it does through a filter (`vp8`), which decodes on both.
 */
async function videoFlows(from: MediaLeg, to: MediaLeg, packets: number, what: string, vp8 = false): Promise<void> {
  if (BACKEND === "kms" || vp8) {
    const received = to.peer.videoPackets(Buffer.alloc(0));
    const media = startVp8Media(from.peer.video, vp8Frames());
    try {
      await until(() => received() > packets, 30_000, what);
    } finally {
      media.stop();
    }
    return;
  }
  const marker = Buffer.from(what);
  const received = to.peer.videoPackets(marker);
  const media = startSyntheticMedia(from.peer.video, marker, 50, 3000);
  try {
    await until(() => received() > packets, 30_000, what);
  } finally {
    media.stop();
  }
}

describe(`media through worker, bridge and ${SERVER}`, () => {
  it("publish and subscribe with real SDP and trickle ICE; RTP flows; leaving releases every media object", async () => {
    const alice = await join("media-1", "alice");
    const bob = await join("media-1", "bob");
    const published = await publish(alice, "alice");
    expect(await bob.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    const subscribed = await subscribe(bob, "alice");

    await videoFlows(published, subscribed, 20, "RTP from alice at bob");
    await mediaObjectsReach("some", "the media server to hold the room's objects");
    // Trickle ICE both ways: the server accepted every candidate the peers
    // sent, and its own candidates reached both peers.
    for (const leg of [published, subscribed]) {
      expect(await leg.candidatesAccepted()).toBeGreaterThan(0);
      expect(leg.serverCandidates()).toBeGreaterThan(0);
    }

    published.stopCandidates();
    subscribed.stopCandidates();
    await alice.request("leaveRoom");
    expect(await bob.next("participantLeft")).toEqual({ name: "alice" });
    await bob.request("leaveRoom");
    await published.peer.close();
    await subscribed.peer.close();
    await mediaObjectsReach(0, "the media server to hold no objects");
  });

  // Both back ends have the filter: KMS its own, the embedded server on GStreamer (the refusal of a
  // server without filters: bridge/room-media.test.ts).
  it("the hat filter (FaceOverlayFilter) goes on and comes off while the video keeps flowing", hatOn);

  async function hatOn(): Promise<void> {
    const alice = await join("media-hat-kms", "alice");
    const bob = await join("media-hat-kms", "bob");
    const published = await publish(alice, "alice");
    await bob.next("participantPublished");
    const subscribed = await subscribe(bob, "alice");
    await videoFlows(published, subscribed, 10, "video before the hat", true);
    await mediaObjectsReach("some", "the room's objects");
    const before = await system.mediaObjects();
    expect(await alice.request("customRequest", { hat: true })).toStrictEqual({ sessionId: expect.any(String) });
    // One more object (the FaceOverlayFilter), and the subscriber still receives video through it.
    expect(await system.mediaObjects()).toBe(before + 1);
    await videoFlows(published, subscribed, 10, "video through the hat filter", true);
    expect((await alice.requestError("customRequest", { hat: true })).message).toMatch(/hat/i);
    expect(await alice.request("customRequest", { hat: false })).toStrictEqual({ sessionId: expect.any(String) });
    expect(await system.mediaObjects()).toBe(before);
    await videoFlows(published, subscribed, 10, "video after the hat came off", true);
    for (const leg of [published, subscribed]) leg.stopCandidates();
    for (const client of [alice, bob]) await client.request("leaveRoom");
    for (const leg of [published, subscribed]) await leg.peer.close();
    await mediaObjectsReach(0, "the media server to hold no objects");
  }

  it("/close evicts everyone and releases the room's media", async () => {
    const alice = await join("media-close", "alice");
    const bob = await join("media-close", "bob");
    const published = await publish(alice, "alice");
    await bob.next("participantPublished");
    const subscribed = await subscribe(bob, "alice");
    await mediaObjectsReach("some", "the room's objects");
    const response = await fetch(`${system.url}/close?room=media-close`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    for (const client of [alice, bob]) {
      expect(await client.next("participantEvicted")).toEqual({});
      expect(await client.next("roomClosed")).toEqual({ room: "media-close" });
      expect((await client.closed()).code).toBe(1000);
    }
    published.stopCandidates();
    subscribed.stopCandidates();
    await published.peer.close();
    await subscribed.peer.close();
    await mediaObjectsReach(0, "the media server to hold no objects");
  });

  it("a bridge restart loses no room: the publisher is told, publishes again, and is seen again", async () => {
    const alice = await join("media-restart", "alice");
    const bob = await join("media-restart", "bob");
    const first = await publish(alice, "alice");
    await bob.next("participantPublished");

    // The bridge process goes away (its media is released with it) and a new one starts.
    await system.bridge.stop();
    first.stopCandidates();
    await first.peer.close();
    const replacement: BridgeHandle = await startBridge(
      loadConfig({
        WORKER_URL: system.url,
        BRIDGE_SECRET: system.bridgeSecret,
        BRIDGE_ID: "replacement-bridge",
        KMS_URIS: system.mediaUrl,
        BRIDGE_HTTP_PORT: "0",
        LOG_LEVEL: "error",
      }),
    );
    try {
      await waitForBridges(system.url, 1, 30_000);
      // The old bridge is not coming back: after a short grace the room tells
      // alice her media is gone, and bob that her stream is.
      expect(await alice.next("mediaError", 30_000)).toMatchObject({
        error: expect.stringContaining("publish"),
        streams: ["alice_webcam"],
      });
      expect(await bob.next("participantUnpublished", 30_000)).toEqual({ name: "alice" });
      // The room itself is intact: a newcomer sees both members, neither
      // publishing any more, and both see the newcomer arrive.
      const carol = await RoomTestClient.connect(wsUrl("/room/media-restart"));
      const carolJoin = await carol.request<{ value: unknown[] }>("joinRoom", { user: "carol", room: "media-restart" });
      expect(carolJoin.value).toEqual([{ id: "alice" }, { id: "bob" }]);
      for (const member of [alice, bob]) {
        expect(await member.nextWhere("participantJoined", (p) => p.id === "carol")).toEqual({ id: "carol" });
      }

      // Alice publishes again: the room summons the new bridge.
      const live = await publish(alice, "alice");
      expect(await bob.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
      const sub = await subscribe(bob, "alice");
      await videoFlows(live, sub, 10, "RTP after the bridge restart");
      for (const c of [alice, bob, carol]) await c.request("leaveRoom");
      for (const p of [live, sub]) {
        p.stopCandidates();
        await p.peer.close();
      }
      await mediaObjectsReach(0, "the media server to hold no objects");
    } finally {
      await replacement.stop();
    }
  });
});
