/**
 * Connection loss, against the real worker through a TCP proxy the test can
 * cut: the client resumes its session (`connect {sessionId}`) without anyone
 * seeing it leave or join twice; a half-open connection is noticed by the
 * heartbeat; a seat that expired is reported, not silently re-joined.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startWranglerDev, type WranglerDev } from "../../scripts/wrangler-dev.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";
import { joined, leaveAll, names, record, sleep, uniqueRoom, until } from "./support.ts";

/** Seconds a dropped participant keeps its seat on this worker. */
const WINDOW_SECONDS = 5;
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

describe("a dropped connection", () => {
  it("resumes the same session: lost-connection, reconnecting, reconnected; nobody sees a leave or a second join", async () => {
    const roomName = uniqueRoom("drop");
    // Alice goes through the proxy; Bob connects directly and watches.
    const alice = await joined(proxy.httpUrl, roomName, "alice");
    const bob = await joined(dev.url, roomName, "bob");
    await until(() => alice.getParticipant("bob") !== undefined, 5000, "alice to see bob");
    const sessionBefore = alice.sessionId;
    const aliceLog = record(alice);
    const bobLog = record(bob);

    expect(proxy.dropAll()).toBeGreaterThan(0);
    await until(() => names(aliceLog).includes("reconnected"), 10_000, "alice to reconnect");
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
    const bobHears = bob.next("newMessage", { filter: (m) => m.user === "alice" });
    await alice.sendMessage("I'm back");
    expect((await bobHears).message).toBe("I'm back");
    const aliceHears = alice.next("newMessage", { filter: (m) => m.user === "bob" });
    await bob.sendMessage("welcome back");
    expect((await aliceHears).message).toBe("welcome back");

    // A newcomer sees alice once, and alice sees the newcomer once.
    const carol = await joined(dev.url, roomName, "carol");
    expect(
      carol
        .getRemoteParticipants()
        .map((p) => p.getID())
        .sort(),
    ).toEqual(["alice", "bob"]);
    await until(() => alice.getParticipant("carol") !== undefined, 5000, "alice to see carol");

    // Past the window: bob never heard alice leave (or join again).
    await sleep(WINDOW_SECONDS * 1000 + 500);
    expect(names(bobLog, ROSTER_EVENTS)).toEqual(["participant-joined"]); // carol only
    const arrival = bobLog.find((r) => r.name === "participant-joined")?.event as
      | { participant: { getID(): string } }
      | undefined;
    expect(arrival?.participant.getID()).toBe("carol");
    expect(
      bob
        .getRemoteParticipants()
        .map((p) => p.getID())
        .sort(),
    ).toEqual(["alice", "carol"]);
    expect(names(aliceLog, ROSTER_EVENTS)).toEqual(["participant-joined"]);
  });

  it("requests made while reconnecting fail at once with 803, and work again after", async () => {
    const roomName = uniqueRoom("during");
    const alice = await joined(proxy.httpUrl, roomName, "alice", {
      reconnect: { initialDelayMs: 300, maxDelayMs: 300 },
    });
    proxy.refusing = true;
    proxy.dropAll();
    await until(() => alice.state === "reconnecting", 5000, "alice to be reconnecting");
    await expect(alice.sendMessage("lost?")).rejects.toMatchObject({ code: 803 });
    proxy.refusing = false;
    await alice.next("reconnected");
    const heard = alice.next("newMessage");
    await alice.sendMessage("now it works");
    expect((await heard).message).toBe("now it works");
  });

  it("a frozen (half-open) connection is noticed by the heartbeat and resumed on a new socket", async () => {
    const roomName = uniqueRoom("frozen");
    const alice = await joined(proxy.httpUrl, roomName, "alice", { heartbeatIntervalMs: 300, heartbeatTimeoutMs: 500 });
    const bob = await joined(dev.url, roomName, "bob");
    const aliceLog = record(alice);
    const bobLog = record(bob);
    const sockets = proxy.accepted;
    expect(proxy.freezeAll()).toBeGreaterThan(0);
    await until(() => names(aliceLog).includes("reconnected"), 10_000, "alice to notice and reconnect");
    expect(proxy.accepted).toBeGreaterThan(sockets);
    expect(names(aliceLog, ["lost-connection", "reconnecting", "reconnected"])).toEqual([
      "lost-connection",
      "reconnecting",
      "reconnected",
    ]);
    const heard = bob.next("newMessage");
    await alice.sendMessage("through the new socket");
    expect((await heard).user).toBe("alice");
    expect(names(bobLog, ROSTER_EVENTS)).toEqual([]);
  });

  it("leave() while reconnecting stops trying and closes", async () => {
    const alice = await joined(proxy.httpUrl, uniqueRoom("give-up"), "alice", {
      reconnect: { initialDelayMs: 200, maxDelayMs: 200 },
    });
    const log = record(alice);
    proxy.refusing = true;
    proxy.dropAll();
    await until(() => names(log).filter((n) => n === "reconnecting").length >= 2, 5000, "two attempts");
    await alice.leave();
    expect(alice.state).toBe("closed");
    expect(alice.closeReason).toBe("left");
    const attempts = names(log).filter((n) => n === "reconnecting").length;
    await sleep(700);
    expect(names(log).filter((n) => n === "reconnecting").length).toBe(attempts);
  });
});

describe("a seat that expired", () => {
  it("is reported with error-room 40007 (session-expired), not re-joined; the others saw the user leave", async () => {
    const roomName = uniqueRoom("expired");
    const alice = await joined(proxy.httpUrl, roomName, "alice", {
      reconnect: { initialDelayMs: 200, maxDelayMs: 400, timeoutMs: 20_000 },
    });
    const bob = await joined(dev.url, roomName, "bob");
    const aliceLog = record(alice);
    const bobLeft = bob.next("participant-left", { timeoutMs: 25_000 });
    proxy.refusing = true;
    proxy.dropAll();
    expect((await bobLeft).participant.getID()).toBe("alice");
    proxy.refusing = false;
    await until(() => alice.state === "closed", 10_000, "alice to give up");
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
    await until(() => alice.state === "closed", 8000, "alice to give up");
    expect(alice.closeReason).toBe("reconnect-failed");
    const error = log.find((r) => r.name === "error-room")?.event as { error: { code: number; message: string } };
    expect(error.error.code).toBe(803);
    expect(error.error.message).toMatch(/Could not reconnect/);
  });

  it("with reconnect: false a drop ends the stay at once", async () => {
    const alice = await joined(proxy.httpUrl, uniqueRoom("no-retry"), "alice", { reconnect: false });
    const log = record(alice);
    proxy.dropAll();
    await until(() => alice.state === "closed", 5000, "alice to close");
    expect(names(log, ["lost-connection", "reconnecting", "error-room"])).toEqual(["lost-connection", "error-room"]);
    expect(alice.closeReason).toBe("reconnect-failed");
  });
});
