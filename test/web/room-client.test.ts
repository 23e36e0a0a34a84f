/**
 * The client library against the real worker (wrangler dev, signalling
 * only): joining, roster events, chat, custom requests, leaving, eviction,
 * bad input and an unreachable server. Node drives it with the `ws` package.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startWranglerDev, type WranglerDev } from "../../scripts/wrangler-dev.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { freePort } from "../helpers/ports.ts";
import { KurentoRoom } from "../../web/src/client/kurento-room.ts";
import { getAllRooms, getClientConfig } from "../../web/src/client/rest.ts";
import { joined, kurentoFor, leaveAll, makeRoom, names, record, rooms, uniqueRoom, until } from "./support.ts";

const ADMIN_TOKEN = "web-test-admin";
/** Bound on anything the server or the network does: generous, a busy machine may be slow but never this slow. */
const WAIT_MS = 30_000;
let dev: WranglerDev;

beforeAll(async () => {
  dev = await startWranglerDev({ vars: { ADMIN_TOKEN, RECONNECT_WINDOW_SECONDS: "5" } });
});

afterEach(async () => {
  await leaveAll();
});

afterAll(async () => {
  await dev?.stop();
});

describe("joining and the roster", () => {
  it("room-connected lists who is there; the others get participant-joined, then participant-left", async () => {
    const roomName = uniqueRoom();
    const alice = await joined(dev.url, roomName, "alice");
    expect(alice.state).toBe("connected");
    expect(alice.sessionId).toMatch(/\S/);
    expect(alice.getRemoteParticipants()).toEqual([]);
    const aliceLog = record(alice);

    const bob = makeRoom(dev.url, roomName, "bob");
    const bobLog = record(bob);
    const connected = await bob.connect();
    expect(connected.participants.map((p) => p.getID())).toEqual(["alice"]);
    expect(connected.streams).toEqual([]);
    expect(bob.getParticipants().map((p) => [p.getID(), p.isLocal()])).toEqual([
      ["bob", true],
      ["alice", false],
    ]);
    expect(names(bobLog, ["connection-state-changed", "room-connected"])).toEqual([
      "connection-state-changed",
      "connection-state-changed",
      "room-connected",
    ]);
    await until(() => names(aliceLog).includes("participant-joined"), WAIT_MS, "alice to hear of bob");
    const joinedEvent = aliceLog.find((r) => r.name === "participant-joined")?.event as {
      participant: { getID(): string };
    };
    expect(joinedEvent.participant.getID()).toBe("bob");
    expect(alice.getParticipant("bob")?.isLocal()).toBe(false);

    await bob.leave();
    expect(bob.state).toBe("closed");
    expect(bob.closeReason).toBe("left");
    const states = bobLog
      .filter((r) => r.name === "connection-state-changed")
      .map((r) => (r.event as { state: string }).state);
    expect(states).toEqual(["connecting", "connected", "leaving", "closed"]);
    await until(() => names(aliceLog).includes("participant-left"), WAIT_MS, "alice to see bob leave");
    expect(alice.getParticipant("bob")).toBeUndefined();
    expect(names(aliceLog, ["participant-joined", "participant-left"])).toEqual([
      "participant-joined",
      "participant-left",
    ]);
  });

  it("a taken name gets error-room with the server's 104, and the promise rejects the same way", async () => {
    const roomName = uniqueRoom();
    await joined(dev.url, roomName, "carol");
    const second = makeRoom(dev.url, roomName, "carol");
    const log = record(second);
    const error = await second.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RpcRequestError);
    expect((error as RpcRequestError).code).toBe(104);
    expect((error as RpcRequestError).message).toContain("already exists");
    const reported = log.find((r) => r.name === "error-room")?.event as { error: RpcRequestError };
    expect(reported.error).toBe(error);
    expect(second.state).toBe("closed");
    expect(second.closeReason).toBe("join-failed");
    expect(names(log)).not.toContain("room-connected");
  });

  it.each([
    ["an empty user name", "", "room-x", /user name: .*must not be empty/],
    ["a blank user name", "   ", "room-x", /user name: .*blank/],
    ["a user name with a control character", "bad\u0007name", "room-x", /user name: .*control characters/],
    ["a too long room name", "dave", "r".repeat(129), /room name: .*at most 128/],
  ])("%s is refused before anything is sent (-32602)", async (_what, user, roomName, message) => {
    const room = makeRoom(dev.url, roomName, user);
    const log = record(room);
    const error = await room.connect().then(
      () => null,
      (e: unknown) => e as RpcRequestError,
    );
    expect(error?.code).toBe(-32602);
    expect(error?.message).toMatch(message);
    expect(names(log)).toEqual(["connection-state-changed", "error-room"]);
    expect(room.closeReason).toBe("join-failed");
  });

  it("an unreachable server gets error-room with a transport error (803)", async () => {
    const port = await freePort();
    const room = kurentoFor(`http://127.0.0.1:${port}`, { connectTimeoutMs: WAIT_MS }).Room({
      room: "nowhere",
      user: "erin",
    });
    rooms.push(room);
    const log = record(room);
    const error = await room.connect().then(
      () => null,
      (e: unknown) => e as RpcRequestError,
    );
    expect(error?.code).toBe(803);
    expect(error?.message).toContain(`127.0.0.1:${port}`);
    expect(names(log, ["error-room"])).toEqual(["error-room"]);
    expect(room.state).toBe("closed");
  });

  it("a room is joined once: connect() again returns the same settled join; a Room left before joining rejects", async () => {
    const room = makeRoom(dev.url, uniqueRoom(), "frank");
    const joining = room.connect();
    const event = await joining;
    expect(event).toEqual({ participants: [], streams: [] });
    await room.leave();
    const log = record(room);
    // The same promise, settled with the same event: nothing is sent, nothing happens.
    expect(room.connect()).toBe(joining);
    await expect(room.connect()).resolves.toBe(event);
    expect(room.state).toBe("closed");
    expect(room.closeReason).toBe("left");
    expect(names(log)).toEqual([]);
    const again = makeRoom(dev.url, uniqueRoom(), "frank");
    await again.leave();
    await expect(again.connect()).rejects.toThrow(/closed room/);
    await expect(again.connect()).rejects.toMatchObject({ name: "RoomClientError", reason: "room-closed" });
  });

  it("names with spaces, slashes, underscores and non-ASCII letters work on the /room/<room> route", async () => {
    const roomName = `sala de reunión/${uniqueRoom()}_x`;
    const alice = await joined(dev.url, roomName, "ana_maría");
    const bob = makeRoom(dev.url, roomName, "björn o'neil");
    const connected = await bob.connect();
    expect(connected.participants.map((p) => p.getID())).toEqual(["ana_maría"]);
    expect(await getAllRooms(dev.url)).toContain(roomName);
    await bob.leave();
    await alice.leave();
  });

  it("the legacy /room route (room taken from joinRoom) works with legacyRoute", async () => {
    const roomName = uniqueRoom("legacy");
    const alice = await joined(dev.url, roomName, "alice", { legacyRoute: true });
    const aliceLog = record(alice);
    const bob = await joined(dev.url, roomName, "bob");
    const seen = bob.getParticipant("alice");
    expect(seen?.getID()).toBe("alice");
    expect(seen?.isLocal()).toBe(false);
    expect(seen?.getStreams()).toEqual([]);
    // Alice (on the relay) hears of bob (on the room's own route): both routes reach the same room.
    await until(() => alice.getParticipant("bob") !== undefined, WAIT_MS, "alice to hear of bob through the relay");
    await bob.sendMessage("through the relay?");
    await until(() => names(aliceLog).includes("newMessage"), WAIT_MS, "the message through the relay");
    expect(aliceLog.find((r) => r.name === "newMessage")?.event).toEqual({
      room: roomName,
      user: "bob",
      message: "through the relay?",
    });
  });

  it("the global WebSocket (Node 22) works without passing one", async () => {
    const kurento = new KurentoRoom(`${dev.url.replace(/^http/, "ws")}/room`, { heartbeatIntervalMs: 0 });
    const room = kurento.Room({ room: uniqueRoom(), user: "gina" });
    rooms.push(room);
    await room.connect();
    expect(room.state).toBe("connected");
  });
});

describe("messages and requests", () => {
  it("chat goes both ways and the sender hears its own message, as in the original", async () => {
    const roomName = uniqueRoom();
    const alice = await joined(dev.url, roomName, "alice");
    const bob = await joined(dev.url, roomName, "bob");
    const aliceHeard = alice.next("newMessage", { filter: (m) => m.user === "bob" });
    const bobHeardSelf = bob.next("newMessage", { filter: (m) => m.user === "bob" });
    await bob.sendMessage("hello alice");
    expect(await aliceHeard).toEqual({ room: roomName, user: "bob", message: "hello alice" });
    expect(await bobHeardSelf).toEqual({ room: roomName, user: "bob", message: "hello alice" });

    const bobHeard = bob.next("newMessage", { filter: (m) => m.user === "alice" });
    await alice.sendMessage("hi bob 👋");
    expect((await bobHeard).message).toBe("hi bob 👋");
  });

  it("KurentoRoom.sendMessage(room, user, message) is checked by the server (102 for another user)", async () => {
    const roomName = uniqueRoom();
    const kurento = kurentoFor(dev.url);
    const room = kurento.Room({ room: roomName, user: "alice" });
    rooms.push(room);
    await room.connect();
    const heard = room.next("newMessage");
    await kurento.sendMessage(roomName, "alice", "original API");
    expect((await heard).message).toBe("original API");
    await expect(kurento.sendMessage(roomName, "mallory", "spoof")).rejects.toMatchObject({ code: 102 });
  });

  it("sendCustomRequest carries the server's answer and errors (hat before publishing: 105; no hat field: -32602)", async () => {
    const kurento = kurentoFor(dev.url);
    const room = kurento.Room({ room: uniqueRoom(), user: "hal" });
    rooms.push(room);
    await room.connect();
    await expect(kurento.sendCustomRequest({ hat: true })).rejects.toMatchObject({ code: 105 });
    await expect(kurento.sendCustomRequest({})).rejects.toMatchObject({ code: -32602 });
    await expect(room.sendCustomRequest({ hat: false })).rejects.toMatchObject({ code: 101 });
  });

  it("setRpcParams merges extra params into every request, and never overrides protocol fields", async () => {
    const roomName = uniqueRoom();
    const watcher = await joined(dev.url, roomName, "watcher");
    const kurento = kurentoFor(dev.url);
    kurento.setRpcParams({ token: "opaque-token", user: "mallory", room: "elsewhere" });
    const room = kurento.Room({ room: roomName, user: "ivy" });
    rooms.push(room);
    const heard = watcher.next("participant-joined");
    await room.connect();
    expect((await heard).participant.getID()).toBe("ivy");
    const message = watcher.next("newMessage");
    await room.sendMessage("with a token");
    expect(await message).toMatchObject({ user: "ivy", room: roomName });
  });
});

describe("the server ends the stay", () => {
  it("/close evicts everyone: participant-evicted, room-closed, closed without reconnecting", async () => {
    const roomName = uniqueRoom("closing");
    const alice = await joined(dev.url, roomName, "alice");
    const bob = await joined(dev.url, roomName, "bob");
    const aliceLog = record(alice);
    const bobLog = record(bob);
    const response = await fetch(`${dev.url}/close?room=${encodeURIComponent(roomName)}`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    await until(() => alice.state === "closed" && bob.state === "closed", WAIT_MS, "both to be closed");
    for (const [room, log] of [
      [alice, aliceLog],
      [bob, bobLog],
    ] as const) {
      expect(
        names(log, ["participant-evicted", "room-closed", "lost-connection", "reconnecting", "error-room"]),
      ).toEqual(["participant-evicted", "room-closed"]);
      expect(log.find((r) => r.name === "room-closed")?.event).toEqual({ room: roomName });
      expect(room.closeReason).toBe("evicted");
    }
    // Stays closed: no reconnection attempt after the server's close.
    await new Promise((r) => setTimeout(r, 500));
    expect(names(aliceLog, ["reconnecting"])).toEqual([]);
    expect(await getAllRooms(dev.url)).not.toContain(roomName);
  });
});

describe("REST helpers", () => {
  it("getClientConfig and getAllRooms read the worker's answers (http or ws URLs)", async () => {
    const config = await getClientConfig(`${dev.url.replace(/^http/, "ws")}/room`);
    expect(config).toEqual({ loopbackRemote: false, loopbackAndLocal: false, filters: [], iceServers: [] });
    const roomName = uniqueRoom("listed");
    await joined(dev.url, roomName, "lee");
    // The directory is updated after the join's reply: poll it (bounded).
    let listed: string[] = [];
    const deadline = Date.now() + WAIT_MS;
    while (!listed.includes(roomName) && Date.now() < deadline) {
      listed = await getAllRooms(dev.url);
      if (!listed.includes(roomName)) await new Promise((r) => setTimeout(r, 100));
    }
    expect(listed).toContain(roomName);
  });
});
