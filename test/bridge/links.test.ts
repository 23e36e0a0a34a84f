/**
 * The whole bridge (`startBridge`) between a test server playing the worker
 * (token checked before every upgrade, single-use nonces) and the embedded
 * media server, over real sockets on 127.0.0.1: registration, attach, media
 * commands and events on the room link, malformed frames, reconnection,
 * refused tokens, detaching, a media-server restart and a KMS that is down.
 *
 * Every test starts its own media server, worker stand-in and bridge
 * (helpers/bridge-stack.ts, every server on a port the OS picks), so no test
 * depends on another's rooms or media server. The media server sits behind a
 * KmsRelay: the bridge keeps one KMS address while media servers come and go,
 * and the tests see what the media server itself received and answered.
 */
import { describe, expect, it } from "vitest";
import { filterSupport } from "../../media-server/objects/filters/gstreamer.ts";
import { CloseCode } from "../../protocol/close-codes.ts";
import { JsonRpcCode, RoomCode } from "../../protocol/errors.ts";
import {
  expectNoRefusedCandidates,
  failure,
  idleHealth,
  json,
  KMS_LOST_AFTER_MS,
  publish,
  startStack,
  WAIT_MS,
} from "./helpers/bridge-stack.ts";
import { type Link, waitUntil } from "./helpers/fake-worker.ts";
import { expectTrickledBothWays, subscribeOverLink } from "./helpers/link-media.ts";
import { startSyntheticMedia } from "./helpers/peers.ts";

const VIDEO = Buffer.from("bridge link video");

describe("the bridge's links to the worker", () => {
  it("registers on the control link with a valid token, reports its load and serves /health and /metrics", async () => {
    const stack = await startStack();
    const { worker, bridge, kmsUrl } = stack;
    const control = await worker.registeredControl(WAIT_MS);
    expect(control.bridgeId).toBe("test-bridge");
    const register = control.received.find((entry) => entry.method === "register")!;
    expect(register.params).toEqual({
      bridgeId: "test-bridge",
      kms: [{ uri: kmsUrl, limit: 10 }],
      rooms: [],
      // The embedded media server offers the hat where GStreamer is installed (.ci/run installs it).
      filters: filterSupport().faceOverlay ? ["hat"] : [],
      // Whether the embedded media server has a RecorderEndpoint yet (recording-room.test.ts checks both answers).
      recording: expect.any(Boolean),
      // The embedded media server forwards simulcast (its getInfo lists the capability).
      simulcast: true,
    });
    await control.until(() => control.notifications("load").length >= 2, WAIT_MS, "periodic load reports");
    for (const load of control.notifications("load")) expect(load).toEqual({ pipelines: 0 });

    expect(await json(`${bridge.httpUrl}/health`)).toEqual({
      status: 200,
      body: idleHealth("test-bridge", kmsUrl, { connected: true, state: "connected" }),
    });

    const metrics = await fetch(`${bridge.httpUrl}/metrics`);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    expect(text).toContain("bridge_rooms 0\n");
    expect(text).toContain("bridge_control_connected 1\n");
    expect(text).toContain("bridge_kms_connections 1\n");
    expect(text).toContain(`bridge_kms_connected{uri="${kmsUrl}"} 1`);
    expect(text).toContain("bridge_recordings_active 0\n");
    expect(text).toContain("bridge_recording_uploads_pending 0\n");
    expect((await fetch(`${bridge.httpUrl}/nope`)).status).toBe(404);
    expect(worker.refusals).toEqual([]);
  });

  it("attaches a room, then carries sync, publish, subscribe, ICE both ways and release over the room link", async () => {
    const stack = await startStack();
    const { worker, bridge } = stack;
    const media = stack.media!;
    const control = await worker.registeredControl(WAIT_MS);
    expect(await control.request("attach", { room: "lobby", user: "alice" })).toEqual({});
    const room = await worker.roomLink("lobby", WAIT_MS);
    expect(room.bridgeId).toBe("test-bridge");
    expect(await room.request("sync", { users: [] })).toEqual({ held: [] });

    const alice = await publish(stack, room, "alice");
    await waitUntil(
      async () => (await alice.feedServerCandidates()) > 0 && alice.peer.peer.connectionState === "connected",
      WAIT_MS,
      () => `alice connected through the link's ICE (${alice.peer.peer.connectionState})`,
    );

    const bob = await subscribeOverLink(room, "bob", "alice");
    stack.legs.push(bob);
    const packets = bob.peer.videoPackets(VIDEO);
    const flow = startSyntheticMedia(alice.peer.video, VIDEO, 30, 3000);
    try {
      await waitUntil(
        async () => {
          await bob.feedServerCandidates();
          return packets() >= 10;
        },
        WAIT_MS,
        () => `alice's video at bob (${packets()} packets, bob ${bob.peer.peer.connectionState})`,
      );
    } finally {
      flow.stop();
    }
    for (const user of ["alice", "bob"])
      await room.until(
        () =>
          room
            .notifications("mediaState")
            .some((state) => state.user === user && state.endpoint === "alice" && state.state === "CONNECTED"),
        WAIT_MS,
        `${user}'s mediaState`,
      );

    // Trickle ICE both ways: the bridge accepted every candidate each peer
    // sent, server candidates reached both peers, and the media server's
    // selected pairs join candidates that were trickled, not peer-reflexive ones.
    await expectTrickledBothWays(alice, stack.relay);
    await expectTrickledBothWays(bob, stack.relay);
    expectNoRefusedCandidates(stack);
    const candidatesSent = alice.peer.candidates.length + bob.peer.candidates.length;

    await control.until(
      () => control.notifications("load").some((load) => load.pipelines === 1),
      WAIT_MS,
      "a load report with the new pipeline",
    );
    const health = await json(`${bridge.httpUrl}/health`);
    expect(health.body).toMatchObject({ status: "ok", rooms: 1, pipelines: 1, endpoints: 2 });
    const text = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    expect(text).toContain('bridge_command_duration_seconds_count{op="publish"} 1\n');
    expect(text).toContain('bridge_command_duration_seconds_count{op="subscribe"} 1\n');
    expect(text).toContain(`bridge_command_duration_seconds_count{op="addIceCandidate"} ${candidatesSent}\n`);
    expect(text).not.toContain("bridge_command_errors_total{");
    expect(text).toContain("bridge_endpoints 2\n");
    expect(media.stats().objects).toBe(4);

    expect(await room.request("releaseRoom", { reason: "everyone left" })).toEqual({});
    expect(media.stats().objects).toBe(0);
    await control.until(
      () => control.notifications("load").at(-1)?.pipelines === 0,
      WAIT_MS,
      "a load report back to 0",
    );
  });

  it("answers malformed frames with JSON-RPC errors and keeps serving", async () => {
    const stack = await startStack();
    const { worker } = stack;
    const media = stack.media!;
    const control = await worker.registeredControl(WAIT_MS);
    expect(await control.request("attach", { room: "garbage", user: "x" })).toEqual({});
    const room = await worker.roomLink("garbage", WAIT_MS);
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
        WAIT_MS,
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
    expect(worker.roomLinks("garbage")).toHaveLength(1);
    await waitUntil(() => media.stats().objects === 0, WAIT_MS, "no media left from the failed publish");
  });

  it("reconnects after the worker drops every socket: registers again with its rooms and re-opens the room links", async () => {
    const stack = await startStack();
    const { worker } = stack;
    const media = stack.media!;
    const control = await worker.registeredControl(WAIT_MS);
    await control.request("attach", { room: "resilient", user: "carol" });
    await control.request("attach", { room: "quiet", user: "dan" });
    const room = await worker.roomLink("resilient", WAIT_MS);
    await worker.roomLink("quiet", WAIT_MS);
    const carol = await publish(stack, room, "carol");
    expect(await carol.candidatesAccepted()).toBeGreaterThan(0);
    expect(stack.bridge.stats().rooms.find((entry) => entry.room === "resilient")?.held).toEqual(["carol"]);
    expect(media.stats().objects).toBe(3);
    const controlsBefore = worker.controls().length;
    const noncesBefore = worker.nonces.size;

    worker.dropAll();

    const again = await worker.registeredControl(WAIT_MS, controlsBefore);
    const register = again.received.find((entry) => entry.method === "register")!;
    expect([...(register.params.rooms as string[])].sort()).toEqual(["quiet", "resilient"]);
    const reopened = await worker.roomLink("resilient", WAIT_MS, 1);
    const quiet = await worker.roomLink("quiet", WAIT_MS, 1);
    // The media survived the signalling outage; each room reconciles with sync.
    expect(media.stats().objects).toBe(3);
    expect(await quiet.request("sync", { users: ["dan"] })).toEqual({ held: [] });
    expect(await reopened.request("sync", { users: ["carol", "dan"] })).toEqual({ held: ["carol"] });
    // A fresh token (nonce) for the control link and each room link, none refused.
    expect(worker.nonces.size).toBe(noncesBefore + 3);
    expect(worker.refusals).toEqual([]);
    expect(await reopened.request("sync", { users: [] })).toEqual({ held: [] });
    await waitUntil(() => media.stats().objects === 0, WAIT_MS, "carol's media released by sync");
  });

  it("logs a refused token (401) clearly and retries with backoff", async () => {
    const stack = await startStack();
    const { worker, bridge } = stack;
    await worker.registeredControl(WAIT_MS);
    const controlsBefore = worker.controls().length;
    worker.refuseNext = 2;
    bridge.dropControlLink();
    await worker.registeredControl(WAIT_MS, controlsBefore);
    expect(worker.refusals).toEqual([
      { path: "/bridge/control", status: 401, reason: "refused by the test" },
      { path: "/bridge/control", status: 401, reason: "refused by the test" },
    ]);
    const complaints = stack.logs().filter((line) => line.level === "error" && line.status === 401);
    expect(complaints).toHaveLength(2);
    for (const complaint of complaints) {
      expect(complaint.msg).toMatch(/refused the bridge token \(401\).*BRIDGE_SECRET.*BRIDGE_KEY/);
      expect(complaint).toMatchObject({ link: "control", detail: "refused by the test" });
    }
  });

  it("forgets a room the worker detaches (close 1000) and releases its media, without dialling it again", async () => {
    const stack = await startStack();
    const { worker, bridge } = stack;
    const media = stack.media!;
    const control = await worker.registeredControl(WAIT_MS);
    await control.request("attach", { room: "leaving", user: "erin" });
    await control.request("attach", { room: "staying", user: "finn" });
    const room = await worker.roomLink("leaving", WAIT_MS);
    let staying = await worker.roomLink("staying", WAIT_MS);
    await publish(stack, room, "erin");
    expect(media.stats().objects).toBe(3);

    room.close(CloseCode.NORMAL, "room closed");
    await waitUntil(
      () => !bridge.stats().rooms.some((entry) => entry.room === "leaving"),
      WAIT_MS,
      "the room forgotten",
    );
    await waitUntil(() => media.stats().objects === 0, WAIT_MS, "its media released");
    expect(stack.logs().filter((line) => line.msg === "the room detached the bridge")).toHaveLength(1);

    // A room link closed any other way is dialled again after the backoff's
    // shortest delay. "staying" is dropped twice, one after the other: two
    // reconnections take longer than the first one "leaving" would have made,
    // so had the bridge dialled "leaving" again, that link would be here now.
    for (let round = 1; round <= 2; round++) {
      staying.close(CloseCode.LINK_DROPPED, "a test drops the link");
      staying = await worker.roomLink("staying", WAIT_MS, round);
    }
    expect(worker.roomLinks("leaving")).toHaveLength(1);
    expect(worker.refusals).toEqual([]);
    expect(bridge.stats().rooms.map((entry) => entry.room)).toEqual(["staying"]);
  });

  it("gives a room up to another bridge: closed with 4002 or refused with 409, it releases the room's media and never dials it again", async () => {
    const stack = await startStack();
    const { worker, bridge } = stack;
    const media = stack.media!;
    const control = await worker.registeredControl(WAIT_MS);
    await control.request("attach", { room: "replaced", user: "gina" });
    await control.request("attach", { room: "refused", user: "hugo" });
    const replaced = await worker.roomLink("replaced", WAIT_MS);
    const refused = await worker.roomLink("refused", WAIT_MS);
    await publish(stack, replaced, "gina");
    await publish(stack, refused, "hugo");
    expect(media.stats().objects).toBe(6);

    // "replaced": the room closes the link because another bridge's link took its place.
    replaced.close(CloseCode.BRIDGE_REPLACED, "replaced by a new bridge connection");
    // "refused": the link drops, and the room refuses every new dial: the pool gave it to another bridge.
    worker.servedElsewhere.add("refused");
    refused.close(CloseCode.LINK_DROPPED, "a test drops the link");
    await waitUntil(() => bridge.stats().rooms.length === 0, WAIT_MS, "both rooms forgotten");
    await waitUntil(() => media.stats().objects === 0, WAIT_MS, "their media released");
    expect(worker.refusals.map((r) => [r.path, r.status])).toEqual([["/bridge/rooms/refused", 409]]);
    const warnings = stack
      .logs()
      .filter((line) => line.msg === "another media bridge serves this room now; releasing its media here");
    expect(warnings.map((line) => line.room).sort()).toEqual(["refused", "replaced"]);
    // Neither is dialled again: one link each, ever (the refused dial never became a link).
    expect(worker.roomLinks("replaced")).toHaveLength(1);
    expect(worker.roomLinks("refused")).toHaveLength(1);
  });

  it("starts with its KMS down without crashing, reports it, and uses the KMS once it is up", async () => {
    const stack = await startStack({ id: "bridge-without-kms", kms: "down", settleMs: 300 });
    const { worker, bridge, kmsUrl, relay } = stack;
    const control = await worker.registeredControl(WAIT_MS);
    expect(control.bridgeId).toBe("bridge-without-kms");
    expect(control.received.find((entry) => entry.method === "register")!.params).toEqual({
      bridgeId: "bridge-without-kms",
      kms: [{ uri: kmsUrl, limit: 10 }],
      rooms: [],
      filters: [],
      // A writable RECORDINGS_DIR, but no media server to say it has RecorderEndpoint (nor simulcast).
      recording: false,
      simulcast: false,
    });
    expect(relay.refused).toBeGreaterThan(0);
    expect(await json(`${bridge.httpUrl}/health`)).toEqual({
      status: 503,
      body: idleHealth("bridge-without-kms", kmsUrl, { connected: false, state: "connecting", filters: false }),
    });

    await control.request("attach", { room: "no-kms", user: "fay" });
    const room = await worker.roomLink("no-kms", WAIT_MS);
    const down = await failure(
      room.request("publish", { user: "fay", sdpOffer: "v=0\r\n", loopback: false, dataChannels: false }),
    );
    expect(down.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(down.message).toBe("No media server is reachable right now");

    const late = await stack.startMedia();
    await waitUntil(async () => (await json(`${bridge.httpUrl}/health`)).status === 200, WAIT_MS, "the late KMS");
    expect((await json(`${bridge.httpUrl}/health`)).body).toEqual({
      ...idleHealth("bridge-without-kms", kmsUrl, { connected: true, state: "connected" }),
      rooms: 1,
    });
    const fay = await publish(stack, room, "fay");
    expect(await fay.candidatesAccepted()).toBeGreaterThan(0);
    expect(late.stats()).toMatchObject({ pipelines: 1, objects: 3 });
    expect(await room.request("releaseRoom", {})).toEqual({});
    expect(late.stats().objects).toBe(0);
  });

  it("tells the room mediaLost when its media server restarts, and serves again on the new one", async () => {
    const stack = await startStack();
    const { worker, bridge, kmsUrl } = stack;
    const control = await worker.registeredControl(WAIT_MS);
    await control.request("attach", { room: "phoenix", user: "gus" });
    const room = await worker.roomLink("phoenix", WAIT_MS);
    await publish(stack, room, "gus");
    expect(stack.media!.stats().pipelines).toBe(1);

    await stack.stopMedia();
    const restarted = await stack.startMedia();
    const lost = await room.until(() => room.notifications("mediaLost")[0], WAIT_MS, "mediaLost on the room link");
    expect(lost.users).toBeUndefined();
    expect(String(lost.error)).toMatch(/media server/);
    expect(bridge.stats().rooms.find((entry) => entry.room === "phoenix")?.held).toEqual([]);
    await waitUntil(
      async () => (await json(`${bridge.httpUrl}/health`)).body.status === "ok",
      WAIT_MS,
      "the KMS connected again",
    );
    expect((await json(`${bridge.httpUrl}/health`)).body).toEqual({
      ...idleHealth("test-bridge", kmsUrl, { connected: true, state: "connected" }),
      rooms: 1,
    });

    // Everyone re-publishes on the new media server.
    const gus = await publish(stack, room, "gus");
    expect(await gus.candidatesAccepted()).toBeGreaterThan(0);
    expect(restarted.stats()).toMatchObject({ pipelines: 1, objects: 3 });
    expect(await room.request("releaseRoom", {})).toEqual({});
    expect(restarted.stats().objects).toBe(0);
  });

  it("gives the media up for lost when its KMS stays down, fails commands at once meanwhile, and recovers", async () => {
    const stack = await startStack();
    const { worker, bridge, kmsUrl } = stack;
    const control = await worker.registeredControl(WAIT_MS);
    await control.request("attach", { room: "outage", user: "hal" });
    const room = await worker.roomLink("outage", WAIT_MS);
    await publish(stack, room, "hal");
    await stack.stopMedia();
    const lost = await room.until(
      () => room.notifications("mediaLost")[0],
      WAIT_MS,
      "mediaLost after the KMS stayed down",
    );
    expect(String(lost.error)).toMatch(new RegExp(`down for ${KMS_LOST_AFTER_MS} ms`));
    expect(await json(`${bridge.httpUrl}/health`)).toEqual({
      status: 503,
      body: {
        ...idleHealth("test-bridge", kmsUrl, { connected: false, state: "disconnected" }),
        rooms: 1,
      },
    });

    // The fast path: with no KMS connected the bridge refuses at once, with
    // the selection's own answer, not after REQUEST_TIMEOUT_MS (that failure
    // would say "no answer … within 20000 ms" or "not reachable within").
    const refused = await failure(
      room.request("publish", { user: "hal", sdpOffer: "v=0\r\n", loopback: false, dataChannels: false }),
    );
    expect(refused.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(refused.message).toBe("No media server is reachable right now");
    const text = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    expect(text).toContain('bridge_command_errors_total{op="publish",code="301"} 1\n');

    const back = await stack.startMedia();
    await waitUntil(async () => (await json(`${bridge.httpUrl}/health`)).status === 200, WAIT_MS, "the KMS back");
    expect((await json(`${bridge.httpUrl}/health`)).body).toEqual({
      ...idleHealth("test-bridge", kmsUrl, { connected: true, state: "connected" }),
      rooms: 1,
    });
    const hal = await publish(stack, room, "hal");
    expect(await hal.candidatesAccepted()).toBeGreaterThan(0);
    expect(back.stats()).toMatchObject({ pipelines: 1, objects: 3 });
    expect(await room.request("releaseRoom", {})).toEqual({});
    expect(back.stats().objects).toBe(0);
  });
});
