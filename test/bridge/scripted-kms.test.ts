/**
 * What only a real KMS does, against a scripted Kurento-protocol server and
 * the real kurento-client: the hat filter (FaceOverlayFilter) wired into the
 * publisher's chain, KMS `Error` events routed to the right users, a KMS that
 * stops answering (REQUEST_TIMEOUT_MS), and the filter capability in
 * `register`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_HAT, loadConfig } from "../../bridge/config.ts";
import { createLogger, silentLogger } from "../../bridge/log.ts";
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

/** Bound of every wait: it only guards against a hang. */
const WAIT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 800;

let kms: ScriptedKms;
let pool: KmsPool;
const rooms: RoomMedia[] = [];
/** The pool's log (debug and up), one JSON object per line. */
const poolLog: string[] = [];

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
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    lostAfterMs: 2000,
    log: createLogger({ level: "debug", sink: (line) => poolLog.push(line) }),
    onLost: () => undefined,
  });
  await pool.settle(WAIT_MS);
  expect(pool.connectedCount).toBe(1);
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
    const [pipeline] = kms.idsOf("MediaPipeline");
    const filters = kms.idsOf("FaceOverlayFilter");
    // One filter, made in alice's pipeline by one `create` with exactly that pipeline.
    expect(filters).toHaveLength(1);
    const filter = filters[0]!;
    expect(filter).toMatch(new RegExp(`^${pipeline}/[0-9a-f-]{36}_kurento\\.FaceOverlayFilter$`));
    expect(
      kms.requests
        .filter((request) => request.method === "create" && request.params.type === "FaceOverlayFilter")
        .map((request) => request.params.constructorParams),
    ).toEqual([{ mediaPipeline: pipeline }]);
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
    // No disconnect: the second connect replaced the PassThrough's source, and KMS would cut the new link.
    expect(kms.invocations("disconnect")).toEqual([]);

    // Already on: nothing new is created or connected.
    const requestsBefore = kms.requests.length;
    expect(await room.handlers.applyFilter({ user: "alice", filter: "hat" })).toEqual({});
    expect(kms.idsOf("FaceOverlayFilter")).toEqual([filter]);
    expect(kms.requests.slice(requestsBefore)).toEqual([]);

    await room.handlers.removeFilter({ user: "alice", filter: "hat" });
    expect(kms.invocations("connect").at(-1)).toEqual(
      expect.objectContaining({ object: endpoint, operationParams: expect.objectContaining({ sink: passThrough }) }),
    );
    expect(kms.idsOf("FaceOverlayFilter")).toEqual([]);
    await room.handlers.unpublish({ user: "alice" });
    await waitUntil(() => kms.objects.size === 0, WAIT_MS, "everything released");
  });

  it("sends an element's Error event to its owner, naming the stream it carries, and a pipeline's to everyone", async () => {
    const { room, events } = newRoom("error-events");
    await room.handlers.publish({ user: "bob", sdpOffer: OFFER, loopback: false, dataChannels: false });
    await room.handlers.subscribe({ user: "carol", sender: "bob", sdpOffer: OFFER });
    const [pipeline] = kms.idsOf("MediaPipeline");
    const [bobEndpoint, carolEndpoint] = kms.idsOf("WebRtcEndpoint");
    const [bobPassThrough] = kms.idsOf("PassThrough");
    // The bridge subscribes to Error on every element it makes; raise each event once all four subscriptions are in.
    const targets = [carolEndpoint!, bobEndpoint!, bobPassThrough!, pipeline!];
    await waitUntil(
      () => targets.every((object) => kms.subscribed(object, "Error")),
      WAIT_MS,
      () => `Error subscriptions (${targets.filter((object) => kms.subscribed(object, "Error")).length} of 4)`,
    );
    kms.raiseError(carolEndpoint!, "carol's endpoint broke", 40401);
    kms.raiseError(bobEndpoint!, "bob's endpoint broke");
    kms.raiseError(bobPassThrough!, "bob's PassThrough broke");
    kms.raiseError(pipeline!, "pipeline broke");
    await waitUntil(
      () => events.filter((event) => event.event === "mediaError").length >= 4,
      WAIT_MS,
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
    const requestsFrom = kms.requests.length;
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
    // The failure came from the request timeout (not from anything else that might fail a publish): its own message,
    // naming the operation the scripted KMS left unanswered, and not before the timeout had run.
    expect((error as RpcRequestError).message).toBe(
      `WebRtcEndpoint.processOffer: no answer from the media server ${kms.url} within ${REQUEST_TIMEOUT_MS} ms`,
    );
    expect(
      kms.requests
        .slice(requestsFrom)
        .filter((request) => request.method === "invoke" && request.params.operation === "processOffer"),
    ).toHaveLength(1);
    expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    // The endpoint, PassThrough and then the idle pipeline were released.
    await waitUntil(() => kms.objects.size === 0, WAIT_MS, "the half-made publisher released");
  });

  it("survives a KMS that refuses (or never answers) the unsubscribes kurento-client sends after a release", async () => {
    const { room } = newRoom("strict-room");
    kms.refuseUnsubscribe = true;
    await room.handlers.publish({ user: "erin", sdpOffer: OFFER, loopback: false, dataChannels: false });
    await room.handlers.subscribe({ user: "finn", sender: "erin", sdpOffer: OFFER });
    await room.handlers.unsubscribe({ user: "finn", sender: "erin" });
    await waitUntil(
      () => kms.requests.filter((request) => request.method === "unsubscribe").length >= 3,
      WAIT_MS,
      "unsubscribes after releasing finn's endpoint",
    );
    kms.refuseUnsubscribe = false;
    const silentFrom = kms.requests.length;
    const logFrom = poolLog.length;
    kms.silent.add("unsubscribe");
    await room.handlers.unpublish({ user: "erin" });
    await waitUntil(() => kms.objects.size === 0, WAIT_MS, "everything released");
    // Each unanswered unsubscribe times out inside kurento-client (after REQUEST_TIMEOUT_MS) as an 'error' on its
    // object, which nobody listens to: the bridge logs it instead of crashing (an unheard 'error' would fail this file).
    const silent = (): number =>
      kms.requests.slice(silentFrom).filter((request) => request.method === "unsubscribe").length;
    const timedOut = (): number =>
      poolLog
        .slice(logFrom)
        .map((line) => JSON.parse(line) as { msg: string; error?: string })
        .filter((line) => line.msg === "kurento-client object error" && /Request has timed out$/.test(line.error ?? ""))
        .length;
    await waitUntil(
      () => silent() >= 5 && timedOut() >= silent(),
      WAIT_MS,
      () => `every unanswered unsubscribe timed out and logged (${timedOut()} of ${silent()})`,
    );
    expect(timedOut()).toBe(silent());
    expect(kms.requests.filter((request) => request.method === "unsubscribe").length).toBeGreaterThanOrEqual(8);
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
      const control = await worker.registeredControl(WAIT_MS);
      expect(control.received.find((entry) => entry.method === "register")?.params.filters).toEqual(["hat"]);
      expect(bridge.stats().kms).toEqual([expect.objectContaining({ uri: kms.url, connected: true, filters: true })]);
    } finally {
      await bridge.stop();
      await worker.close();
    }
  });
});
