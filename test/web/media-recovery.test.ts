/**
 * Media recovery after the server's `mediaError`: exactly the streams it
 * names are released and negotiated again (all the live ones when it names
 * none), without probing the server first. A scripted JSON-RPC server (ws)
 * and a stand-in RTCPeerConnection let Node run real negotiations.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { reply, replyError, type ScriptedServer, startScriptedServer } from "./helpers/scripted-server.ts";
import { streamsToRecover } from "../../web/src/client/media-recovery.ts";
import { mayRetrySubscribe } from "../../web/src/client/auto-subscribe.ts";
import { RoomClientError } from "../../web/src/client/errors.ts";
import { reconnectDelay } from "../../web/src/client/reconnect.ts";
import type { Room } from "../../web/src/client/room.ts";
import type { StreamStatus } from "../../web/src/client/stream.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { kurentoFor, leaveAll, names, record, rooms, until } from "./support.ts";

/** Bound on what the (scripted) server and the client do: generous, for a busy machine. */
const WAIT_MS = 30_000;

describe("the recovery decision", () => {
  const stream = (id: string, status: StreamStatus) => ({ status, getGlobalID: () => id });
  const wanted = [stream("alice_webcam", "live"), stream("bob_webcam", "live"), stream("carol_webcam", "negotiating")];
  const ids = (list: ReadonlyArray<{ getGlobalID(): string }>) => list.map((s) => s.getGlobalID());

  it("recovers exactly the live streams the server named", () => {
    expect(ids(streamsToRecover(wanted, ["bob_webcam"]))).toEqual(["bob_webcam"]);
    expect(ids(streamsToRecover(wanted, ["alice_webcam", "bob_webcam", "dave_webcam"]))).toEqual([
      "alice_webcam",
      "bob_webcam",
    ]);
    expect(ids(streamsToRecover(wanted, []))).toEqual([]);
  });

  it("recovers every live stream when the server named none", () => {
    expect(ids(streamsToRecover(wanted, undefined))).toEqual(["alice_webcam", "bob_webcam"]);
  });

  it("retries a failed automatic subscription only when it may pass", () => {
    const rpc = (code: number) => new RpcRequestError({ code, message: "x" });
    expect(mayRetrySubscribe(rpc(301))).toBe(true);
    expect(mayRetrySubscribe(rpc(102))).toBe(false);
    expect(mayRetrySubscribe(rpc(105))).toBe(false);
    expect(mayRetrySubscribe(rpc(101))).toBe(false);
    expect(mayRetrySubscribe(new RoomClientError("cancelled", "x"))).toBe(true);
    expect(mayRetrySubscribe(new RoomClientError("unsupported", "x"))).toBe(false);
  });

  it("reconnects at once, then with a doubling delay up to the cap", () => {
    const options = { timeoutMs: 30_000, initialDelayMs: 250, maxDelayMs: 2000 };
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) => reconnectDelay(attempt, options));
    expect(delays).toEqual([0, 250, 500, 1000, 2000, 2000]);
  });
});

/** Enough of RTCPeerConnection for a negotiation without media. */
class FakePeer {
  iceConnectionState = "new";
  onicecandidate: unknown = null;
  ontrack: unknown = null;
  oniceconnectionstatechange: unknown = null;
  closed = false;
  addTransceiver(): object {
    return {};
  }
  createDataChannel(): object {
    return {};
  }
  async createOffer(): Promise<RTCSessionDescriptionInit> {
    return { type: "offer", sdp: "v=0 fake offer" };
  }
  async setLocalDescription(): Promise<void> {}
  async setRemoteDescription(): Promise<void> {}
  async addIceCandidate(): Promise<void> {}
  close(): void {
    this.closed = true;
  }
}

const FAKE_MEDIA = {
  getTracks: () => [],
  getAudioTracks: () => [],
  getVideoTracks: () => [],
} as unknown as MediaStream;

interface Seen {
  readonly method: string;
  readonly params: Record<string, unknown>;
}

let server: ScriptedServer;
const seen: Seen[] = [];
/** receiveVideoFrom of these senders fails (301, worth a retry) this many more times. */
const failSubscriptions = new Map<string, number>();

beforeAll(async () => {
  vi.stubGlobal("RTCPeerConnection", FakePeer);
  server = await startScriptedServer((frame, socket) => {
    seen.push({ method: frame.method, params: frame.params });
    const session = { sessionId: "s-1" };
    const sender = typeof frame.params?.sender === "string" ? frame.params.sender : "";
    const failures = frame.method === "receiveVideoFrom" ? (failSubscriptions.get(sender) ?? 0) : 0;
    if (failures > 0) {
      failSubscriptions.set(sender, failures - 1);
      replyError(socket, frame.id, { code: 301, message: `media server busy (${sender})` });
      return;
    }
    const results: Record<string, object> = {
      joinRoom: {
        ...session,
        value: [
          { id: "bob", streams: [{ id: "webcam" }] },
          { id: "carol", streams: [{ id: "webcam" }] },
        ],
      },
      publishVideo: { ...session, sdpAnswer: "v=0 fake answer" },
      receiveVideoFrom: { ...session, sdpAnswer: "v=0 fake answer" },
    };
    reply(socket, frame.id, results[frame.method] ?? session);
  });
});

afterEach(async () => {
  failSubscriptions.clear();
  await leaveAll();
});

afterAll(async () => {
  vi.unstubAllGlobals();
  await server.close();
});

function notify(method: string, params: object): void {
  server.notify(method, params);
}

/** Alice joins (bob and carol publish), receives both and publishes her camera. */
async function aliceLive(): Promise<Room> {
  const kurento = kurentoFor(server.url);
  const room = kurento.Room({ room: "recovery", user: "alice" });
  rooms.push(room);
  const log = record(room);
  const camera = kurento.Stream(room, { mediaStream: FAKE_MEDIA });
  await room.connect();
  await camera.publish();
  await until(() => names(log, ["stream-subscribed"]).length === 2, WAIT_MS, "both subscriptions");
  expect(room.getStreams().map((s) => [s.getGlobalID(), s.status])).toEqual([
    ["alice_webcam", "live"],
    ["bob_webcam", "live"],
    ["carol_webcam", "live"],
  ]);
  return room;
}

const MEDIA_METHODS = ["publishVideo", "unpublishVideo", "receiveVideoFrom", "unsubscribeFromVideo", "onIceCandidate"];

function mediaRequestsSince(index: number): string[] {
  return seen
    .slice(index)
    .filter((s) => MEDIA_METHODS.includes(s.method))
    .map((s) => `${s.method}${typeof s.params.sender === "string" ? ` ${s.params.sender}` : ""}`);
}

describe("mediaError", () => {
  it("with streams: reports them in error-media and recovers exactly those, without probing", async () => {
    const room = await aliceLive();
    const bob = room.getParticipant("bob")?.getStream();
    const peerBefore = bob?.getWebRtcPeer();
    const log = record(room);
    const mark = seen.length;
    notify("mediaError", { error: "bob's endpoint failed", streams: ["bob_webcam"] });
    await until(() => names(log).includes("stream-recovered"), WAIT_MS, "the recovery");
    expect(log.find((r) => r.name === "error-media")?.event).toEqual({
      error: "bob's endpoint failed",
      streams: ["bob_webcam"],
    });
    const recovered = log.filter((r) => r.name === "stream-recovered").map((r) => r.event as { stream: typeof bob });
    expect(recovered.map((e) => e.stream?.getGlobalID())).toEqual(["bob_webcam"]);
    expect(mediaRequestsSince(mark)).toEqual(["unsubscribeFromVideo bob_webcam", "receiveVideoFrom bob_webcam"]);
    expect(bob?.status).toBe("live");
    expect(bob?.getWebRtcPeer()).not.toBe(peerBefore);
    expect((peerBefore as unknown as FakePeer).closed).toBe(true);
    expect(names(log, ["stream-published", "stream-subscribed"])).toEqual([]);
  });

  it("without streams (an old server, a room-wide failure): releases and recovers every live stream", async () => {
    const room = await aliceLive();
    const log = record(room);
    const mark = seen.length;
    notify("mediaError", { error: "the media server restarted" });
    await until(() => names(log, ["stream-recovered"]).length === 3, WAIT_MS, "three recoveries");
    expect(log.find((r) => r.name === "error-media")?.event).toEqual({ error: "the media server restarted" });
    const requests = mediaRequestsSince(mark);
    expect([...requests].sort()).toEqual([
      "publishVideo",
      "receiveVideoFrom bob_webcam",
      "receiveVideoFrom carol_webcam",
      "unpublishVideo",
      "unsubscribeFromVideo bob_webcam",
      "unsubscribeFromVideo carol_webcam",
    ]);
    // Each stream is released before it is negotiated again.
    expect(requests.indexOf("unpublishVideo")).toBeLessThan(requests.indexOf("publishVideo"));
    for (const sender of ["bob_webcam", "carol_webcam"]) {
      const released = requests.indexOf(`unsubscribeFromVideo ${sender}`);
      expect(released).toBeLessThan(requests.indexOf(`receiveVideoFrom ${sender}`));
    }
    expect(room.getStreams().every((s) => s.status === "live")).toBe(true);
  });

  it("naming no stream of this client recovers nothing", async () => {
    const room = await aliceLive();
    const log = record(room);
    const mark = seen.length;
    notify("mediaError", { error: "someone else's", streams: ["dave_webcam"] });
    await until(() => names(log).includes("error-media"), WAIT_MS, "the error");
    // A recovery would send its first request while handling the mediaError;
    // a request sent now is answered after it: none came before this one.
    await room.sendMessage("still here");
    expect(seen.slice(mark).map((s) => s.method)).toEqual(["sendMessage"]);
    expect(mediaRequestsSince(mark)).toEqual([]);
    expect(names(log, ["stream-recovered"])).toEqual([]);
  });
});

describe("the automatic subscription", () => {
  it("retries a failed subscription after releasing what the failed try may still hold on the server", async () => {
    failSubscriptions.set("bob_webcam", 2);
    const mark = seen.length;
    const room = await aliceLive();
    const forBob = mediaRequestsSince(mark).filter((r) => r.endsWith(" bob_webcam"));
    // The server may have gone on with a try the client gave up on: each retry releases first.
    expect(forBob).toEqual([
      "receiveVideoFrom bob_webcam",
      "unsubscribeFromVideo bob_webcam",
      "receiveVideoFrom bob_webcam",
      "unsubscribeFromVideo bob_webcam",
      "receiveVideoFrom bob_webcam",
    ]);
    expect(mediaRequestsSince(mark).filter((r) => r.endsWith(" carol_webcam"))).toEqual([
      "receiveVideoFrom carol_webcam",
    ]);
    expect(room.getParticipant("bob")?.getStream()?.status).toBe("live");
  });
});
