/**
 * Limits that keep one client from hurting a room, inside workerd with the
 * default limits (the workers project sets none of them): a full room, the
 * request burst of a legitimate client in a full room (the figure README
 * quotes), the legacy relay's buffer before a room is chosen, method names
 * that are not methods, and names that must be refused.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CONTROL_AUDIENCE, roomAudience, signBridgeToken } from "../../protocol/tokens/bridge-token.ts";
import type { Env } from "../../worker/env.ts";
import { MAX_EARLY_FRAMES, relayLegacySocket } from "../../worker/legacy-relay.ts";
import { DEFAULT_RATE_LIMIT_BURST } from "../../worker/rate-limit.ts";
import { Client, type Frame } from "./ws-client.ts";

const SECRET = "test-bridge-secret";

/** A bridge that answers every media command at once (publish/subscribe with an SDP answer). */
async function autoBridge(bridgeId: string): Promise<{ control: Client; links: Client[] }> {
  const control = await Client.open("/bridge/control", {
    Authorization: `Bearer ${await signBridgeToken(SECRET, { bridgeId, audience: CONTROL_AUDIENCE })}`,
  });
  const registered = await control.request("register", {
    bridgeId,
    kms: [{ uri: "ws://127.0.0.1:8888/kurento", limit: 100 }],
    rooms: [],
    filters: [],
  });
  expect(registered.result).toEqual({ accepted: true });
  const links: Client[] = [];
  control.ws.addEventListener("message", async (event) => {
    const frame = JSON.parse(event.data as string) as Frame;
    if (frame.method !== "attach" || frame.id === undefined || frame.id === null) return;
    const room = String(frame.params?.room);
    const link = await Client.open(`/bridge/rooms/${room}`, {
      Authorization: `Bearer ${await signBridgeToken(SECRET, { bridgeId, audience: roomAudience(room) })}`,
    });
    link.ws.addEventListener("message", (e) => {
      const f = JSON.parse(e.data as string) as Frame;
      if (!f.method || f.id === undefined || f.id === null) return;
      const result =
        f.method === "sync"
          ? { held: [] }
          : f.method === "publish" || f.method === "subscribe"
            ? { sdpAnswer: `v=0 answer ${f.method}` }
            : {};
      link.reply(f.id, result);
    });
    links.push(link);
    control.reply(frame.id, {});
  });
  return { control, links };
}

function send(client: Client, id: number, method: string, params: Record<string, unknown>): void {
  client.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
}

describe("a full room", () => {
  it("seats 100 (the default MAX_PARTICIPANTS), refuses the 101st with 201; a subscriber's whole burst is not throttled", {
    timeout: 180_000,
  }, async () => {
    const room = "full-room";
    const bridge = await autoBridge("limits-bridge");
    const publishers: Client[] = [];
    for (let i = 0; i < 99; i++) {
      const c = await Client.open(`/room/${room}`);
      expect((await c.request("joinRoom", { user: `pub${i}`, room })).result).toBeDefined();
      const published = await c.request("publishVideo", { sdpOffer: "v=0 offer", doLoopback: false });
      expect(published.result).toMatchObject({ sdpAnswer: "v=0 answer publish" });
      publishers.push(c);
    }
    const viewer = await Client.open(`/room/${room}`);
    const joined = await viewer.request("joinRoom", { user: "viewer", room });
    expect(joined.result?.value).toHaveLength(99);

    const late = await Client.open(`/room/${room}`);
    const refused = await late.request("joinRoom", { user: "late", room });
    expect(refused.error?.code).toBe(201);
    expect(refused.error?.message).toBe("Room 'full-room' is full (at most 100 participants)");
    // The refusal changed nothing: the others heard of no newcomer.
    expect(publishers[0]?.frames.some((f) => f.method === "participantJoined" && f.params?.id === "late")).toBe(false);

    // The burst: 99 receiveVideoFrom and 10 trickled candidates for each, all sent back to back
    // (a real client waits for each offer to go out first, so it is never faster than this).
    const started = Date.now();
    let id = 1000;
    for (let i = 0; i < 99; i++) {
      send(viewer, id++, "receiveVideoFrom", { sender: `pub${i}_webcam`, sdpOffer: "v=0 sub" });
      for (let k = 0; k < 10; k++) {
        send(viewer, id++, "onIceCandidate", {
          endpointName: `pub${i}`,
          candidate: `candidate:${k} 1 udp ${k} 127.0.0.1 ${5000 + k} typ host`,
          sdpMid: "0",
          sdpMLineIndex: 0,
        });
      }
    }
    const requests = id - 1000;
    const last = id - 1;
    await viewer.waitFor((f) => f.id === last, "the answer to the last request", 120_000);
    for (let n = 1000; n < id; n++) await viewer.waitFor((f) => f.id === n, `answer ${n}`, 120_000);
    const answers = viewer.frames.filter((f) => typeof f.id === "number" && f.id >= 1000);
    const limited = answers.filter((f) => f.error?.code === -32000);
    const errors = answers.filter((f) => f.error);
    console.log(
      JSON.stringify({
        measured: "full-room subscriber burst",
        requests: requests + 1, // + its joinRoom
        answeredWithinMs: Date.now() - started,
        defaultBurst: DEFAULT_RATE_LIMIT_BURST,
      }),
    );
    expect(requests).toBe(1089);
    expect(limited).toEqual([]);
    expect(errors).toEqual([]);
    expect(DEFAULT_RATE_LIMIT_BURST).toBeGreaterThanOrEqual(2 * (requests + 1));

    for (const c of [...publishers, viewer, late, bridge.control, ...bridge.links]) c.ws.close();
  });
});

describe("method names that are not methods", () => {
  const names = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];

  it("are -32601 on /room/:room, joined or not, and change nothing", async () => {
    const c = await Client.open("/room/proto-names");
    for (const method of names) {
      const answer = await c.request(method, {});
      expect(answer.error, method).toEqual({ code: -32601, message: `Method not found: ${method}` });
    }
    expect((await c.request("joinRoom", { user: "ana", room: "proto-names" })).result).toBeDefined();
    for (const method of names) expect((await c.request(method, {})).error?.code, method).toBe(-32601);
    expect((await c.request("ping")).result).toMatchObject({ value: "pong" });
    c.ws.close();
  });

  it("are -32601 on the legacy /room before a room is chosen; room methods still get 102", async () => {
    const c = await Client.open("/room");
    for (const method of names) {
      const answer = await c.request(method, {});
      expect(answer.error, method).toEqual({ code: -32601, message: `Method not found: ${method}` });
    }
    expect((await c.request("publishVideo", { sdpOffer: "v=0" })).error?.code).toBe(102);
    expect((await c.request("joinRoom", { user: "ana", room: "legacy-proto" })).result).toBeDefined();
    c.ws.close();
  });
});

describe("the legacy /room relay", () => {
  /** The relay in front of a room object that is slow to answer (its fetch resolves only when the test says). */
  function relayToSlowRoom(idleMs = 30_000): { client: Client; reachRoom: () => void } {
    let reach: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      reach = resolve;
    });
    const slowEnv = {
      ROOM: {
        idFromName: (name: string) => name,
        get: () => ({
          fetch: async () => {
            await reached;
            return SELF.fetch("https://example.com/room/legacy-slow", { headers: { Upgrade: "websocket" } });
          },
        }),
      },
    } as unknown as Env;
    const response = relayLegacySocket(slowEnv, idleMs);
    if (!response.webSocket) throw new Error("no socket");
    return { client: new Client(response.webSocket), reachRoom: reach };
  }

  it("buffers at most 32 frames while the room is reached: more get -32000, then the socket is closed (1008)", async () => {
    const { client: c, reachRoom } = relayToSlowRoom();
    send(c, 1, "joinRoom", { user: "ana", room: "legacy-slow" });
    for (let i = 0; i < MAX_EARLY_FRAMES; i++) send(c, 100 + i, "ping", {});
    send(c, 999, "ping", {});
    const excess = await c.waitFor((f) => f.error?.code === -32000, "the refusal of the excess frame");
    expect(excess.id).toBe(999);
    expect(excess.error?.message).toMatch(/Too many frames before the room answered \(at most 32 frames/);
    expect(await c.closed()).toBe(1008);
    expect(c.closeReason).toBe("too many frames before joining");
    reachRoom();
  });

  it("buffers up to 32 frames and relays them once the room answers", async () => {
    const { client: c, reachRoom } = relayToSlowRoom();
    send(c, 1, "joinRoom", { user: "bea", room: "legacy-slow" });
    for (let i = 0; i < MAX_EARLY_FRAMES; i++) send(c, 100 + i, "ping", {});
    reachRoom();
    await c.waitFor((f) => f.id === 100 + MAX_EARLY_FRAMES - 1, "the last buffered ping's answer");
    expect(c.frames.find((f) => f.id === 1)?.result).toBeDefined();
    expect(c.frames.filter((f) => f.error)).toEqual([]);
    c.ws.close();
  });

  it("refuses more than 1 MiB of buffered frames", async () => {
    const { client: c, reachRoom } = relayToSlowRoom();
    send(c, 1, "joinRoom", { user: "cy", room: "legacy-slow" });
    const big = "x".repeat(600 * 1024);
    send(c, 2, "customRequest", { blob: big });
    send(c, 3, "customRequest", { blob: big });
    const excess = await c.waitFor((f) => f.error?.code === -32000, "the refusal of the excess bytes");
    expect(excess.id).toBe(3);
    expect(await c.closed()).toBe(1008);
    reachRoom();
  });

  it("closes a socket that chooses no room within IDLE_SOCKET_SECONDS", async () => {
    const { client: c } = relayToSlowRoom(200);
    expect((await c.request("ping")).result).toMatchObject({ value: "pong" });
    expect(await c.closed()).toBe(1008);
    expect(c.closeReason).toMatch(/no joinRoom or connect within/);
  });

  it("applies the room-name rule to a session id's room on connect", async () => {
    const c = await Client.open("/room");
    const b64 = (s: string) => btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    for (const room of ["..", ".", "a\u202eb", "x".repeat(200), ""]) {
      const sessionId = `0123456789abcdef.${b64(unescape(encodeURIComponent(room)))}`;
      const answer = await c.request("connect", { sessionId });
      expect(answer.error?.code, JSON.stringify(room)).toBe(40007);
    }
    expect((await c.request("ping")).result).toMatchObject({ value: "pong" });
    c.ws.close();
  });
});

describe("names", () => {
  it("refuses '.', '..', bidi and invisible characters in room URLs (400) and join params (-32602 naming the field)", async () => {
    // "." and ".." never reach a room: the URL parser already resolves them as path segments.
    for (const room of ["%2E", "%2E%2E"]) {
      const response = await SELF.fetch(`https://example.com/room/${room}`, { headers: { Upgrade: "websocket" } });
      expect(response.status, room).not.toBe(101);
      expect(response.webSocket).toBeNull();
    }
    for (const room of ["a%E2%80%AEb", "a%E2%80%8Bb", "%EF%BB%BFa", "a%E2%81%A6b", "a%C2%85b"]) {
      const response = await SELF.fetch(`https://example.com/room/${room}`, { headers: { Upgrade: "websocket" } });
      expect(response.status, room).toBe(400);
    }
    const c = await Client.open("/room/names-room");
    for (const [field, params] of [
      ["user", { user: "a\u202eb", room: "names-room" }],
      ["user", { user: "..", room: "names-room" }],
      ["user", { user: "\u200bana", room: "names-room" }],
      ["room", { user: "ana", room: "names\u2066room" }],
    ] as const) {
      const answer = await c.request("joinRoom", params);
      expect(answer.error?.code).toBe(-32602);
      expect(answer.error?.message).toContain(field);
    }
    // The same user typed composed and decomposed is one user.
    expect((await c.request("joinRoom", { user: "Ren\u00e9", room: "names-room" })).result).toBeDefined();
    const d = await Client.open("/room/names-room");
    expect((await d.request("joinRoom", { user: "Rene\u0301", room: "names-room" })).error?.code).toBe(104);
    c.ws.close();
    d.ws.close();
  });
});
