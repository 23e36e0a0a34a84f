/**
 * Several streams per participant through the whole system (worker, bridge,
 * the embedded media server, or a real KMS with MEDIA_BACKEND=kms): alice
 * publishes her webcam and her screen; a multiStream client subscribes to
 * both and receives RTP on both; the screen ends and the webcam keeps
 * flowing; a client speaking the original protocol (no multiStream) only
 * ever hears of the webcam and keeps receiving it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mediaBackendFromEnv, startSystem, type System } from "../../scripts/system.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { startSyntheticMedia } from "../bridge/helpers/peers.ts";
import { type MediaLeg, publish, subscribe, until } from "./media-peers.ts";
import { startVp8Media, vp8Frames } from "./vp8-media.ts";

const BACKEND = mediaBackendFromEnv();
const SERVER = BACKEND === "kms" ? "a real KMS" : "the embedded media server";
let system: System;

beforeAll(async () => {
  system = await startSystem({ mediaServerWebrtc: { loopbackOnly: true } });
});

afterAll(async () => {
  await system?.stop();
});

async function join(room: string, user: string, multiStream?: boolean): Promise<RoomTestClient> {
  const client = await RoomTestClient.connect(`${system.url.replace(/^http/, "ws")}/room/${room}`);
  await client.request("joinRoom", { user, room, ...(multiStream ? { multiStream } : {}) });
  return client;
}

/**
 * Video sent on `from` reaches every leg of `to` (more than `packets` each). The embedded server
 * forwards RTP as is, so a marker proves these very packets arrived; a KMS parses VP8, so there a
 * real clip is sent and any video packet counts.
 */
async function videoFlows(from: MediaLeg, to: MediaLeg[], packets: number, what: string): Promise<void> {
  const marker = BACKEND === "kms" ? Buffer.alloc(0) : Buffer.from(what);
  const received = to.map((leg) => leg.peer.videoPackets(marker));
  const media =
    BACKEND === "kms"
      ? startVp8Media(from.peer.video, vp8Frames())
      : startSyntheticMedia(from.peer.video, marker, 50, 3000);
  try {
    await until(() => received.every((count) => count() > packets), 30_000, what);
  } finally {
    media.stop();
  }
}

async function mediaObjectsReach(count: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const held = await system.mediaObjects();
    if (held === count) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (holds ${held} objects)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe(`several streams per participant through worker, bridge and ${SERVER}`, () => {
  it("webcam and screen both flow; the screen ends and the webcam keeps flowing, for the original client too", async () => {
    const room = "multi-stream-1";
    const alice = await join(room, "alice", true);
    const mo = await join(room, "mo", true);
    const leo = await join(room, "leo");

    const webcam = await publish(alice, "alice");
    expect(await mo.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    expect(await leo.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    const screen = await publish(alice, "alice", "screen");
    expect(await mo.next("participantPublished")).toEqual({
      id: "alice",
      streams: [{ id: "webcam" }, { id: "screen" }],
    });

    const moWebcam = await subscribe(mo, "alice");
    const moScreen = await subscribe(mo, "alice", "screen");
    const leoWebcam = await subscribe(leo, "alice");
    await videoFlows(webcam, [moWebcam, leoWebcam], 10, "alice's webcam");
    await videoFlows(screen, [moScreen], 10, "alice's screen");
    for (const leg of [webcam, screen, moWebcam, moScreen, leoWebcam]) {
      expect(await leg.candidatesAccepted()).toBeGreaterThan(0);
    }

    // The screen ends: mo is told which stream; the webcam keeps flowing to both.
    screen.stopCandidates();
    moScreen.stopCandidates();
    await alice.request("unpublishVideo", { streamId: "screen" });
    expect(await mo.next("participantUnpublished")).toEqual({ name: "alice", streamId: "alice_screen" });
    await screen.peer.close();
    await moScreen.peer.close();
    await videoFlows(webcam, [moWebcam, leoWebcam], 10, "alice's webcam after the screen ended");

    // leo, the original client, never heard of the screen nor of any unpublish.
    expect(leo.count("participantPublished")).toBe(0);
    expect(leo.count("participantUnpublished")).toBe(0);
    const lateLegacy = await RoomTestClient.connect(`${system.url.replace(/^http/, "ws")}/room/${room}`);
    const roster = await lateLegacy.request<{ value: unknown[] }>("joinRoom", { user: "lou", room });
    expect(roster.value).toContainEqual({ id: "alice", streams: [{ id: "webcam" }] });

    for (const leg of [webcam, moWebcam, leoWebcam]) leg.stopCandidates();
    for (const client of [alice, mo, leo, lateLegacy]) await client.request("leaveRoom");
    for (const leg of [webcam, moWebcam, leoWebcam]) await leg.peer.close();
    await mediaObjectsReach(0, "the media server to hold no objects");
  });
});
