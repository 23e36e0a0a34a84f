/**
 * Whose error is it: calls the library refuses on its own throw a
 * RoomClientError (a `reason`, no protocol code), never an RpcRequestError
 * (which is kept for the server's answers and transport failures). No
 * server needed: nothing is sent.
 */
import WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { KurentoRoom, RoomClientError } from "../../web/src/client/index.ts";

const FAKE_MEDIA = {
  getTracks: () => [],
  getAudioTracks: () => [],
  getVideoTracks: () => [],
} as unknown as MediaStream;

function setup() {
  const kurento = new KurentoRoom("ws://127.0.0.1:9/room", { WebSocket, heartbeatIntervalMs: 0 });
  const room = kurento.Room({ room: "errors", user: "alice" });
  return { kurento, room };
}

async function refusal(call: () => Promise<unknown>): Promise<RoomClientError> {
  const error = await call().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RoomClientError);
  expect(error).not.toBeInstanceOf(RpcRequestError);
  expect(error).not.toHaveProperty("code");
  return error as RoomClientError;
}

describe("RoomClientError", () => {
  it("publish() before init() is refused as not-initialized", async () => {
    const { kurento, room } = setup();
    const camera = kurento.Stream(room);
    const error = await refusal(() => camera.publish());
    expect(error.reason).toBe("not-initialized");
    expect(error.name).toBe("RoomClientError");
    expect(error.message).toBe("call init() before publish()");
  });

  it("calls on the wrong kind of stream are refused as wrong-stream-kind", async () => {
    const { kurento, room } = setup();
    const camera = kurento.Stream(room, { mediaStream: FAKE_MEDIA });
    expect((await refusal(() => camera.subscribe())).reason).toBe("wrong-stream-kind");
    expect((await refusal(() => camera.unsubscribe())).reason).toBe("wrong-stream-kind");
  });

  it("a disposed stream cannot be published again", async () => {
    const { kurento, room } = setup();
    const camera = kurento.Stream(room, { mediaStream: FAKE_MEDIA });
    camera.dispose();
    const error = await refusal(() => camera.publish());
    expect(error.reason).toBe("disposed");
    expect(error.message).toContain("alice_webcam");
  });

  it("a mirror stream cannot be published", async () => {
    const { kurento, room } = setup();
    const mirror = kurento.Stream(room, { id: "mirror" });
    mirror.mirrorLocalStream(FAKE_MEDIA);
    expect((await refusal(() => mirror.publish())).reason).toBe("mirror-stream");
  });

  it("publishing without WebRTC in this environment is refused as unsupported", async () => {
    const { kurento, room } = setup();
    const camera = kurento.Stream(room, { mediaStream: FAKE_MEDIA });
    expect(globalThis.RTCPeerConnection).toBeUndefined();
    expect((await refusal(() => camera.publish())).reason).toBe("unsupported");
  });

  it("sendData() without a data channel is refused as data-channel", () => {
    const { kurento, room } = setup();
    const camera = kurento.Stream(room, { mediaStream: FAKE_MEDIA });
    expect(() => camera.sendData("x")).toThrow(RoomClientError);
    const withData = kurento.Stream(room, { mediaStream: FAKE_MEDIA, data: true });
    let caught: unknown;
    try {
      withData.sendData("x");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RoomClientError);
    expect((caught as RoomClientError).reason).toBe("data-channel");
    expect((caught as RoomClientError).message).toMatch(/not open/);
  });

  it("KurentoRoom calls before Room() are refused as no-room", async () => {
    const kurento = new KurentoRoom("ws://127.0.0.1:9/room", { WebSocket });
    expect((await refusal(() => kurento.sendMessage("r", "u", "hi"))).reason).toBe("no-room");
    expect((await refusal(() => kurento.sendCustomRequest({}))).reason).toBe("no-room");
  });

  it("connect() on a room that was left is refused as room-closed", async () => {
    const { room } = setup();
    await room.leave();
    const error = await refusal(() => room.connect());
    expect(error.reason).toBe("room-closed");
    expect(error.message).toMatch(/closed room/);
  });

  it("no WebSocket implementation at all is refused as unsupported", () => {
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    global.WebSocket = undefined;
    try {
      const kurento = new KurentoRoom("ws://127.0.0.1:9/room");
      expect(() => kurento.Room({ room: "r", user: "u" })).toThrow(RoomClientError);
    } finally {
      global.WebSocket = saved;
    }
  });
});
