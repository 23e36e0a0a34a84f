/**
 * Connection loss, against the real worker through a TCP proxy the test can
 * cut: the client resumes its session (`connect {sessionId}`) without anyone
 * seeing it leave or join twice; a half-open connection is noticed by the
 * heartbeat; a seat that expired is reported, not silently re-joined.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startWranglerDev, type WranglerDev } from "../../scripts/wrangler-dev.ts";
import type { Room } from "../../web/src/client/room.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";
import { joined, leaveAll, names, type Recorded, record, sleep, uniqueRoom, until } from "./support.ts";

/** Seconds a dropped participant keeps its seat on this worker. */
const WINDOW_SECONDS = 5;
/** Bound on anything the server, the network or the reconnection loop does: generous (a busy machine is slow, not this slow). */
const WAIT_MS = 30_000;
let dev: WranglerDev;
let proxy: TcpProxy;

beforeAll(async () => {
  dev = await startWranglerDev({ vars: { RECONNECT_WINDOW_SECONDS: String(WINDOW_SECONDS) } });
  proxy = await TcpProxy.start(dev.port);
});

afterEach(async () => {
  proxy.refusing = false;
  await leaveAll();
});

afterAll(async () => {
  await proxy?.close();
  await dev?.stop();
});

const ROSTER_EVENTS = ["participant-joined", "participant-left"] as const;

/** Roster events as "joined:<id>" / "left:<id>", in order. */
function rosterChanges(log: readonly Recorded[]): string[] {
  return log
    .filter((r) => r.name === "participant-joined" || r.name === "participant-left")
    .map((r) => {
      const id = (r.event as { participant: { getID(): string } }).participant.getID();
      return `${r.name === "participant-joined" ? "joined" : "left"}:${id}`;
    });
}

describe("a dropped connection", () => {
  it("resumes the same session: lost-connection, reconnecting, reconnected; nobody sees a leave or a second join", async () => {
    const roomName = uniqueRoom("drop");
    // Alice goes through the proxy; Bob connects directly and watches. Zoe
    // goes through a second proxy, without reconnecting: her seat, dropped
    // after alice's, marks the end of alice's window (below).
    const zoeProxy = await TcpProxy.start(dev.port);
    try {
      const alice = await joined(proxy.httpUrl, roomName, "alice");
      const bob = await joined(dev.url, roomName, "bob");
      const zoe = await joined(zoeProxy.httpUrl, roomName, "zoe", { reconnect: false });
      await until(
        () => alice.getParticipant("bob") !== undefined && alice.getParticipant("zoe") !== undefined,
        WAIT_MS,
        "alice to see bob and zoe",
      );
      await until(() => bob.getParticipant("zoe") !== undefined, WAIT_MS, "bob to see zoe");
      await resumesAndKeepsTheSeat(roomName, alice, bob, zoe, zoeProxy);
    } finally {
      await zoeProxy.close();
    }
  });

  async function resumesAndKeepsTheSeat(
    roomName: string,
    alice: Room,
    bob: Room,
    zoe: Room,
    zoeProxy: TcpProxy,
  ): Promise<void> {
    const sessionBefore = alice.sessionId;
    const aliceLog = record(alice);
    const bobLog = record(bob);

    expect(proxy.dropAll()).toBeGreaterThan(0);
    await until(() => names(aliceLog).includes("reconnected"), WAIT_MS, "alice to reconnect");
    expect(alice.state).toBe("connected");
    expect(alice.sessionId).toBe(sessionBefore);
    expect(names(aliceLog, ["lost-connection", "reconnecting", "reconnected", "error-room"])).toEqual([
      "lost-connection",
      "reconnecting",
      "reconnected",
    ]);
    const states = aliceLog
      .filter((r) => r.name === "connection-state-changed")
      .map((r) => (r.event as { state: string }).state);
    expect(states).toEqual(["reconnecting", "connected"]);

    // Both directions work on the resumed session.
    const bobHears = bob.next("newMessage", { filter: (m) => m.user === "alice", timeoutMs: WAIT_MS });
    await alice.sendMessage("I'm back");
    expect((await bobHears).message).toBe("I'm back");
    const aliceHears = alice.next("newMessage", { filter: (m) => m.user === "bob", timeoutMs: WAIT_MS });
    await bob.sendMessage("welcome back");
    expect((await aliceHears).message).toBe("welcome back");

    // A newcomer sees alice once, and alice sees the newcomer once.
    const carol = await joined(dev.url, roomName, "carol");
    expect(
      carol
        .getRemoteParticipants()
        .map((p) => p.getID())
        .sort(),
    ).toEqual(["alice", "bob", "zoe"]);
    await until(() => alice.getParticipant("carol") !== undefined, WAIT_MS, "alice to see carol");

    // Past alice's window, by an event rather than a clock: zoe's link drops
    // after alice is back, so zoe's seat expires after alice's would have. The
    // room tells bob of departures in order on one socket, so when bob hears
    // zoe leave, a seat alice had lost would already have been announced.
    const zoeLeft = bob.next("participant-left", {
      filter: (e) => e.participant.getID() === "zoe",
      timeoutMs: WAIT_MS,
    });
    expect(zoeProxy.dropAll()).toBeGreaterThan(0);
    await until(() => zoe.state === "closed", WAIT_MS, "zoe to close");
    await zoeLeft;
    expect(rosterChanges(bobLog)).toEqual(["joined:carol", "left:zoe"]);
    expect(
      bob
        .getRemoteParticipants()
        .map((p) => p.getID())
        .sort(),
    ).toEqual(["alice", "carol"]);
    await until(() => alice.getParticipant("zoe") === undefined, WAIT_MS, "alice to see zoe leave");
    expect(rosterChanges(aliceLog)).toEqual(["joined:carol", "left:zoe"]);
    expect(alice.state).toBe("connected");
  }

  it("requests made while reconnecting fail at once with 803, and work again after", async () => {
    const roomName = uniqueRoom("during");
    const alice = await joined(proxy.httpUrl, roomName, "alice", {
      reconnect: { initialDelayMs: 300, maxDelayMs: 300 },
    });
    proxy.refusing = true;
    proxy.dropAll();
    await until(() => alice.state === "reconnecting", WAIT_MS, "alice to be reconnecting");
    await expect(alice.sendMessage("lost?")).rejects.toMatchObject({ code: 803 });
    expect(alice.state).toBe("reconnecting");
    const reconnected = alice.next("reconnected", { timeoutMs: WAIT_MS });
    proxy.refusing = false;
    await reconnected;
    const heard = alice.next("newMessage", { timeoutMs: WAIT_MS });
    await alice.sendMessage("now it works");
    expect((await heard).message).toBe("now it works");
  });

  it("a frozen (half-open) connection is noticed by the heartbeat and resumed on a new socket", async () => {
    const roomName = uniqueRoom("frozen");
    // A ping every second, given 5 s to be answered: a busy machine answers
    // well within that, so the one thing that silences the link is the freeze.
    const alice = await joined(proxy.httpUrl, roomName, "alice", {
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 5000,
    });
    const bob = await joined(dev.url, roomName, "bob");
    const aliceLog = record(alice);
    const bobLog = record(bob);
    const sockets = proxy.accepted;
    const sessionBefore = alice.sessionId;
    expect(alice.state).toBe("connected");
    const frozen = [...proxy.pairs];
    expect(proxy.freezeAll()).toBeGreaterThan(0);
    // When alice gives up on the link, her side of the frozen TCP connection
    // is still open: no close told her, the unanswered ping did.
    const frozenOpenAtLoss: number[] = [];
    alice.once("lost-connection", () => {
      frozenOpenAtLoss.push(frozen.filter((pair) => proxy.pairs.has(pair) && !pair.client.destroyed).length);
    });
    await until(() => names(aliceLog).includes("reconnected"), WAIT_MS * 2, "alice to notice and reconnect");
    expect(frozenOpenAtLoss).toHaveLength(1);
    expect(frozenOpenAtLoss[0]).toBeGreaterThan(0);
    expect(proxy.accepted).toBeGreaterThan(sockets);
    expect(alice.sessionId).toBe(sessionBefore);
    // The first cycle after the freeze, in order (a later one, should a busy
    // machine delay a ping past 5 s, is not what this test is about).
    expect(names(aliceLog, ["lost-connection", "reconnecting", "reconnected", "error-room"]).slice(0, 3)).toEqual([
      "lost-connection",
      "reconnecting",
      "reconnected",
    ]);
    const heard = bob.next("newMessage", { filter: (m) => m.user === "alice", timeoutMs: WAIT_MS });
    await alice.sendMessage("through the new socket");
    expect(await heard).toEqual({ room: roomName, user: "alice", message: "through the new socket" });
    expect(names(bobLog, ROSTER_EVENTS)).toEqual([]);
  });

  it("leave() while reconnecting stops trying and closes", async () => {
    const alice = await joined(proxy.httpUrl, uniqueRoom("give-up"), "alice", {
      reconnect: { initialDelayMs: 200, maxDelayMs: 200 },
    });
    const log = record(alice);
    proxy.refusing = true;
    proxy.dropAll();
    await until(() => names(log).filter((n) => n === "reconnecting").length >= 2, WAIT_MS, "two attempts");
    await alice.leave();
    expect(alice.state).toBe("closed");
    expect(alice.closeReason).toBe("left");
    const attempts = names(log).filter((n) => n === "reconnecting").length;
    const accepted = proxy.accepted;
    // The server is reachable again: an attempt that still ran would get
    // through (and resume). None does, over ten times the 200 ms retry delay.
    proxy.refusing = false;
    await sleep(2000);
    expect(names(log).filter((n) => n === "reconnecting").length).toBe(attempts);
    expect(proxy.accepted).toBe(accepted);
    expect(names(log, ["reconnected", "room-connected"])).toEqual([]);
    expect(alice.state).toBe("closed");
  });
});

describe("a seat that expired", () => {
  it("is reported with error-room 40007 (session-expired), not re-joined; the others saw the user leave", async () => {
    const roomName = uniqueRoom("expired");
    const alice = await joined(proxy.httpUrl, roomName, "alice", {
      // A budget far longer than the seat window: the seat expires first, however slow the machine.
      reconnect: { initialDelayMs: 200, maxDelayMs: 400, timeoutMs: 120_000 },
    });
    const bob = await joined(dev.url, roomName, "bob");
    const aliceLog = record(alice);
    const bobLeft = bob.next("participant-left", { timeoutMs: WAIT_MS * 2 });
    proxy.refusing = true;
    proxy.dropAll();
    expect((await bobLeft).participant.getID()).toBe("alice");
    proxy.refusing = false;
    await until(() => alice.state === "closed", WAIT_MS, "alice to give up");
    expect(alice.closeReason).toBe("session-expired");
    const error = aliceLog.find((r) => r.name === "error-room")?.event as { error: { code: number; message: string } };
    expect(error.error.code).toBe(40007);
    expect(error.error.message).toMatch(/expired/);
    expect(names(aliceLog)).not.toContain("reconnected");
    expect(names(aliceLog)).not.toContain("room-connected");
    // The name is free again: a new Room may join under it.
    const again = await joined(dev.url, roomName, "alice");
    expect(again.getRemoteParticipants().map((p) => p.getID())).toEqual(["bob"]);
  });

  it("a server that stays unreachable ends the stay after the reconnection budget (reconnect-failed)", async () => {
    const alice = await joined(proxy.httpUrl, uniqueRoom("unreachable"), "alice", {
      reconnect: { initialDelayMs: 100, maxDelayMs: 200, timeoutMs: 1500 },
    });
    const log = record(alice);
    proxy.refusing = true;
    proxy.dropAll();
    await until(() => alice.state === "closed", WAIT_MS, "alice to give up");
    expect(alice.closeReason).toBe("reconnect-failed");
    const error = log.find((r) => r.name === "error-room")?.event as { error: { code: number; message: string } };
    expect(error.error.code).toBe(803);
    expect(error.error.message).toMatch(/Could not reconnect/);
  });

  it("with reconnect: false a drop ends the stay at once", async () => {
    const alice = await joined(proxy.httpUrl, uniqueRoom("no-retry"), "alice", { reconnect: false });
    const log = record(alice);
    proxy.dropAll();
    await until(() => alice.state === "closed", WAIT_MS, "alice to close");
    expect(names(log, ["lost-connection", "reconnecting", "error-room"])).toEqual(["lost-connection", "error-room"]);
    expect(alice.closeReason).toBe("reconnect-failed");
  });
});
