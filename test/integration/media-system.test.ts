/**
 * The whole system as `npm start` runs it: worker (wrangler dev) + media
 * bridge (real kurento-client) + embedded media server. Clients are `ws`
 * sockets speaking the Room protocol with werift peers standing in for
 * browsers (127.0.0.1 only): real SDP offers and answers, trickle ICE both
 * ways, RTP from a publisher reaching a subscriber, and every media object
 * released afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, waitForBridges, type System } from "../../scripts/system.ts";
import { loadConfig, startBridge, type BridgeHandle } from "../../bridge/main.ts";
import { RoomCode } from "../../protocol/errors.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { expectValidAnswer, startSyntheticMedia, testPeer, type Candidate, type TestPeer } from "../bridge/helpers/peers.ts";

const ADMIN_TOKEN = "media-admin-token";
let system: System;

beforeAll(async () => {
  system = await startSystem({
    vars: { ADMIN_TOKEN, RECONNECT_WINDOW_SECONDS: "1", MEDIA_TIMEOUT_MS: "8000" },
    bridgeEnv: { REQUEST_TIMEOUT_MS: "5000" },
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

/** Server candidates for `endpoint` go into `peer` as they arrive. */
function feedServerCandidates(client: RoomTestClient, endpoint: string, peer: TestPeer): () => void {
  let stopped = false;
  const pump = async (): Promise<void> => {
    while (!stopped) {
      const params = await client.next("iceCandidate", 30_000).catch(() => null);
      if (!params) return;
      if (stopped) {
        // Not ours any more: leave it for the peer that replaced this one.
        client.notifications.unshift({ method: "iceCandidate", params });
        client.wake();
        return;
      }
      if (params.endpointName !== endpoint) continue;
      await peer.addRemote({
        candidate: String(params.candidate),
        sdpMid: typeof params.sdpMid === "string" ? params.sdpMid : null,
        sdpMLineIndex: Number(params.sdpMLineIndex),
      });
    }
  };
  void pump();
  return () => {
    stopped = true;
  };
}

async function publish(client: RoomTestClient, user: string): Promise<{ peer: TestPeer; stopCandidates: () => void }> {
  const send = (c: Candidate) => void client.request("onIceCandidate", { endpointName: user, ...c }).catch(() => undefined);
  const peer = testPeer("sendonly", send);
  const offer = await peer.offer();
  const { sdpAnswer } = await client.request<{ sdpAnswer: string }>("publishVideo", { sdpOffer: offer, doLoopback: false });
  expectValidAnswer(sdpAnswer, /a=recvonly/);
  await peer.answer(sdpAnswer);
  return { peer, stopCandidates: feedServerCandidates(client, user, peer) };
}

async function subscribe(client: RoomTestClient, sender: string): Promise<{ peer: TestPeer; stopCandidates: () => void }> {
  const send = (c: Candidate) => void client.request("onIceCandidate", { endpointName: sender, ...c }).catch(() => undefined);
  const peer = testPeer("recvonly", send);
  const offer = await peer.offer();
  const { sdpAnswer } = await client.request<{ sdpAnswer: string }>("receiveVideoFrom", { sender: `${sender}_webcam`, sdpOffer: offer });
  expectValidAnswer(sdpAnswer, /a=sendonly/);
  await peer.answer(sdpAnswer);
  return { peer, stopCandidates: feedServerCandidates(client, sender, peer) };
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function mediaObjects(): number {
  return system.mediaServer?.stats().objects ?? -1;
}

describe("media through worker, bridge and media server", () => {
  it("publish and subscribe with real SDP and trickle ICE; RTP flows; leaving releases every media object", async () => {
    const alice = await join("media-1", "alice");
    const bob = await join("media-1", "bob");
    const published = await publish(alice, "alice");
    expect(await bob.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    const subscribed = await subscribe(bob, "alice");

    const marker = Buffer.from("ROOM-E2E");
    const received = subscribed.peer.videoPackets(marker);
    const media = startSyntheticMedia(published.peer.video, marker, 50, 3000);
    try {
      await until(() => received() > 20, 30_000, "RTP from alice at bob");
    } finally {
      media.stop();
    }
    expect(mediaObjects()).toBeGreaterThan(0);

    published.stopCandidates();
    subscribed.stopCandidates();
    await alice.request("leaveRoom");
    expect(await bob.next("participantLeft")).toEqual({ name: "alice" });
    await bob.request("leaveRoom");
    await published.peer.close();
    await subscribed.peer.close();
    await until(() => mediaObjects() === 0, 15_000, "the media server to hold no objects");
  });

  it("the hat filter answers with the media server's refusal, clearly", async () => {
    const alice = await join("media-hat", "alice");
    const published = await publish(alice, "alice");
    const error = await alice.requestError("customRequest", { hat: true });
    expect(error.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(error.message).toMatch(/filter/i);
    // The failure changed nothing: unpublish still works and the hat is still off.
    expect(await alice.request("unpublishVideo")).toHaveProperty("sessionId");
    expect((await alice.requestError("customRequest", { hat: false })).message).toBe("This user has no hat filter yet");
    published.stopCandidates();
    await alice.request("leaveRoom");
    await published.peer.close();
    await until(() => mediaObjects() === 0, 15_000, "the media server to hold no objects");
  });

  it("/close evicts everyone and releases the room's media", async () => {
    const alice = await join("media-close", "alice");
    const bob = await join("media-close", "bob");
    const published = await publish(alice, "alice");
    await bob.next("participantPublished");
    const subscribed = await subscribe(bob, "alice");
    expect(mediaObjects()).toBeGreaterThan(0);
    const response = await fetch(`${system.url}/close?room=media-close`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
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
    await until(() => mediaObjects() === 0, 15_000, "the media server to hold no objects");
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
        KMS_URIS: system.mediaServer?.url ?? "",
        BRIDGE_HTTP_PORT: "0",
        LOG_LEVEL: "error",
      }),
    );
    try {
      await waitForBridges(system.url, 1, 30_000);
      // The old bridge is not coming back: after a short grace the room tells
      // alice her media is gone, and bob that her stream is.
      expect(await alice.next("mediaError", 15_000)).toMatchObject({ error: expect.stringContaining("publish") });
      expect(await bob.next("participantUnpublished", 15_000)).toEqual({ name: "alice" });
      // The room itself is intact.
      const carol = await join("media-restart", "carol");
      expect(carol.count("participantJoined")).toBe(0);

      // Alice publishes again: the room summons the new bridge.
      const live = await publish(alice, "alice");
      expect(await bob.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
      const sub = await subscribe(bob, "alice");
      const marker = Buffer.from("AFTER-RESTART");
      const received = sub.peer.videoPackets(marker);
      const media = startSyntheticMedia(live.peer.video, marker, 50, 3000);
      try {
        await until(() => received() > 10, 30_000, "RTP after the bridge restart");
      } finally {
        media.stop();
      }
      for (const c of [alice, bob, carol]) await c.request("leaveRoom");
      for (const p of [live, sub]) {
        p.stopCandidates();
        await p.peer.close();
      }
      await until(() => mediaObjects() === 0, 15_000, "the media server to hold no objects");
    } finally {
      await replacement.stop();
    }
  });
});
