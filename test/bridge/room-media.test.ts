/**
 * A room's media graph driven through the real kurento-client against the
 * embedded media server (in-process, free port), with werift peers standing
 * in for browsers: real SDP offers, trickle ICE both ways, RTP forwarded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { silentLogger } from "../../bridge/log.ts";
import { KmsPool } from "../../bridge/media/kms-pool.ts";
import { connectKurentoMediaServer } from "../../bridge/media/kurento-media-server.ts";
import { RoomMedia } from "../../bridge/media/room-media.ts";
import { DEFAULT_HAT } from "../../bridge/config.ts";
import type { MediaEvent } from "../../protocol/bridge.ts";
import { RoomCode } from "../../protocol/errors.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { waitUntil } from "./helpers/fake-worker.ts";
import { KmsRelay } from "./helpers/kms-relay.ts";
import { type Candidate, expectValidAnswer, startSyntheticMedia, type TestPeer, testPeer } from "./helpers/peers.ts";

const VIDEO = Buffer.from("bridge test video");
const HAT = { url: "http://127.0.0.1:1/img/mario-wings.png", ...DEFAULT_HAT };
/** Bound of every wait: it only guards against a hang. */
const WAIT_MS = 30_000;

let server: MediaServerHandle;
/** Between the pool and the media server: what the media server received and answered. */
let relay: KmsRelay;
let pool: KmsPool;
const peers: TestPeer[] = [];
const rooms: RoomMedia[] = [];

function newRoom(name: string, events: MediaEvent[] = []): { room: RoomMedia; events: MediaEvent[] } {
  const room = new RoomMedia({ room: name, pool, hat: HAT, emit: (event) => events.push(event), log: silentLogger });
  rooms.push(room);
  return { room, events };
}

/**
 * Every candidate in `candidates` reached the media server as `addIceCandidate` on one endpoint, and the media server
 * accepted it; returns that endpoint's id.
 */
function expectAddedAtMediaServer(candidates: readonly Candidate[]): string {
  expect(candidates.length).toBeGreaterThan(0);
  const wanted = new Set(candidates.map((candidate) => candidate.candidate));
  const added = relay
    .invocations("addIceCandidate")
    .filter((call) => wanted.has(String((call.operationParams.candidate as { candidate?: unknown }).candidate)));
  expect(added.map((call) => (call.operationParams.candidate as { candidate: string }).candidate).sort()).toEqual(
    [...wanted].sort(),
  );
  for (const call of added) expect(call.reply).toMatchObject({ result: { sessionId: expect.any(String) } });
  for (const call of added) expect(call.reply?.error).toBeUndefined();
  const endpoints = [...new Set(added.map((call) => call.object))];
  expect(endpoints).toHaveLength(1);
  return endpoints[0]!;
}

async function rpcFailure(promise: Promise<unknown>): Promise<RpcRequestError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RpcRequestError) return error;
    throw error;
  }
  throw new Error("expected the command to fail");
}

// A media server without filters, as on a machine without GStreamer: the hat's refusal is tested here (the
// hat itself in integration/media-system.test.ts and e2e/hat.test.ts). Read at its first getInfo.
process.env.KMS_FILTERS = "off";
afterAll(() => {
  delete process.env.KMS_FILTERS;
});

beforeAll(async () => {
  server = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, sessionGraceMs: 500, log: () => {} });
  relay = await KmsRelay.start();
  relay.pointAt(server.port);
  pool = new KmsPool({
    kms: [{ uri: relay.url, limit: 2 }],
    factory: connectKurentoMediaServer,
    requestTimeoutMs: 20_000,
    lostAfterMs: 3000,
    log: silentLogger,
    onLost: (slot, reason) => {
      for (const room of rooms) if (room.pinnedSlot === slot) room.mediaLost(reason);
    },
  });
  await pool.settle(WAIT_MS);
  expect(pool.connectedCount).toBe(1);
});

afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.close()));
  await Promise.all(rooms.splice(0).map((room) => room.releaseRoom()));
});

afterAll(async () => {
  await pool?.close();
  await relay?.close();
  await server?.close();
});

describe("room media through kurento-client and the embedded media server", () => {
  it("publishes and subscribes with real offers, trickles ICE both ways and forwards RTP; releaseUser frees every object", async () => {
    const { room, events } = newRoom("media-room");
    const sent: string[] = [];
    // Every answer is kept: ICE could connect through peer-reflexive candidates with the trickle path broken.
    const answers: Array<Promise<unknown>> = [];
    const alice = testPeer("sendonly", (candidate) => {
      sent.push("alice");
      answers.push(room.handlers.addIceCandidate({ user: "alice", endpoint: "alice", ...candidate }));
    });
    const bob = testPeer("recvonly", (candidate) => {
      sent.push("bob");
      answers.push(room.handlers.addIceCandidate({ user: "bob", endpoint: "alice", ...candidate }));
    });
    peers.push(alice, bob);

    // The publisher's candidates may reach the bridge before its publish does: they wait in the queue.
    const { sdpAnswer } = await room.handlers.publish({
      user: "alice",
      sdpOffer: await alice.offer(),
      loopback: false,
      dataChannels: false,
    });
    expectValidAnswer(sdpAnswer, /m=video[\s\S]*a=recvonly/);
    expect(sdpAnswer).not.toContain("a=candidate:");
    await alice.answer(sdpAnswer);

    // Server candidates arrive as iceCandidate events for alice's own endpoint.
    let delivered = 0;
    const deliver = async (user: string, endpoint: string, peer: TestPeer) => {
      for (const event of events) {
        if (event.event !== "iceCandidate" || event.user !== user || event.endpoint !== endpoint) continue;
        if ((event as { delivered?: boolean }).delivered) continue;
        (event as { delivered?: boolean }).delivered = true;
        delivered += 1;
        await peer.addRemote({
          candidate: event.candidate,
          sdpMid: event.sdpMid ?? null,
          sdpMLineIndex: event.sdpMLineIndex,
        });
      }
    };
    await waitUntil(
      async () => {
        await deliver("alice", "alice", alice);
        return alice.peer.connectionState === "connected";
      },
      WAIT_MS,
      () =>
        `the publisher's peer connection (state ${alice.peer.connectionState}, ICE ${alice.peer.iceConnectionState}, ${delivered} server candidates delivered, ${alice.candidates.length} local, queued ${room.stats().queuedCandidates})`,
    );
    expect(delivered).toBeGreaterThan(0);
    expect(sent).toContain("alice");

    const subscription = await room.handlers.subscribe({ user: "bob", sender: "alice", sdpOffer: await bob.offer() });
    expectValidAnswer(subscription.sdpAnswer, /m=video[\s\S]*a=sendonly/);
    await bob.answer(subscription.sdpAnswer);
    const packets = bob.videoPackets(VIDEO);
    const media = startSyntheticMedia(alice.video, VIDEO, 30, 3000);
    try {
      await waitUntil(
        async () => {
          await deliver("bob", "alice", bob);
          return bob.peer.connectionState === "connected" && packets() >= 10;
        },
        WAIT_MS,
        () =>
          `video from alice at bob (bob ${bob.peer.connectionState}/${bob.peer.iceConnectionState}, ${packets()} packets, alice ${alice.peer.connectionState})`,
      );
    } finally {
      media.stop();
    }
    expect(sent).toContain("bob");
    expect(
      events.some(
        (event) =>
          event.event === "mediaState" &&
          event.user === "alice" &&
          event.endpoint === "alice" &&
          event.state === "CONNECTED",
      ),
    ).toBe(true);
    expect(events.some((event) => event.event === "mediaError" || event.event === "mediaLost")).toBe(false);
    // Trickle ICE from the peers: the bridge answered each candidate `{}`, and each reached the media server (the
    // publisher's may have waited in the bridge's queue) and was accepted there.
    for (const answer of await Promise.all(answers)) expect(answer).toEqual({});
    const aliceEndpoint = expectAddedAtMediaServer(alice.candidates);
    const bobEndpoint = expectAddedAtMediaServer(bob.candidates);
    expect(aliceEndpoint).not.toBe(bobEndpoint);

    // pipeline + alice's WebRtcEndpoint and PassThrough + bob's WebRtcEndpoint
    expect(server.stats()).toMatchObject({ objects: 4, pipelines: 1 });
    expect(room.stats()).toMatchObject({
      pipeline: true,
      publishers: 1,
      subscriptions: 1,
      endpoints: 2,
      queuedCandidates: 0,
    });
    expect(room.heldUsers()).toEqual(["alice", "bob"]);

    await room.handlers.releaseUser({ user: "bob" });
    expect(server.stats().objects).toBe(3);
    await room.handlers.releaseUser({ user: "alice" });
    // The last user's media went: the pipeline went with it.
    await waitUntil(() => server.stats().objects === 0, WAIT_MS, "every media object released");
    expect(server.stats().pipelines).toBe(0);
    expect(pool.totalPipelines).toBe(0);
    expect(room.stats()).toMatchObject({ pipeline: false, endpoints: 0 });
  });

  it("loops a publisher's media back to itself through its PassThrough", async () => {
    const { room, events } = newRoom("loopback-room");
    const carol = testPeer(
      "sendrecv",
      (candidate) => void room.handlers.addIceCandidate({ user: "carol", endpoint: "carol", ...candidate }),
    );
    peers.push(carol);
    const { sdpAnswer } = await room.handlers.publish({
      user: "carol",
      sdpOffer: await carol.offer(),
      loopback: true,
      dataChannels: false,
    });
    expectValidAnswer(sdpAnswer, /m=video[\s\S]*a=sendrecv/);
    await carol.answer(sdpAnswer);
    const looped = carol.videoPackets(VIDEO);
    const seen = new Set<MediaEvent>();
    const media = startSyntheticMedia(carol.video, VIDEO, 30, 3000);
    try {
      await waitUntil(
        async () => {
          for (const event of events) {
            if (event.event !== "iceCandidate" || seen.has(event)) continue;
            seen.add(event);
            await carol.addRemote({
              candidate: event.candidate,
              sdpMid: event.sdpMid ?? null,
              sdpMLineIndex: event.sdpMLineIndex,
            });
          }
          return looped() >= 10;
        },
        WAIT_MS,
        "carol's own video coming back",
      );
    } finally {
      media.stop();
    }
    await room.handlers.releaseRoom({});
    expect(server.stats().objects).toBe(0);
  });

  it("is idempotent: publishing or subscribing again replaces, releasing twice is fine, releaseRoom frees everything", async () => {
    const { room } = newRoom("idempotent-room");
    const dave = testPeer("sendonly", () => undefined);
    const erin = testPeer("recvonly", () => undefined);
    peers.push(dave, erin);
    const first = await room.handlers.publish({
      user: "dave",
      sdpOffer: await dave.offer(),
      loopback: false,
      dataChannels: true,
    });
    expectValidAnswer(first.sdpAnswer, /a=recvonly/);
    await room.handlers.subscribe({ user: "erin", sender: "dave", sdpOffer: await erin.offer() });
    expect(server.stats().objects).toBe(4);

    // Publishing again replaces dave's endpoint and drops the subscriptions to the old one.
    const again = testPeer("sendonly", () => undefined);
    peers.push(again);
    await room.handlers.publish({ user: "dave", sdpOffer: await again.offer(), loopback: false, dataChannels: false });
    expect(server.stats().objects).toBe(3);
    expect(room.heldUsers()).toEqual(["dave"]);

    const erin2 = testPeer("recvonly", () => undefined);
    const erin3 = testPeer("recvonly", () => undefined);
    peers.push(erin2, erin3);
    await room.handlers.subscribe({ user: "erin", sender: "dave", sdpOffer: await erin2.offer() });
    await room.handlers.subscribe({ user: "erin", sender: "dave", sdpOffer: await erin3.offer() });
    expect(server.stats().objects).toBe(4);

    await room.handlers.unsubscribe({ user: "erin", sender: "dave" });
    await room.handlers.unsubscribe({ user: "erin", sender: "dave" });
    await room.handlers.removeFilter({ user: "dave", filter: "hat" });
    await room.handlers.releaseUser({ user: "nobody" });
    expect(server.stats().objects).toBe(3);

    await room.handlers.releaseRoom({ reason: "test" });
    await room.handlers.releaseRoom({});
    expect(server.stats()).toMatchObject({ objects: 0, pipelines: 0 });
    expect(pool.totalPipelines).toBe(0);
  });

  it("queues candidates until the endpoint exists, and sync drops the users the room no longer has", async () => {
    const { room } = newRoom("sync-room");
    const frank = testPeer("sendonly", () => undefined);
    const grace = testPeer("sendonly", () => undefined);
    peers.push(frank, grace);
    const frankOffer = await frank.offer();
    await waitUntil(() => frank.candidates.length > 0, WAIT_MS, "frank's local candidates");
    for (const candidate of frank.candidates)
      await room.handlers.addIceCandidate({ user: "frank", endpoint: "frank", ...candidate });
    expect(room.stats().queuedCandidates).toBe(frank.candidates.length);
    const framesFrom = relay.frames.length;
    await room.handlers.publish({ user: "frank", sdpOffer: frankOffer, loopback: false, dataChannels: false });
    expect(room.stats().queuedCandidates).toBe(0);
    // The queue was flushed, not dropped: right after processOffer and before gatherCandidates, every queued candidate
    // went to frank's endpoint and the media server accepted it.
    const frankEndpoint = expectAddedAtMediaServer(frank.candidates);
    const order = relay.frames
      .slice(framesFrom)
      .filter((entry) => entry.from === "bridge" && entry.frame.params?.object === frankEndpoint)
      .map((entry) => String(entry.frame.params?.operation))
      .filter((operation) => ["processOffer", "addIceCandidate", "gatherCandidates"].includes(operation));
    expect(order).toEqual(["processOffer", ...frank.candidates.map(() => "addIceCandidate"), "gatherCandidates"]);
    await room.handlers.publish({ user: "grace", sdpOffer: await grace.offer(), loopback: false, dataChannels: false });
    expect(server.stats().objects).toBe(5);

    expect(await room.handlers.sync({ users: ["grace", "henry"] })).toEqual({ held: ["grace"] });
    expect(server.stats().objects).toBe(3);
    expect(await room.handlers.sync({ users: [] })).toEqual({ held: [] });
    await waitUntil(() => server.stats().objects === 0, WAIT_MS, "every media object released");
  });

  it("answers with the media error codes and leaks nothing when a command fails", async () => {
    const { room } = newRoom("error-room");
    const ivan = testPeer("sendonly", () => undefined);
    peers.push(ivan);

    const badSdp = await rpcFailure(
      room.handlers.publish({
        user: "ivan",
        sdpOffer: "v=0\r\nthis is not SDP\r\n",
        loopback: false,
        dataChannels: false,
      }),
    );
    expect(badSdp.code).toBe(RoomCode.MEDIA_SDP);
    await waitUntil(() => server.stats().objects === 0, WAIT_MS, "the failed publish's objects released");

    const nobody = await rpcFailure(room.handlers.subscribe({ user: "judy", sender: "ivan", sdpOffer: "v=0\r\n" }));
    expect(nobody.code).toBe(RoomCode.MEDIA_ENDPOINT);
    expect(nobody.message).toMatch(/ivan has no published media/);

    const noVideo = await rpcFailure(room.handlers.applyFilter({ user: "ivan", filter: "hat" }));
    expect(noVideo.code).toBe(RoomCode.MEDIA_ENDPOINT);

    await room.handlers.publish({ user: "ivan", sdpOffer: await ivan.offer(), loopback: false, dataChannels: false });
    const filter = await rpcFailure(room.handlers.applyFilter({ user: "ivan", filter: "hat" }));
    expect(filter.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(filter.message).toMatch(/^The media server cannot apply filters/);
    expect(filter.message).toContain("FaceOverlayFilter");
    expect(server.stats().objects).toBe(3);

    const self = await rpcFailure(room.handlers.subscribe({ user: "ivan", sender: "ivan", sdpOffer: "v=0\r\n" }));
    expect(self.code).toBe(RoomCode.MEDIA_ENDPOINT);
    await room.handlers.releaseRoom({});
    expect(server.stats().objects).toBe(0);
  });

  it("refuses a new room with 204 when the KMS is at its limit (KMS_LIMIT pipelines)", async () => {
    const filled: RoomMedia[] = [];
    for (const name of ["full-1", "full-2"]) {
      const { room } = newRoom(name);
      const peer = testPeer("sendonly", () => undefined);
      peers.push(peer);
      await room.handlers.publish({
        user: `p-${name}`,
        sdpOffer: await peer.offer(),
        loopback: false,
        dataChannels: false,
      });
      filled.push(room);
    }
    expect(pool.totalPipelines).toBe(2);
    const { room: third } = newRoom("full-3");
    const late = testPeer("sendonly", () => undefined);
    peers.push(late);
    const refused = await rpcFailure(
      third.handlers.publish({
        user: "specialLate",
        sdpOffer: await late.offer(),
        loopback: false,
        dataChannels: false,
      }),
    );
    expect(refused.code).toBe(RoomCode.ROOM_CANNOT_BE_CREATED);
    expect(refused.message).toBe("No resources left to create new room");
    expect(server.stats().pipelines).toBe(2);
    // Room freed on the KMS: the next room fits again.
    await filled[0]!.releaseRoom();
    const retry = testPeer("sendonly", () => undefined);
    peers.push(retry);
    await third.handlers.publish({
      user: "specialLate",
      sdpOffer: await retry.offer(),
      loopback: false,
      dataChannels: false,
    });
    expect(pool.totalPipelines).toBe(2);
    expect(server.stats().pipelines).toBe(2);
  });
});
