import { describe, expect, it } from "vitest";
import { decodeFrame, MAX_FRAME_BYTES } from "../../protocol/jsonrpc.ts";
import { requestParams, splitStreamId, notifications, results } from "../../protocol/room.ts";
import { JsonRpcCode } from "../../protocol/errors.ts";
import { constantTimeEqual, bearerToken } from "../../protocol/tokens/constant-time.ts";
import { newSessionId, roomOfSessionId } from "../../worker/session-id.ts";
import { RpcPeer, RpcRequestError } from "../../protocol/rpc-peer.ts";

describe("decodeFrame", () => {
  it("decodes requests, notifications and responses", () => {
    expect(decodeFrame('{"jsonrpc":"2.0","method":"joinRoom","params":{"user":"a","room":"r"},"id":0}')).toEqual({
      kind: "request",
      id: 0,
      method: "joinRoom",
      params: { user: "a", room: "r" },
    });
    expect(decodeFrame('{"jsonrpc":"2.0","method":"leaveRoom","id":"x"}')).toEqual({
      kind: "request",
      id: "x",
      method: "leaveRoom",
      params: undefined,
    });
    expect(decodeFrame('{"jsonrpc":"2.0","method":"participantLeft","params":{"name":"a"}}')).toMatchObject({
      kind: "notification",
    });
    expect(decodeFrame('{"id":1,"result":{"sessionId":"s"},"jsonrpc":"2.0"}')).toEqual({
      kind: "response",
      id: 1,
      result: { sessionId: "s" },
    });
    expect(decodeFrame('{"id":1,"error":{"code":104,"message":"dup"},"jsonrpc":"2.0"}')).toEqual({
      kind: "response",
      id: 1,
      error: { code: 104, message: "dup" },
    });
  });

  it.each([
    ["malformed JSON", "{nope", JsonRpcCode.PARSE_ERROR],
    ["a number", "42", JsonRpcCode.INVALID_REQUEST],
    ["a string", '"x"', JsonRpcCode.INVALID_REQUEST],
    ["null", "null", JsonRpcCode.INVALID_REQUEST],
    ["a batch", '[{"jsonrpc":"2.0","method":"ping","id":1}]', JsonRpcCode.INVALID_REQUEST],
    ["wrong jsonrpc version", '{"jsonrpc":"1.0","method":"ping","id":7}', JsonRpcCode.INVALID_REQUEST],
    ["a non-string method", '{"jsonrpc":"2.0","method":5,"id":7}', JsonRpcCode.INVALID_REQUEST],
    ["neither request nor response", '{"jsonrpc":"2.0","id":7}', JsonRpcCode.INVALID_REQUEST],
  ])("rejects %s", (_label, frame, code) => {
    const decoded = decodeFrame(frame);
    expect(decoded.kind).toBe("invalid");
    if (decoded.kind === "invalid") expect(decoded.error.code).toBe(code);
  });

  it("keeps the id of an invalid request when it can be read", () => {
    expect(decodeFrame('{"jsonrpc":"1.0","method":"ping","id":7}')).toMatchObject({ kind: "invalid", id: 7 });
  });

  it("refuses frames over the size limit before parsing them", () => {
    const big = `{"jsonrpc":"2.0","method":"sendMessage","params":{"message":"${"x".repeat(MAX_FRAME_BYTES)}"},"id":1}`;
    const decoded = decodeFrame(big);
    expect(decoded.kind === "invalid" && decoded.error.message).toMatch(/too large/);
  });
});

describe("room schemas", () => {
  it("splits stream ids at the last underscore", () => {
    expect(splitStreamId("my_user_webcam")).toEqual({ user: "my_user", stream: "webcam" });
  });

  it("defaults doLoopback to false and drops unknown fields", () => {
    expect(requestParams.publishVideo.parse({ sdpOffer: "v=0", extra: 1 })).toEqual({
      sdpOffer: "v=0",
      doLoopback: false,
    });
  });

  it("accepts the seed's example messages", () => {
    expect(
      results.joinRoom.safeParse({
        value: [{ id: "USER0", streams: [{ id: "webcam" }] }],
        sessionId: "dv41ks9hj761rndhcc8nd8cj8q",
      }).success,
    ).toBe(true);
    expect(
      notifications.iceCandidate.safeParse({
        endpointName: "USER1",
        sdpMLineIndex: 1,
        sdpMid: "video",
        candidate: "candidate:2 1 UDP 1677721855 127.0.1.1 58322 typ srflx raddr 172.16.181.129 rport 59597",
      }).success,
    ).toBe(true);
    expect(
      requestParams.onIceCandidate.safeParse({
        endpointName: "USER1",
        candidate: "candidate:2023387037 1 udp 2122260223 127.0.16.1 48156 typ host generation 0",
        sdpMid: "audio",
        sdpMLineIndex: 0,
      }).success,
    ).toBe(true);
  });

  it("rejects ill-typed params", () => {
    expect(requestParams.joinRoom.safeParse({ user: 5, room: "r" }).success).toBe(false);
    expect(
      requestParams.onIceCandidate.safeParse({ endpointName: "u", candidate: "c", sdpMLineIndex: -1 }).success,
    ).toBe(false);
  });
});

describe("secrets and session ids", () => {
  it("compares in constant time, and only equal strings are equal", () => {
    expect(constantTimeEqual("secret", "secret")).toBe(true);
    expect(constantTimeEqual("secreT", "secret")).toBe(false);
    expect(constantTimeEqual("secret-longer", "secret")).toBe(false);
    expect(constantTimeEqual("", "secret")).toBe(false);
  });

  it("reads bearer tokens", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer  abc ")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });

  it("session ids carry their room, whatever its characters", () => {
    for (const room of ["r1", "sala de reuniones ñ", "a/b?c=d", "会议室"]) {
      const id = newSessionId(room);
      expect(roomOfSessionId(id)).toBe(room);
    }
    expect(roomOfSessionId("no-separator")).toBeNull();
  });
});

describe("RpcPeer", () => {
  function pair() {
    const sent: string[] = [];
    const peer = new RpcPeer({ send: (f) => sent.push(f) }, { timeoutMs: 50 });
    return { sent, peer };
  }

  it("matches responses to requests by id", async () => {
    const { sent, peer } = pair();
    const a = peer.request("ping");
    const b = peer.request("joinRoom", { user: "u", room: "r" });
    const [ra, rb] = sent.map((f) => JSON.parse(f) as { id: number });
    peer.receive(JSON.stringify({ jsonrpc: "2.0", id: rb?.id, error: { code: 104, message: "dup" } }));
    peer.receive(JSON.stringify({ jsonrpc: "2.0", id: ra?.id, result: { value: "pong" } }));
    await expect(a).resolves.toEqual({ value: "pong" });
    await expect(b).rejects.toMatchObject({ code: 104, message: "dup" });
  });

  it("times out a request that gets no answer", async () => {
    const { peer } = pair();
    const error = await peer.request("ping").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRequestError);
    expect((error as RpcRequestError).message).toMatch(/timed out after 50 ms/);
    expect(peer.pending.size).toBe(0);
  });

  it("fails every pending request when the transport closes, and later ones at once", async () => {
    const { peer } = pair();
    const a = peer.request("ping", {}, 0);
    peer.closed("gone");
    await expect(a).rejects.toMatchObject({ message: "gone" });
    await expect(peer.request("ping")).rejects.toMatchObject({ message: "gone" });
  });

  it("answers incoming requests through its handler, errors included", async () => {
    const sent: string[] = [];
    const peer = new RpcPeer(
      { send: (f) => sent.push(f) },
      {
        onRequest: (method) => {
          if (method === "boom") throw new Error("bad thing");
          return { ok: method };
        },
      },
    );
    peer.receive('{"jsonrpc":"2.0","method":"hello","id":1}');
    peer.receive('{"jsonrpc":"2.0","method":"boom","id":2}');
    await new Promise((r) => setTimeout(r, 0));
    expect(sent.map((f) => JSON.parse(f) as { id: number }).sort((a, b) => a.id - b.id)).toEqual([
      { id: 1, result: { ok: "hello" }, jsonrpc: "2.0" },
      { id: 2, error: { code: 999, message: "bad thing" }, jsonrpc: "2.0" },
    ]);
  });
});

describe("frame size", () => {
  it("counts UTF-8 bytes, not characters", () => {
    // 400,000 × "é" is 400,000 characters but 800,000 bytes: under the limit.
    const ok = decodeFrame(`{"jsonrpc":"2.0","method":"ping","params":{"x":"${"é".repeat(400_000)}"},"id":1}`);
    expect(ok.kind).toBe("request");
    // 700,000 × "é" is 1.4 MB in UTF-8, though only 0.7 M characters.
    const big = decodeFrame(`{"jsonrpc":"2.0","method":"ping","params":{"x":"${"é".repeat(700_000)}"},"id":1}`);
    expect(big.kind === "invalid" && big.error.message).toMatch(/too large/);
  });
});

describe("join tokens", async () => {
  const { signJoinToken, joinTokenProblem } = await import("../../protocol/tokens/join-token.ts");
  const secret = "join-secret-for-tests";

  it("let exactly that user into exactly that room until they expire", async () => {
    const now = 1_800_000_000;
    const token = await signJoinToken(secret, { user: "ana", room: "r1", ttlSeconds: 60, nowSeconds: now });
    expect(await joinTokenProblem(secret, token, "ana", "r1", now)).toBeNull();
    expect(await joinTokenProblem(secret, token, "bob", "r1", now)).toMatch(/not for user 'bob'/);
    expect(await joinTokenProblem(secret, token, "ana", "r2", now)).toMatch(/room 'r2'/);
    expect(await joinTokenProblem(secret, token, "ana", "r1", now + 61)).toMatch(/expired/);
    expect(await joinTokenProblem("other-secret", token, "ana", "r1", now)).toMatch(/bad signature/);
    expect(await joinTokenProblem(secret, undefined, "ana", "r1", now)).toMatch(/required/);
    expect(await joinTokenProblem(secret, "v1.e30.x", "ana", "r1", now)).toMatch(/invalid join token/);
  });
});
