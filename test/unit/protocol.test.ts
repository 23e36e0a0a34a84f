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

  it("defaults doLoopback to false, the stream to the webcam, and drops unknown fields", () => {
    expect(requestParams.publishVideo.parse({ sdpOffer: "v=0", extra: 1 })).toEqual({
      sdpOffer: "v=0",
      doLoopback: false,
      streamId: "webcam",
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
  // That the comparison takes the same time wherever the first difference is
  // holds by construction (every byte of the expected value is XOR-ed into one
  // accumulator, no early exit); a timing assertion would only measure the
  // machine's load, so this test checks the result for every kind of mismatch.
  it("only equal strings are equal: a difference at any position, in length, or in encoding", () => {
    expect(constantTimeEqual("secret", "secret")).toBe(true);
    for (const given of ["Secret", "seCret", "secreT", "secre", "secret-longer", "", "sécret", "secret\u0000"]) {
      expect(constantTimeEqual(given, "secret"), JSON.stringify(given)).toBe(false);
    }
    expect(constantTimeEqual("sécret", "sécret")).toBe(true);
    expect(constantTimeEqual("", "")).toBe(true);
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

describe("token purposes, lifetimes and per-bridge keys", async () => {
  const { signJoinToken, joinTokenProblem } = await import("../../protocol/tokens/join-token.ts");
  const { signBridgeToken, verifyBridgeToken, deriveBridgeKey, CONTROL_AUDIENCE } = await import(
    "../../protocol/tokens/bridge-token.ts"
  );
  const { signToken } = await import("../../protocol/tokens/signed-token.ts");
  const master = "master-bridge-secret-0123456789";
  const now = 1_800_000_000;

  it("derives a bridge's key as base64url(HMAC-SHA256(secret, 'bridge-key:' + id))", async () => {
    const { createHmac } = await import("node:crypto");
    const expected = createHmac("sha256", master).update("bridge-key:b1").digest("base64url");
    expect(await deriveBridgeKey(master, "b1")).toBe(expected);
    expect(await deriveBridgeKey(master, "b2")).not.toBe(expected);
  });

  it("a bridge holding only the key of b1 can sign for b1, never for b2", async () => {
    const keyB1 = await deriveBridgeKey(master, "b1");
    const asB1 = await signBridgeToken({ bridgeKey: keyB1 }, { bridgeId: "b1", audience: CONTROL_AUDIENCE });
    expect(await verifyBridgeToken(master, asB1, CONTROL_AUDIENCE)).toMatchObject({ ok: true, claims: { bid: "b1" } });
    const asB2 = await signBridgeToken({ bridgeKey: keyB1 }, { bridgeId: "b2", audience: CONTROL_AUDIENCE });
    expect(await verifyBridgeToken(master, asB2, CONTROL_AUDIENCE)).toEqual({ ok: false, reason: "bad signature" });
    // The master secret signs for any id (one operator running everything).
    const fromMaster = await signBridgeToken(master, { bridgeId: "b2", audience: CONTROL_AUDIENCE });
    expect((await verifyBridgeToken(master, fromMaster, CONTROL_AUDIENCE)).ok).toBe(true);
    // A token signed with the master secret itself (not a derived key) is refused.
    const raw = await signToken(master, {
      pur: "bridge",
      bid: "b1",
      aud: "control",
      exp: now + 30,
      nonce: "n".repeat(22),
    });
    expect((await verifyBridgeToken(master, raw, CONTROL_AUDIENCE, now)).ok).toBe(false);
  });

  it("a bridge token is never a join token, and a join token never a bridge token", async () => {
    const secret = "shared-secret-for-both-0123";
    // A bridge token signed with exactly the join secret (as a bridge key) is still refused as a join token.
    const bridgeToken = await signBridgeToken({ bridgeKey: secret }, { bridgeId: "ana", audience: "r1" });
    expect(await joinTokenProblem(secret, bridgeToken, "ana", "r1")).toMatch(/not a join token/);
    // Even one carrying every join claim, as long as its purpose is not "join".
    const lookalike = await signToken(secret, { pur: "bridge", sub: "ana", room: "r1", exp: now + 60 });
    expect(await joinTokenProblem(secret, lookalike, "ana", "r1", now)).toMatch(/not a join token/);
    // A join token signed with b1's key, and one carrying every bridge claim, are refused as bridge tokens.
    const keyB1 = await deriveBridgeKey(master, "b1");
    const joinToken = await signJoinToken(keyB1, { user: "b1", room: "control" });
    expect(await verifyBridgeToken(master, joinToken, CONTROL_AUDIENCE)).toMatchObject({ ok: false });
    const joinLookalike = await signToken(keyB1, {
      pur: "join",
      bid: "b1",
      aud: "control",
      exp: Math.floor(Date.now() / 1000) + 30,
      nonce: "n".repeat(22),
    });
    expect(await verifyBridgeToken(master, joinLookalike, CONTROL_AUDIENCE)).toEqual({
      ok: false,
      reason: "not a bridge token",
    });
  });

  it("refuses a join token that expires further ahead than the maximum lifetime", async () => {
    const secret = "join-secret-for-tests";
    const day = await signJoinToken(secret, { user: "ana", room: "r1", ttlSeconds: 86_400, nowSeconds: now });
    expect(await joinTokenProblem(secret, day, "ana", "r1", now)).toBeNull();
    const year = await signJoinToken(secret, { user: "ana", room: "r1", ttlSeconds: 365 * 86_400, nowSeconds: now });
    expect(await joinTokenProblem(secret, year, "ana", "r1", now)).toMatch(
      /lives too long.*at most 86400 s.*JOIN_TOKEN_MAX_TTL_SECONDS/,
    );
    expect(await joinTokenProblem(secret, day, "ana", "r1", now, 3600)).toMatch(/at most 3600 s/);
  });

  it("matches a token's names to the join's after NFC normalisation", async () => {
    const secret = "join-secret-for-tests";
    const token = await signJoinToken(secret, { user: "Rene\u0301", room: "r1", nowSeconds: now });
    expect(await joinTokenProblem(secret, token, "Ren\u00e9", "r1", now)).toBeNull();
  });
});

describe("the name rule (protocol/room.ts, shared with clients)", async () => {
  const { name } = await import("../../protocol/room.ts");
  it("normalises to NFC and refuses '.', '..', control, bidi and invisible format characters", () => {
    expect(name.parse("Rene\u0301")).toBe("Ren\u00e9");
    for (const bad of [".", "..", "a\u202eb", "a\u2068b", "a\u200db", "\ufeffa", "a\u2060", "a\u00adb", "a\u0080b"]) {
      expect(name.safeParse(bad).success).toBe(false);
    }
    for (const good of ["...", ".a", "a.b", "Zoë", "李雷", "x_y"]) expect(name.safeParse(good).success).toBe(true);
  });
});

describe("per-socket rate limit", async () => {
  const { SocketLimiter, RATE_LIMIT_STRIKES, chatBurst } = await import("../../worker/rate-limit.ts");
  it("allows the burst, then refuses; ping is exempt; a socket still flooding after the strikes is to be closed", () => {
    const limiter = new SocketLimiter({ burst: 10, perSecond: 1, chatPerSecond: 1 }, 0);
    for (let i = 0; i < 10; i++) expect(limiter.check("onIceCandidate", 0)).toBe("ok");
    expect(limiter.check("onIceCandidate", 0)).toBe("limited");
    expect(limiter.check("ping", 0)).toBe("ok");
    expect(limiter.check(null, 0)).toBe("limited"); // invalid frames count too
    for (let i = 3; i < RATE_LIMIT_STRIKES; i++) expect(limiter.check("x", 0)).toBe("limited");
    expect(limiter.check("x", 0)).toBe("close");
  });

  it("refills over time and restarts the strike count once the client slowed down", () => {
    const limiter = new SocketLimiter({ burst: 10, perSecond: 10, chatPerSecond: 1 }, 0);
    for (let i = 0; i < 10; i++) limiter.check("a", 0);
    for (let i = 0; i < RATE_LIMIT_STRIKES - 1; i++) expect(limiter.check("a", 0)).toBe("limited");
    expect(limiter.check("a", 1000)).toBe("ok"); // a full bucket again
    expect(limiter.check("a", 1000)).toBe("ok");
    for (let i = 0; i < 8; i++) limiter.check("a", 1000);
    expect(limiter.check("a", 1000)).toBe("limited"); // strikes start from 1 again, not at the limit
  });

  it("gives chat its own, lower rate", () => {
    const limiter = new SocketLimiter({ burst: 1000, perSecond: 1000, chatPerSecond: 2 }, 0);
    const chat = chatBurst(2);
    for (let i = 0; i < chat; i++) expect(limiter.check("sendMessage", 0)).toBe("ok");
    expect(limiter.check("sendMessage", 0)).toBe("limited");
    expect(limiter.check("publishVideo", 0)).toBe("ok");
    expect(limiter.check("sendMessage", 500)).toBe("ok"); // 2 per second: one more after half a second
  });
});
