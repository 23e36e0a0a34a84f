/**
 * What only a real KMS does, against a scripted Kurento-protocol server and
 * the real kurento-client: the hat filter (FaceOverlayFilter) wired into the
 * publisher's chain, KMS `Error` events routed to the right users, a KMS that
 * stops answering (REQUEST_TIMEOUT_MS), and the filter capability in
 * `register`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_HAT, loadConfig } from "../../bridge/config.ts";
import { silentLogger } from "../../bridge/log.ts";
import { KmsPool } from "../../bridge/media/kms-pool.ts";
import { connectKurentoMediaServer } from "../../bridge/media/kurento-media-server.ts";
import { RoomMedia } from "../../bridge/media/room-media.ts";
import { startBridge } from "../../bridge/bridge.ts";
import type { MediaEvent } from "../../protocol/bridge.ts";
import { RoomCode } from "../../protocol/errors.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { FakeWorker, waitUntil } from "./helpers/fake-worker.ts";
import { ScriptedKms } from "./helpers/scripted-kms.ts";

const HAT = { url: "http://media.example/img/mario-wings.png", ...DEFAULT_HAT };
const OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";

let kms: ScriptedKms;
let pool: KmsPool;
const rooms: RoomMedia[] = [];

function newRoom(name: string): { room: RoomMedia; events: MediaEvent[] } {
  const events: MediaEvent[] = [];
  const room = new RoomMedia({ room: name, pool, hat: HAT, emit: (event) => events.push(event), log: silentLogger });
  rooms.push(room);
  return { room, events };
}

beforeAll(async () => {
  kms = await ScriptedKms.start({ filterFactories: ["FaceOverlayFilter", "ZBarFilter"] });
  pool = new KmsPool({
    kms: [{ uri: kms.url, limit: 10 }],
    factory: connectKurentoMediaServer,
    requestTimeoutMs: 800,
    lostAfterMs: 2000,
    log: silentLogger,
    onLost: () => undefined,
  });
  await pool.settle(5000);
});

afterEach(async () => {
  kms.silent.clear();
  kms.refuseUnsubscribe = false;
  await Promise.all(rooms.splice(0).map((room) => room.releaseRoom()));
});

afterAll(async () => {
  await pool?.close();
  await kms?.close();
});

describe("against a scripted KMS, through the real kurento-client", () => {
  it("puts the hat filter between the publisher's endpoint and its PassThrough, and takes it out again", async () => {
    expect(pool.supportsFilters).toBe(true);
    const { room } = newRoom("hat-room");
    await room.handlers.publish({ user: "alice", sdpOffer: OFFER, loopback: false, dataChannels: false });
    const [endpoint] = kms.idsOf("WebRtcEndpoint");
    const [passThrough] = kms.idsOf("PassThrough");
    expect(kms.invocations("connect")).toEqual([
      expect.objectContaining({ object: endpoint, operationParams: expect.objectContaining({ sink: passThrough }) }),
    ]);
    // The original's bandwidth limits on every endpoint.
    for (const [operation, value] of [
      ["setMaxVideoRecvBandwidth", 600],
      ["setMinVideoRecvBandwidth", 300],
      ["setMaxVideoSendBandwidth", 600],
      ["setMinVideoSendBandwidth", 300],
    ] as const) {
      expect(
        kms.invocations(operation).map((call) => Object.values(call.operationParams as Record<string, number>)[0]),
      ).toEqual([value]);
    }

    expect(await room.handlers.applyFilter({ user: "alice", filter: "hat" })).toEqual({});
    const [filter] = kms.idsOf("FaceOverlayFilter");
    expect(filter).toBeDefined();
    expect(kms.invocations("setOverlayedImage")).toEqual([
      expect.objectContaining({
        object: filter,
        operationParams: {
          uri: HAT.url,
          offsetXPercent: -0.35,
          offsetYPercent: -1.2,
          widthPercent: 1.6,
          heightPercent: 1.6,
        },
      }),
    ]);
    const links = kms
      .invocations("connect")
      .slice(1)
      .map((call) => [call.object, (call.operationParams as { sink: string }).sink]);
    expect(links).toEqual([
      [endpoint, filter],
      [filter, passThrough],
    ]);
    expect(
      kms.invocations("disconnect").map((call) => [call.object, (call.operationParams as { sink: string }).sink]),
    ).toEqual([[endpoint, passThrough]]);

    // Already on: nothing new is created.
    await room.handlers.applyFilter({ user: "alice", filter: "hat" });
    expect(kms.idsOf("FaceOverlayFilter")).toHaveLength(1);

    await room.handlers.removeFilter({ user: "alice", filter: "hat" });
    expect(kms.invocations("connect").at(-1)).toEqual(
      expect.objectContaining({ object: endpoint, operationParams: expect.objectContaining({ sink: passThrough }) }),
    );
    expect(kms.idsOf("FaceOverlayFilter")).toEqual([]);
    await room.handlers.unpublish({ user: "alice" });
    await waitUntil(() => kms.objects.size === 0, 3000, "everything released");
  });

  it("sends an element's Error event to its owner, naming the stream it carries, and a pipeline's to everyone", async () => {
    const { room, events } = newRoom("error-events");
    await room.handlers.publish({ user: "bob", sdpOffer: OFFER, loopback: false, dataChannels: false });
    await room.handlers.subscribe({ user: "carol", sender: "bob", sdpOffer: OFFER });
    const [pipeline] = kms.idsOf("MediaPipeline");
    const [bobEndpoint, carolEndpoint] = kms.idsOf("WebRtcEndpoint");
    const [bobPassThrough] = kms.idsOf("PassThrough");
    await waitUntil(
      () => {
        try {
          kms.raiseError(carolEndpoint!, "carol's endpoint broke", 40401);
          kms.raiseError(bobEndpoint!, "bob's endpoint broke");
          kms.raiseError(bobPassThrough!, "bob's PassThrough broke");
          kms.raiseError(pipeline!, "pipeline broke");
          return true;
        } catch {
          return false; // subscriptions still on their way
        }
      },
      3000,
      "Error subscriptions",
    );
    await waitUntil(
      () => events.filter((event) => event.event === "mediaError").length >= 4,
      3000,
      "four mediaError events",
    );
    const errors = events.filter((event) => event.event === "mediaError");
    // A subscription's endpoint carries the sender's stream; a publisher's chain its own.
    expect(errors).toContainEqual({
      event: "mediaError",
      user: "carol",
      error: expect.stringContaining("carol's endpoint broke"),
      streams: ["bob_webcam"],
    });
    expect(errors).toContainEqual({
      event: "mediaError",
      user: "bob",
      error: expect.stringContaining("bob's endpoint broke"),
      streams: ["bob_webcam"],
    });
    expect(errors).toContainEqual({
      event: "mediaError",
      user: "bob",
      error: expect.stringContaining("bob's PassThrough broke"),
      streams: ["bob_webcam"],
    });
    expect(errors).toContainEqual({ event: "mediaError", error: expect.stringContaining("pipeline broke") });
    expect(errors).toHaveLength(4);
  });

  it("fails a command with 301 after REQUEST_TIMEOUT_MS when the KMS stops answering, and cleans up", async () => {
    const { room } = newRoom("silent-room");
    kms.silent.add("processOffer");
    const started = Date.now();
    let error: unknown;
    try {
      await room.handlers.publish({ user: "dave", sdpOffer: OFFER, loopback: false, dataChannels: false });
    } catch (caught) {
      error = caught;
    }
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(RpcRequestError);
    expect((error as RpcRequestError).code).toBe(RoomCode.MEDIA_GENERIC);
    expect((error as RpcRequestError).message).toMatch(
      /processOffer: no answer from the media server .* within 800 ms/,
    );
    expect(elapsed).toBeGreaterThanOrEqual(750);
    expect(elapsed).toBeLessThan(5000);
    // The endpoint, PassThrough and then the idle pipeline were released.
    await waitUntil(() => kms.objects.size === 0, 3000, "the half-made publisher released");
  });

  it("survives a KMS that refuses (or never answers) the unsubscribes kurento-client sends after a release", async () => {
    const { room } = newRoom("strict-room");
    kms.refuseUnsubscribe = true;
    await room.handlers.publish({ user: "erin", sdpOffer: OFFER, loopback: false, dataChannels: false });
    await room.handlers.subscribe({ user: "finn", sender: "erin", sdpOffer: OFFER });
    await room.handlers.unsubscribe({ user: "finn", sender: "erin" });
    await waitUntil(
      () => kms.requests.filter((request) => request.method === "unsubscribe").length >= 3,
      3000,
      "unsubscribes after releasing finn's endpoint",
    );
    kms.refuseUnsubscribe = false;
    kms.silent.add("unsubscribe");
    await room.handlers.unpublish({ user: "erin" });
    await waitUntil(() => kms.objects.size === 0, 3000, "everything released");
    // The unanswered unsubscribes time out (800 ms) inside kurento-client; an unheard 'error' would fail this file.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(kms.requests.filter((request) => request.method === "unsubscribe").length).toBeGreaterThanOrEqual(6);
  });

  it("registers the hat filter with the pool when its KMS can apply it", async () => {
    const worker = await FakeWorker.start("scripted-kms-secret-0123456789");
    const bridge = await startBridge(
      loadConfig({
        BRIDGE_SECRET: "scripted-kms-secret-0123456789",
        WORKER_URL: worker.url,
        KMS_URIS: kms.url,
        BRIDGE_HTTP_PORT: "0",
        BRIDGE_ID: "hat-bridge",
      }),
      { logger: silentLogger, heartbeatMs: 0 },
    );
    try {
      const control = await worker.registeredControl();
      expect(control.received.find((entry) => entry.method === "register")?.params.filters).toEqual(["hat"]);
      expect(bridge.stats().kms).toEqual([expect.objectContaining({ uri: kms.url, connected: true, filters: true })]);
    } finally {
      await bridge.stop();
      await worker.close();
    }
  });
});
