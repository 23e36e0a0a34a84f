/**
 * Faults of a real KMS (KMS only: these are KMS processes; the embedded
 * media server's restart is media-server-restart.test.ts): the whole stack
 * (worker, bridge, KMS from KMS_HOME) with werift peers sending real VP8.
 * - KMS killed with SIGKILL mid-call: the publisher gets mediaError naming
 *   her stream, the viewer participantUnpublished; a new KMS on the same
 *   port and the bridge finds it again: publish, subscribe, video flows.
 * - KMS frozen with SIGSTOP for longer than the bridge's REQUEST_TIMEOUT_MS:
 *   a publish fails with 301 in about that time (no hang); after SIGCONT
 *   publishing works again, and once everyone has left KMS holds nothing,
 *   not even the pipeline it made late for the publish that timed out.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RoomCode } from "../../protocol/errors.ts";
import type { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { startSystem, type System } from "../../scripts/system.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { testPeer } from "../bridge/helpers/peers.ts";
import { type MediaLeg, publish, subscribe } from "./media-peers.ts";
import { startVp8Media, vp8Frames } from "./vp8-media.ts";

/** The bridge's bound on one KMS call, short so the frozen-KMS test is quick; the room's own bound stays 25 s. */
const REQUEST_TIMEOUT_MS = 3000;
let system: System;

beforeAll(async () => {
  system = await startSystem({
    mediaBackend: "kms",
    mediaServerWebrtc: { loopbackOnly: true },
    bridgeEnv: { REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
  });
});

afterAll(async () => {
  await system?.stop();
});

async function join(room: string, user: string): Promise<RoomTestClient> {
  const client = await RoomTestClient.connect(`${system.url.replace(/^http/, "ws")}/room/${room}`);
  await client.request("joinRoom", { user, room });
  return client;
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function videoFlows(from: MediaLeg, to: MediaLeg, what: string): Promise<void> {
  const received = to.peer.videoPackets(Buffer.alloc(0));
  const media = startVp8Media(from.peer.video, vp8Frames());
  try {
    await until(() => received() > 10, 30_000, what);
  } finally {
    media.stop();
  }
}

async function close(...legs: MediaLeg[]): Promise<void> {
  for (const leg of legs) {
    leg.stopCandidates();
    await leg.peer.close();
  }
}

describe("a real KMS that fails (KMS only)", () => {
  it("KMS killed with SIGKILL mid-call: mediaError, then publish and subscribe again on the restarted KMS with video", async () => {
    const alice = await join("kms-kill", "alice");
    const bob = await join("kms-kill", "bob");
    const published = await publish(alice, "alice");
    await bob.next("participantPublished");
    const subscribed = await subscribe(bob, "alice");
    await videoFlows(published, subscribed, "video before the crash");
    const oldPid = system.kms?.pid;

    await system.restartKms("SIGKILL");
    expect(system.kms?.pid).not.toBe(oldPid);
    expect(await alice.nextWhere("mediaError", (p) => Array.isArray(p.streams), 30_000)).toMatchObject({
      streams: ["alice_webcam"],
    });
    expect(await bob.next("participantUnpublished", 30_000)).toEqual({ name: "alice" });
    await close(published, subscribed);

    const again = await publish(alice, "alice");
    expect(await bob.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    const watching = await subscribe(bob, "alice");
    await videoFlows(again, watching, "video after the restart");
    for (const client of [alice, bob]) await client.request("leaveRoom");
    await close(again, watching);
    await until(() => system.bridge.stats().pipelines === 0, 30_000, "the bridge to release the room");
    expect(await system.mediaObjects()).toBe(0);
  });

  it("KMS frozen (SIGSTOP) longer than REQUEST_TIMEOUT_MS: a publish gets 301 in about that time, no hang; after SIGCONT it works and nothing is left on KMS", async () => {
    const kms = system.kms;
    if (!kms) throw new Error("no KMS");
    const alice = await join("kms-frozen", "alice");
    kms.signal("SIGSTOP");
    const sdpOffer = await offerOnly();
    const started = Date.now();
    let failed: RpcRequestError;
    try {
      failed = await alice.requestError("publishVideo", { sdpOffer, doLoopback: false });
    } finally {
      kms.signal("SIGCONT");
    }
    const took = Date.now() - started;
    expect(failed.code).toBe(RoomCode.MEDIA_GENERIC);
    // Not before the bridge's bound (it waited for KMS), and well before the room's own 25 s.
    expect(took).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    expect(took).toBeLessThan(25_000);

    // KMS runs again: a publish succeeds (the first tries may still meet the bridge recovering its connection).
    const deadline = Date.now() + 60_000;
    let leg: MediaLeg | null = null;
    while (!leg) {
      try {
        leg = await publish(alice, "alice");
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    await alice.request("leaveRoom");
    await close(leg);
    await until(() => system.bridge.stats().pipelines === 0, 30_000, "the bridge to release the room");
    // Nothing is left on KMS, not even the pipeline of the publish that timed out: KMS made it after
    // SIGCONT and answered late; kurento-client still waits then (it gives up long after the bridge),
    // so the late answer reaches the bridge, which releases that pipeline. KMS handles requests in
    // order, so by the time a count is answered the late release is done or under way: poll briefly.
    await untilAsync(async () => (await system.mediaObjects()) === 0, 30_000, "KMS to hold no media objects");
  });
});

async function untilAsync(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A real offer from a werift peer (never answered: the publish is expected to fail). */
async function offerOnly(): Promise<string> {
  const peer = testPeer("sendonly", () => undefined);
  try {
    return await peer.offer();
  } finally {
    await peer.close();
  }
}
