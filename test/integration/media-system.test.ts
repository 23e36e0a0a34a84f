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
import {
  expectValidAnswer,
  startSyntheticMedia,
  testPeer,
  type Candidate,
  type TestPeer,
} from "../bridge/helpers/peers.ts";

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

interface MediaLeg {
  readonly peer: TestPeer;
  stopCandidates(): void;
  /** How many server candidates reached the peer so far. */
  serverCandidates(): number;
  /** Every candidate the peer sent so far, once the server has answered each; rejects if any was refused. */
  candidatesAccepted(): Promise<number>;
}

/** Server candidates for `endpoint` go into `peer` as they arrive; returns a stop function and a counter. */
function feedServerCandidates(
  client: RoomTestClient,
  endpoint: string,
  peer: TestPeer,
): { stop(): void; count(): number } {
  let stopped = false;
  let count = 0;
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
      count += 1;
    }
  };
  void pump();
  return {
    stop: () => {
      stopped = true;
    },
    count: () => count,
  };
}

/**
 * The peer's candidates go to the server with onIceCandidate. Their answers
 * are kept (not swallowed): ICE can also succeed through peer-reflexive
 * candidates, so "trickle ICE works" needs the server to have accepted them.
 */
function candidateSender(client: RoomTestClient, endpointName: string) {
  const answers: Array<Promise<unknown>> = [];
  // Candidates gathered before the offer went out wait for it, as a browser
  // client's would: the room knows no endpoint before publish/subscribe.
  let held: Candidate[] | null = [];
  const send = (c: Candidate): void => {
    const answer = client.request("onIceCandidate", { endpointName, ...c });
    answer.catch(() => undefined); // inspected by accepted(); never an unhandled rejection
    answers.push(answer);
  };
  return {
    send: (c: Candidate): void => {
      if (held) held.push(c);
      else send(c);
    },
    offerSent: (): void => {
      const waiting = held ?? [];
      held = null;
      for (const c of waiting) send(c);
    },
    accepted: async (): Promise<number> => {
      const results = await Promise.all(answers.slice());
      for (const result of results) expect(result).toHaveProperty("sessionId", expect.any(String));
      return results.length;
    },
  };
}

async function negotiate(
  client: RoomTestClient,
  endpointName: string,
  direction: "sendonly" | "recvonly",
  request: (sdpOffer: string) => Promise<{ sdpAnswer: string }>,
): Promise<MediaLeg> {
  const sender = candidateSender(client, endpointName);
  const peer = testPeer(direction, sender.send);
  const offer = await peer.offer();
  const answered = request(offer);
  sender.offerSent();
  const { sdpAnswer } = await answered;
  expectValidAnswer(sdpAnswer, direction === "sendonly" ? /a=recvonly/ : /a=sendonly/);
  await peer.answer(sdpAnswer);
  const feed = feedServerCandidates(client, endpointName, peer);
  return { peer, stopCandidates: feed.stop, serverCandidates: feed.count, candidatesAccepted: sender.accepted };
}

function publish(client: RoomTestClient, user: string): Promise<MediaLeg> {
  return negotiate(client, user, "sendonly", (sdpOffer) =>
    client.request<{ sdpAnswer: string }>("publishVideo", { sdpOffer, doLoopback: false }),
  );
}

function subscribe(client: RoomTestClient, sender: string): Promise<MediaLeg> {
  return negotiate(client, sender, "recvonly", (sdpOffer) =>
    client.request<{ sdpAnswer: string }>("receiveVideoFrom", { sender: `${sender}_webcam`, sdpOffer }),
  );
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
    await until(() => mediaObjects() === 0, 30_000, "the media server to hold no objects");
  });

  it("the hat filter answers with the media server's refusal, clearly", async () => {
    const alice = await join("media-hat", "alice");
    const published = await publish(alice, "alice");
    const error = await alice.requestError("customRequest", { hat: true });
    expect(error.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(error.message).toMatch(/filter/i);
    // The failure changed nothing: unpublish still works and the hat is still off.
    expect(await alice.request("unpublishVideo")).toStrictEqual({ sessionId: expect.any(String) });
    // …and the publisher is gone for everyone: a second unpublish is refused.
    expect((await alice.requestError("unpublishVideo")).code).toBe(RoomCode.USER_NOT_STREAMING);
    expect((await alice.requestError("customRequest", { hat: false })).message).toBe("This user has no hat filter yet");
    published.stopCandidates();
    await alice.request("leaveRoom");
    await published.peer.close();
    await until(() => mediaObjects() === 0, 30_000, "the media server to hold no objects");
  });

  it("/close evicts everyone and releases the room's media", async () => {
    const alice = await join("media-close", "alice");
    const bob = await join("media-close", "bob");
    const published = await publish(alice, "alice");
    await bob.next("participantPublished");
    const subscribed = await subscribe(bob, "alice");
    expect(mediaObjects()).toBeGreaterThan(0);
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
    await until(() => mediaObjects() === 0, 30_000, "the media server to hold no objects");
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
      await until(() => mediaObjects() === 0, 30_000, "the media server to hold no objects");
    } finally {
      await replacement.stop();
    }
  });
});
