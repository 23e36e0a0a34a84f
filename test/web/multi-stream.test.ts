/**
 * Several streams per participant, from the library's side, against a
 * scripted JSON-RPC server (ws) with a stand-in RTCPeerConnection: the join
 * says `multiStream`, a screen announced beside a webcam is a second
 * stream (the webcam untouched), `participantUnpublished` with a streamId
 * removes only that stream, and the local screen share publishes and
 * unpublishes with `streamId: "screen"`, ending by itself when the browser
 * ends the capture. Speaker detection is off in Node (no WebAudio).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { reply, type ScriptedServer, startScriptedServer } from "./helpers/scripted-server.ts";
import type { Room } from "../../web/src/client/room.ts";
import { kurentoFor, leaveAll, names, record, rooms, until } from "./support.ts";

const WAIT_MS = 30_000;

/** Enough of RTCPeerConnection for a negotiation without media. */
class FakePeer {
  iceConnectionState = "new";
  onicecandidate: unknown = null;
  ontrack: unknown = null;
  oniceconnectionstatechange: unknown = null;
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
  close(): void {}
}

/** A capture track: ends like a browser's (an `ended` event). */
class FakeTrack extends EventTarget {
  readonly kind = "video";
  readyState = "live";
  enabled = true;
  stop(): void {
    this.readyState = "ended";
  }
}

function fakeMedia(tracks: FakeTrack[]): MediaStream {
  return {
    getTracks: () => tracks,
    getAudioTracks: () => [],
    getVideoTracks: () => tracks,
  } as unknown as MediaStream;
}

interface Seen {
  readonly method: string;
  readonly params: Record<string, unknown>;
}

let server: ScriptedServer;
const seen: Seen[] = [];

beforeAll(async () => {
  vi.stubGlobal("RTCPeerConnection", FakePeer);
  server = await startScriptedServer((frame, socket) => {
    seen.push({ method: frame.method, params: frame.params });
    const session = { sessionId: "s-1" };
    const results: Record<string, object> = {
      joinRoom: { ...session, value: [{ id: "bob", streams: [{ id: "webcam" }] }] },
      publishVideo: { ...session, sdpAnswer: "v=0 fake answer" },
      receiveVideoFrom: { ...session, sdpAnswer: "v=0 fake answer" },
    };
    reply(socket, frame.id, results[frame.method] ?? session);
  });
});

afterEach(async () => {
  await leaveAll();
});

afterAll(async () => {
  vi.unstubAllGlobals();
  await server.close();
});

function notify(method: string, params: object): void {
  server.notify(method, params);
}

async function aliceIn(): Promise<Room> {
  const kurento = kurentoFor(server.url);
  const room = kurento.Room({ room: "multi", user: "alice" });
  rooms.push(room);
  const log = record(room);
  await room.connect();
  await until(() => names(log, ["stream-subscribed"]).length === 1, WAIT_MS, "bob's webcam");
  return room;
}

describe("several streams per participant", () => {
  it("joins with multiStream; a screen beside the webcam is a second stream, and unpublishing it leaves the webcam", async () => {
    const mark = seen.length;
    const room = await aliceIn();
    expect(seen.slice(mark).find((s) => s.method === "joinRoom")?.params).toMatchObject({ multiStream: true });
    expect(room.speakerDetection).toBe(false);
    const bob = room.getParticipant("bob");
    const webcam = bob?.getStream("webcam");
    expect(webcam?.kind).toBe("webcam");
    expect(webcam?.endpointName).toBe("bob");

    const log = record(room);
    notify("participantPublished", { id: "bob", streams: [{ id: "webcam" }, { id: "screen" }] });
    await until(() => names(log).includes("stream-subscribed"), WAIT_MS, "bob's screen");
    const screen = bob?.getStream("screen");
    expect(screen?.getGlobalID()).toBe("bob_screen");
    expect(screen?.kind).toBe("screen");
    expect(screen?.getStreamId()).toBe("screen");
    expect(screen?.endpointName).toBe("bob_screen");
    expect(bob?.getStream("webcam")).toBe(webcam);
    expect(webcam?.status).toBe("live");
    expect(names(log, ["stream-added", "stream-removed"])).toEqual(["stream-added"]);
    expect(seen.filter((s) => s.method === "receiveVideoFrom").map((s) => s.params.sender)).toContain("bob_screen");

    notify("participantUnpublished", { name: "bob", streamId: "bob_screen" });
    await until(() => names(log).includes("stream-removed"), WAIT_MS, "the screen's removal");
    const removed = log
      .filter((r) => r.name === "stream-removed")
      .map((r) => r.event as { stream: { getGlobalID(): string } });
    expect(removed.map((e) => e.stream.getGlobalID())).toEqual(["bob_screen"]);
    expect(names(log)).not.toContain("participant-unpublished");
    expect(bob?.getStreams().map((s) => s.getID())).toEqual(["webcam"]);
    expect(webcam?.status).toBe("live");

    // Without a streamId (the original's meaning): every stream goes.
    notify("participantUnpublished", { name: "bob" });
    await until(() => names(log).includes("participant-unpublished"), WAIT_MS, "bob unpublishing");
    expect(bob?.getStreams()).toEqual([]);
  });

  it("shares a screen with streamId 'screen' and stops when the browser ends the capture", async () => {
    const track = new FakeTrack();
    const getDisplayMedia = vi.fn(async () => fakeMedia([track]));
    vi.stubGlobal("navigator", { mediaDevices: { getDisplayMedia } });
    try {
      const room = await aliceIn();
      const log = record(room);
      const mark = seen.length;
      const screen = await room.shareScreen();
      expect(getDisplayMedia).toHaveBeenCalledOnce();
      expect(screen.kind).toBe("screen");
      expect(screen.getGlobalID()).toBe("alice_screen");
      expect(screen.endpointName).toBe("alice_screen");
      expect(room.getScreenShare()).toBe(screen);
      expect(await room.shareScreen()).toBe(screen);
      expect(room.getLocalParticipant().getStream("screen")).toBe(screen);
      const publish = seen.slice(mark).find((s) => s.method === "publishVideo");
      expect(publish?.params).toMatchObject({ streamId: "screen" });
      expect(names(log, ["stream-published"])).toEqual(["stream-published"]);

      // The browser's "Stop sharing".
      track.stop();
      track.dispatchEvent(new Event("ended"));
      await until(() => names(log).includes("screen-share-stopped"), WAIT_MS, "the share to stop");
      expect(seen.slice(mark).find((s) => s.method === "unpublishVideo")?.params).toMatchObject({ streamId: "screen" });
      expect(room.getScreenShare()).toBeNull();
      expect(screen.disposed).toBe(true);
      expect(room.getLocalParticipant().getStream("screen")).toBeUndefined();
    } finally {
      vi.unstubAllGlobals();
      vi.stubGlobal("RTCPeerConnection", FakePeer);
    }
  });
});
