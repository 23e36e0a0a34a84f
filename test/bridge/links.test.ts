/**
 * The whole bridge (`startBridge`) between a test server playing the worker
 * (token checked before every upgrade, single-use nonces) and the embedded
 * media server, over real sockets on 127.0.0.1: registration, attach, media
 * commands and events on the room link, malformed frames, reconnection,
 * refused tokens, detaching, a media-server restart and a KMS that is down.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { type BridgeHandle, startBridge } from "../../bridge/main.ts";
import { loadConfig } from "../../bridge/config.ts";
import { createLogger, type Logger } from "../../bridge/log.ts";
import { JsonRpcCode, RoomCode } from "../../protocol/errors.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { freePort } from "../helpers/ports.ts";
import { FakeWorker, type Link, waitUntil } from "./helpers/fake-worker.ts";
import { expectValidAnswer, startSyntheticMedia, type TestPeer, testPeer } from "./helpers/peers.ts";

const SECRET = "links-test-secret-0123456789";
const VIDEO = Buffer.from("bridge link video");

let media: MediaServerHandle;
let mediaPort: number;
let worker: FakeWorker;
let bridge: BridgeHandle;
const logLines: string[] = [];
const peers: TestPeer[] = [];
const extraBridges: BridgeHandle[] = [];

function capturingLogger(lines: string[]): Logger {
  return createLogger({ level: "info", sink: (line) => lines.push(line) });
}

function bridgeConfig(kmsUri: string, id = "test-bridge") {
  return loadConfig({
    BRIDGE_SECRET: SECRET,
    BRIDGE_ID: id,
    WORKER_URL: worker.url,
    KMS_URIS: kmsUri,
    KMS_LIMIT: "10",
    REQUEST_TIMEOUT_MS: "5000",
    BRIDGE_HTTP_PORT: "0",
    LOG_LEVEL: "silent",
  });
}

const fastOptions = {
  backoff: { minMs: 50, maxMs: 400 },
  heartbeatMs: 0,
  loadIntervalMs: 300,
  kmsLostAfterMs: 1500,
  settleMs: 1500,
  attachTimeoutMs: 5000,
} as const;

async function json(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function failure(promise: Promise<unknown>): Promise<RpcRequestError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RpcRequestError) return error;
    throw error;
  }
  throw new Error("expected an error answer");
}

/** Publishes `user` in `room` over the room link with a werift peer; ICE flows both ways through the link. */
async function publishOverLink(
  link: Link,
  user: string,
  direction: "sendonly" | "sendrecv" = "sendonly",
): Promise<TestPeer> {
  const peer = testPeer(
    direction,
    (candidate) => void link.request("addIceCandidate", { user, endpoint: user, ...candidate }).catch(() => undefined),
  );
  peers.push(peer);
  const { sdpAnswer } = await link.request<{ sdpAnswer: string }>("publish", {
    user,
    sdpOffer: await peer.offer(),
    loopback: false,
    dataChannels: false,
  });
  expectValidAnswer(sdpAnswer, /a=recvonly/);
  await peer.answer(sdpAnswer);
  return peer;
}

/** Feeds `iceCandidate` notifications for (user, endpoint) into the peer, once each. */
function iceFeeder(link: Link, user: string, endpoint: string, peer: TestPeer): () => Promise<number> {
  let next = 0;
  let fed = 0;
  return async () => {
    const list = link.received;
    for (; next < list.length; next++) {
      const entry = list[next]!;
      if (entry.method !== "iceCandidate" || entry.params.user !== user || entry.params.endpoint !== endpoint) continue;
      fed += 1;
      await peer.addRemote({
        candidate: String(entry.params.candidate),
        sdpMid: (entry.params.sdpMid as string | null) ?? null,
        sdpMLineIndex: Number(entry.params.sdpMLineIndex),
      });
    }
    return fed;
  };
}

beforeAll(async () => {
  mediaPort = await freePort();
  media = await startMediaServer({
    port: mediaPort,
    webrtc: { loopbackOnly: true },
    sessionGraceMs: 1000,
    log: () => {},
  });
  worker = await FakeWorker.start(SECRET);
  bridge = await startBridge(bridgeConfig(media.url), { ...fastOptions, logger: capturingLogger(logLines) });
});

afterAll(async () => {
  await Promise.all(peers.map((peer) => peer.close()));
  await Promise.all(extraBridges.map((extra) => extra.stop()));
  await bridge?.stop();
  await worker?.close();
  await media?.close();
});

describe("the bridge's links to the worker", () => {
  it("registers on the control link with a valid token, reports its load and serves /health and /metrics", async () => {
    const control = await worker.registeredControl();
    expect(control.bridgeId).toBe("test-bridge");
    const register = control.received.find((entry) => entry.method === "register")!;
    expect(register.params).toEqual({
      bridgeId: "test-bridge",
      kms: [{ uri: media.url, limit: 10 }],
      rooms: [],
      filters: [],
    });
    await control.until(() => control.notifications("load").length >= 2, 5000, "periodic load reports");
    expect(control.notifications("load")[0]).toEqual({ pipelines: 0 });

    const health = await json(`${bridge.httpUrl}/health`);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: "ok",
      bridgeId: "test-bridge",
      controlConnected: true,
      registered: true,
      rooms: 0,
      pipelines: 0,
    });
    expect(health.body.kms).toEqual([
      { uri: media.url, connected: true, state: "connected", pipelines: 0, limit: 10, filters: false },
    ]);

    const metrics = await fetch(`${bridge.httpUrl}/metrics`);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    expect(text).toContain("bridge_rooms 0\n");
    expect(text).toContain("bridge_kms_connections 1\n");
    expect(text).toContain(`bridge_kms_connected{uri="${media.url}"} 1`);
    expect((await fetch(`${bridge.httpUrl}/nope`)).status).toBe(404);
  });

  it("attaches a room, then carries sync, publish, subscribe, ICE both ways and release over the room link", async () => {
    const control = await worker.registeredControl();
    expect(await control.request("attach", { room: "lobby", user: "alice" })).toEqual({});
    const room = await worker.roomLink("lobby");
    expect(room.bridgeId).toBe("test-bridge");
    expect(await room.request("sync", { users: [] })).toEqual({ held: [] });

    const alice = await publishOverLink(room, "alice");
    const feedAlice = iceFeeder(room, "alice", "alice", alice);
    await waitUntil(
      async () => (await feedAlice()) > 0 && alice.peer.connectionState === "connected",
      15_000,
      "alice connected through the link's ICE",
    );

    const bob = testPeer(
      "recvonly",
      (candidate) =>
        void room.request("addIceCandidate", { user: "bob", endpoint: "alice", ...candidate }).catch(() => undefined),
    );
    peers.push(bob);
    const { sdpAnswer } = await room.request<{ sdpAnswer: string }>("subscribe", {
      user: "bob",
      sender: "alice",
      sdpOffer: await bob.offer(),
    });
    expectValidAnswer(sdpAnswer, /a=sendonly/);
    await bob.answer(sdpAnswer);
    const packets = bob.videoPackets(VIDEO);
    const feedBob = iceFeeder(room, "bob", "alice", bob);
    const flow = startSyntheticMedia(alice.video, VIDEO, 30, 3000);
    try {
      await waitUntil(
        async () => {
          await feedBob();
          return packets() >= 10;
        },
        20_000,
        "alice's video at bob",
      );
    } finally {
      flow.stop();
    }
    await room.until(
      () =>
        room
          .notifications("mediaState")
          .some((state) => state.user === "bob" && state.endpoint === "alice" && state.state === "CONNECTED"),
      5000,
      "bob's mediaState",
    );
    await control.until(
      () => control.notifications("load").some((load) => load.pipelines === 1),
      5000,
      "a load report with the new pipeline",
    );

    const health = await json(`${bridge.httpUrl}/health`);
    expect(health.body).toMatchObject({ rooms: 1, pipelines: 1, endpoints: 2 });
    const text = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    expect(text).toContain('bridge_command_duration_seconds_count{op="publish"} 1');
    expect(text).toContain('bridge_command_duration_seconds_count{op="subscribe"} 1');
    expect(text).toContain("bridge_endpoints 2\n");
    expect(media.stats().objects).toBe(4);

    expect(await room.request("releaseRoom", { reason: "everyone left" })).toEqual({});
    expect(media.stats().objects).toBe(0);
    await control.until(() => control.notifications("load").at(-1)?.pipelines === 0, 5000, "a load report back to 0");
  });

  it("answers malformed frames with JSON-RPC errors and keeps serving", async () => {
    const control = await worker.registeredControl();
    await control.request("attach", { room: "garbage", user: "x" });
    const room = await worker.roomLink("garbage");
    const errorFor = async (
      link: Link,
      send: () => void,
      id: number | null,
    ): Promise<{ code: number; message: string }> => {
      const before = link.frames.length;
      send();
      const frame = await link.until(
        () =>
          link.frames
            .slice(before)
            .map((text) => JSON.parse(text) as { id?: unknown; error?: { code: number; message: string } })
            .find((parsed) => parsed.error && parsed.id === id),
        5000,
        "an error answer",
      );
      return frame.error!;
    };
    expect((await errorFor(room, () => room.sendRaw("this is not json"), null)).code).toBe(JsonRpcCode.PARSE_ERROR);
    expect((await errorFor(room, () => room.sendRaw("[1,2]"), null)).code).toBe(JsonRpcCode.INVALID_REQUEST);
    expect((await errorFor(room, () => room.sendRaw(Buffer.from([0xff, 0x00, 0x7b])), null)).code).toBe(
      JsonRpcCode.PARSE_ERROR,
    );
    expect(
      (await errorFor(room, () => room.sendRaw('{"jsonrpc":"2.0","id":7,"method":"launchRockets","params":{}}'), 7))
        .code,
    ).toBe(JsonRpcCode.METHOD_NOT_FOUND);
    const badParams = await errorFor(
      room,
      () => room.sendRaw('{"jsonrpc":"2.0","id":8,"method":"publish","params":{"user":"","sdpOffer":5}}'),
      8,
    );
    expect(badParams.code).toBe(JsonRpcCode.INVALID_PARAMS);
    expect(badParams.message).toMatch(/user/);
    expect(badParams.message).toMatch(/sdpOffer/);
    const badCandidate = await failure(
      room.request("addIceCandidate", { user: "x", endpoint: "x", candidate: "c", sdpMLineIndex: -1 }),
    );
    expect(badCandidate.code).toBe(JsonRpcCode.INVALID_PARAMS);
    const badSdp = await failure(
      room.request("publish", { user: "x", sdpOffer: "nonsense", loopback: false, dataChannels: false }),
    );
    expect(badSdp.code).toBe(RoomCode.MEDIA_SDP);

    const badAttach = await failure(control.request("attach", { room: "", user: 3 }));
    expect(badAttach.code).toBe(JsonRpcCode.INVALID_PARAMS);
    expect((await failure(control.request("selfDestruct", {}))).code).toBe(JsonRpcCode.METHOD_NOT_FOUND);
    expect((await errorFor(control, () => control.sendRaw("{]"), null)).code).toBe(JsonRpcCode.PARSE_ERROR);

    // Both links are still up and answer.
    expect(await room.request("sync", { users: [] })).toEqual({ held: [] });
    expect(await control.request("attach", { room: "garbage", user: "y" })).toEqual({});
    expect(room.closed).toBe(false);
    expect(control.closed).toBe(false);
    await waitUntil(() => media.stats().objects === 0, 5000, "no media left from the failed publish");
  });

  it("reconnects after the worker drops every socket: registers again with its rooms and re-opens the room links", async () => {
    const control = await worker.registeredControl();
    await control.request("attach", { room: "resilient", user: "carol" });
    const room = await worker.roomLink("resilient");
    await publishOverLink(room, "carol");
    expect(bridge.stats().rooms.find((entry) => entry.room === "resilient")?.held).toEqual(["carol"]);
    const controlsBefore = worker.controls().length;
    const roomLinksBefore = worker.roomLinks("resilient").length;
    const noncesBefore = worker.nonces.size;

    worker.dropAll();

    const again = await worker.registeredControl(10_000, controlsBefore);
    const register = again.received.find((entry) => entry.method === "register")!;
    expect(register.params.rooms).toEqual(expect.arrayContaining(["lobby", "garbage", "resilient"]));
    const reopened = await worker.roomLink("resilient", 10_000, roomLinksBefore);
    // The media survived the signalling outage; the room reconciles with sync.
    expect(await reopened.request("sync", { users: ["carol", "dan"] })).toEqual({ held: ["carol"] });
    expect(worker.nonces.size).toBeGreaterThan(noncesBefore + 1);
    expect(worker.refusals.filter((refusal) => refusal.status === 401)).toEqual([]);
    expect(await reopened.request("sync", { users: [] })).toEqual({ held: [] });
    await waitUntil(() => media.stats().objects === 0, 5000, "carol's media released by sync");
  });

  it("logs a refused token (401) clearly and retries with backoff", async () => {
    const controlsBefore = worker.controls().length;
    worker.refuseNext = 2;
    bridge.dropControlLink();
    await worker.registeredControl(10_000, controlsBefore);
    const refused = worker.refusals.filter((refusal) => refusal.status === 401 && refusal.path === "/bridge/control");
    expect(refused.length).toBeGreaterThanOrEqual(2);
    const lines = logLines.map((line) => JSON.parse(line) as { level: string; msg: string; status?: number });
    const complaint = lines.find((line) => line.level === "error" && line.status === 401);
    expect(complaint?.msg).toMatch(/refused the bridge token \(401\).*BRIDGE_SECRET/);
  });

  it("forgets a room the worker detaches (close 1000) and releases its media", async () => {
    const control = await worker.registeredControl();
    await control.request("attach", { room: "leaving", user: "erin" });
    const room = await worker.roomLink("leaving");
    await publishOverLink(room, "erin");
    expect(media.stats().objects).toBe(3);
    const linksBefore = worker.roomLinks("leaving").length;
    room.close(1000, "room closed");
    await waitUntil(() => !bridge.stats().rooms.some((entry) => entry.room === "leaving"), 5000, "the room forgotten");
    await waitUntil(() => media.stats().objects === 0, 5000, "its media released");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(worker.roomLinks("leaving").length).toBe(linksBefore);
  });

  it("starts with its KMS down without crashing, reports it, and uses the KMS once it is up", async () => {
    const port = await freePort();
    const lines: string[] = [];
    const lonely = await startBridge(bridgeConfig(`ws://127.0.0.1:${port}/kurento`, "bridge-without-kms"), {
      ...fastOptions,
      settleMs: 300,
      logger: capturingLogger(lines),
    });
    extraBridges.push(lonely);
    const control = await waitUntil(
      () =>
        worker
          .controls()
          .find(
            (link) =>
              link.bridgeId === "bridge-without-kms" &&
              !link.closed &&
              link.received.some((entry) => entry.method === "register"),
          ),
      10_000,
      "the second bridge registered",
    );
    expect(control.received.find((entry) => entry.method === "register")!.params.filters).toEqual([]);
    const health = await json(`${lonely.httpUrl}/health`);
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({
      status: "degraded",
      registered: true,
      kms: [{ connected: false, state: "connecting" }],
    });

    await control.request("attach", { room: "no-kms", user: "fay" });
    const room = await worker.roomLink("no-kms");
    const down = await failure(
      room.request("publish", { user: "fay", sdpOffer: "v=0\r\n", loopback: false, dataChannels: false }),
    );
    expect(down.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(down.message).toMatch(/No media server is reachable/);

    const late = await startMediaServer({ port, webrtc: { loopbackOnly: true }, log: () => {} });
    try {
      await waitUntil(
        async () => (await json(`${lonely.httpUrl}/health`)).status === 200,
        15_000,
        "the late KMS connected",
      );
      await publishOverLink(room, "fay");
      expect(late.stats()).toMatchObject({ pipelines: 1, objects: 3 });
      await room.request("releaseRoom", {});
      expect(late.stats().objects).toBe(0);
    } finally {
      await lonely.stop();
      await late.close();
    }
  });

  it("tells the room mediaLost when its media server restarts, and serves again on the new one", async () => {
    const control = await worker.registeredControl();
    await control.request("attach", { room: "phoenix", user: "gus" });
    const room = await worker.roomLink("phoenix");
    await publishOverLink(room, "gus");
    expect(media.stats().pipelines).toBe(1);

    await media.close();
    media = await startMediaServer({
      port: mediaPort,
      webrtc: { loopbackOnly: true },
      sessionGraceMs: 1000,
      log: () => {},
    });
    const lost = await room.until(() => room.notifications("mediaLost")[0], 15_000, "mediaLost on the room link");
    expect(lost.users).toBeUndefined();
    expect(String(lost.error)).toMatch(/media server/);
    expect(bridge.stats().rooms.find((entry) => entry.room === "phoenix")?.held).toEqual([]);
    await waitUntil(
      async () => (await json(`${bridge.httpUrl}/health`)).body.status === "ok",
      10_000,
      "the KMS connected again",
    );

    // Everyone re-publishes on the new media server.
    await publishOverLink(room, "gus");
    expect(media.stats()).toMatchObject({ pipelines: 1, objects: 3 });
    await room.request("releaseRoom", {});
    expect(media.stats().objects).toBe(0);
  });
  it("gives the media up for lost when its KMS stays down, fails commands at once meanwhile, and recovers", async () => {
    const control = await worker.registeredControl();
    await control.request("attach", { room: "outage", user: "hal" });
    const room = await worker.roomLink("outage");
    await publishOverLink(room, "hal");
    await media.close();
    const lost = await room.until(
      () => room.notifications("mediaLost")[0],
      10_000,
      "mediaLost after the KMS stayed down",
    );
    expect(String(lost.error)).toMatch(/down for 1500 ms/);
    const health = await json(`${bridge.httpUrl}/health`);
    expect(health.status).toBe(503);
    expect(health.body.kms).toEqual([
      expect.objectContaining({ connected: false, state: "disconnected", pipelines: 0 }),
    ]);
    const started = Date.now();
    const refused = await failure(
      room.request("publish", { user: "hal", sdpOffer: "v=0\r\n", loopback: false, dataChannels: false }),
    );
    expect(refused.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(Date.now() - started).toBeLessThan(1000);

    media = await startMediaServer({
      port: mediaPort,
      webrtc: { loopbackOnly: true },
      sessionGraceMs: 1000,
      log: () => {},
    });
    await waitUntil(async () => (await json(`${bridge.httpUrl}/health`)).status === 200, 15_000, "the KMS back");
    await publishOverLink(room, "hal");
    expect(media.stats()).toMatchObject({ pipelines: 1, objects: 3 });
    await room.request("releaseRoom", {});
    expect(media.stats().objects).toBe(0);
  });
});
