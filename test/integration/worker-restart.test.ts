/**
 * The worker crashes in the middle of a call: `wrangler dev` (wrangler and
 * workerd) is killed with SIGKILL, no graceful shutdown, and started again on
 * the same port with the same Durable Object storage and vars, as a
 * supervisor would. The bridge and the embedded media server keep running;
 * the bridge reconnects on its own.
 *
 * Media runs between the peers and the media server, not through the worker,
 * so the people who come back resume their seats with `connect {sessionId}`
 * and keep their media: no renegotiation, RTP keeps reaching the subscriber's
 * same peer, and the room's `sync` with the bridge finds every endpoint still
 * held (no `mediaError`, no `participantUnpublished`). Someone who does not
 * come back loses the seat after the reconnection window (counted from the
 * restart: the restarted room object treats a seat whose socket is gone as
 * dropped) and can join again under the same name. The room stays listed
 * while people are in it and is unlisted when the last one leaves.
 *
 * How long the subscriber's video freezes across such a restart is measured
 * by `npm run bench:restart-freeze`, not asserted here.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, waitForBridges, type System } from "../../scripts/system.ts";
import type { WranglerDev } from "../../scripts/wrangler-dev.ts";
import { startSyntheticMedia } from "../bridge/helpers/peers.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { type MediaLeg, publish, recordVideoPackets, subscribe, until } from "./media-peers.ts";

const ROOM = "worker-crash";
/** Long enough that the two who come back resume well inside it on a loaded machine; the test waits it out once. */
const WINDOW_SECONDS = 10;

interface Peer {
  id: string;
  streams?: Array<{ id: string }>;
}
interface JoinResult {
  value: Peer[];
  sessionId: string;
}

let persistTo: string;
let system: System;
/** The worker running now: the first run until it is killed, then the restarted one. */
let worker: WranglerDev;
const clients: RoomTestClient[] = [];
const legs: MediaLeg[] = [];
const stops: Array<() => void> = [];

beforeAll(async () => {
  // A storage directory of our own, kept across the crash and deleted at the end.
  persistTo = mkdtempSync(joinPath(tmpdir(), "worker-restart-state-"));
  system = await startSystem({
    persistTo,
    vars: { RECONNECT_WINDOW_SECONDS: String(WINDOW_SECONDS) },
    mediaServerWebrtc: { loopbackOnly: true },
  });
  worker = system.worker;
  // The object counts below are the embedded media server's.
  if (!system.mediaServer) throw new Error("this test needs the embedded media server (MEDIA_BACKEND unset)");
});

afterAll(async () => {
  for (const stop of stops) stop();
  for (const leg of legs) {
    leg.stopCandidates();
    await leg.peer.close().catch(() => undefined);
  }
  for (const client of clients) client.terminate();
  await system?.stop();
  if (worker && worker !== system?.worker) await worker.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

async function open(): Promise<RoomTestClient> {
  const client = await RoomTestClient.connect(`${worker.url.replace(/^http/, "ws")}/room/${ROOM}`);
  clients.push(client);
  return client;
}

async function join(user: string): Promise<{ client: RoomTestClient; result: JoinResult }> {
  const client = await open();
  const result = await client.request<JoinResult>("joinRoom", { user, room: ROOM });
  return { client, result };
}

/** Opens a new socket and resumes `sessionId` on it. */
async function resume(sessionId: string): Promise<{ client: RoomTestClient; result: JoinResult }> {
  const client = await open();
  const result = await client.request<JoinResult>("connect", { sessionId });
  return { client, result };
}

async function rooms(): Promise<string[]> {
  const response = await fetch(`${worker.url}/getAllRooms`);
  expect(response.status).toBe(200);
  return (await response.json()) as string[];
}

/**
 * The first notification `method` matching `match`, failing at once (not at the timeout) if the
 * socket closes first: a long wait then says why it ended (e.g. `wrangler dev` reloading the
 * worker because a source file changed under it drops every socket).
 */
async function notifiedOpen(
  client: RoomTestClient,
  method: string,
  match: (params: Record<string, unknown>) => boolean,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const waiting = client.nextWhere(method, match, timeoutMs);
  const closed = client.closed().then((event) => {
    throw new Error(`the socket closed (${event.code} ${event.reason}) while waiting for ${method}`);
  });
  // The loser of the race settles later; neither may become an unhandled rejection.
  waiting.catch(() => undefined);
  closed.catch(() => undefined);
  return Promise.race([waiting, closed]);
}

/** The ids of a join/resume result, sorted (duplicates kept, so a duplicate shows). */
function ids(result: JoinResult): string[] {
  return result.value.map((peer) => peer.id).sort();
}

describe("the worker is killed (SIGKILL) mid-call and restarted on the same storage", () => {
  it("those who come back resume without duplicates and keep their media; the one who does not is gone after the window", {
    timeout: 300_000,
  }, async () => {
    const alice = await join("alice");
    const bob = await join("bob");
    const carol = await join("carol");
    expect(ids(carol.result)).toEqual(["alice", "bob"]);

    const published = await publish(alice.client, "alice");
    legs.push(published);
    for (const other of [bob, carol]) {
      expect(await other.client.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    }
    const subscribed = await subscribe(bob.client, "alice");
    legs.push(subscribed);
    const marker = Buffer.from("WORKER-CRASH");
    const packets = recordVideoPackets(subscribed, marker);
    // Alice sends for the whole test: the crash must not interrupt what bob receives.
    const media = startSyntheticMedia(published.peer.video, marker, 50, 3000);
    stops.push(() => media.stop());
    await until(() => packets.count() > 20, 30_000, "RTP from alice at bob before the crash");
    await pollRooms((names) => names.includes(ROOM), "to list the room");
    const objects = system.mediaServer?.stats().objects ?? 0;
    expect(objects).toBeGreaterThan(0);

    // The crash: every process of wrangler dev dies at once; the sockets drop without a close frame.
    await worker.kill();
    const killedAt = Date.now();
    for (const { client } of [alice, bob, carol]) expect((await client.closedWithin(30_000)).code).toBe(1006);
    published.stopCandidates();
    subscribed.stopCandidates();
    // Media does not pass through the worker: bob keeps receiving while it is down.
    const whileDown = packets.count();
    await until(() => packets.count() > whileDown + 25, 30_000, "RTP at bob while the worker is down");

    // The same port, storage and vars. Alice and bob come back as soon as it answers (their
    // window runs from the restarted room's start; the bridge's own backoff must not eat it);
    // carol does not.
    worker = await worker.restart();
    const alice2 = await resume(alice.result.sessionId);
    const bob2 = await resume(bob.result.sessionId);
    expect(alice2.result.sessionId).toBe(alice.result.sessionId);
    expect(bob2.result.sessionId).toBe(bob.result.sessionId);
    // Each sees the others once (carol's seat may still be in its window, or already gone on a
    // slow machine); bob learns from the room as it is now that alice still publishes.
    for (const [me, result] of [
      ["alice", alice2.result],
      ["bob", bob2.result],
    ] as const) {
      const seen = ids(result);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).not.toContain(me);
      expect(seen.filter((id) => id !== "carol")).toEqual(me === "alice" ? ["bob"] : ["alice"]);
    }
    expect(bob2.result.value.find((peer) => peer.id === "alice")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    expect(alice2.result.value.find((peer) => peer.id === "bob")).toEqual({ id: "bob" });

    // The bridge finds its way back by itself: its control link registers again…
    await waitForBridges(worker.url, 1, 60_000);
    // …and its room link is back and the room has synced with it: a media command goes through
    // only after `sync`, and a media loss found by `sync` is told (mediaError, participantUnpublished)
    // before it. Bob trickles one of his candidates again; then a ping on alice's socket proves
    // anything sent to her earlier has arrived.
    await until(
      () => system.bridge.stats().rooms.some((room) => room.room === ROOM && room.linkOpen),
      60_000,
      "the bridge's room link to reopen",
    );
    const candidate = subscribed.peer.candidates[0];
    if (!candidate) throw new Error("bob's peer gathered no candidate");
    expect(await bob2.client.request("onIceCandidate", { endpointName: "alice", ...candidate })).toEqual({
      sessionId: bob.result.sessionId,
    });
    await alice2.client.request("ping");
    for (const client of [alice2.client, bob2.client]) {
      expect(client.count("mediaError")).toBe(0);
      expect(client.count("participantUnpublished")).toBe(0);
      // Resuming is not joining: nobody is announced again.
      expect(client.count("participantJoined")).toBe(0);
    }
    // The bridge still holds both, and the media server still has the same objects: nothing was renegotiated.
    const held = system.bridge.stats().rooms.find((room) => room.room === ROOM)?.held ?? [];
    expect([...held].sort()).toEqual(expect.arrayContaining(["alice", "bob"]));
    expect(system.mediaServer?.stats().objects).toBe(objects);
    // …and RTP keeps reaching the same peer of bob's, as before the crash.
    const afterResume = packets.count();
    await until(() => packets.count() > afterResume + 50, 30_000, "RTP from alice at bob after the restart");

    // Chat reaches each once: one seat per person, one socket per seat.
    await alice2.client.request("sendMessage", { message: "back", userMessage: "alice", roomMessage: ROOM });
    expect(await bob2.client.next("sendMessage")).toEqual({ room: ROOM, user: "alice", message: "back" });
    expect(await alice2.client.next("sendMessage")).toEqual({ room: ROOM, user: "alice", message: "back" });
    await bob2.client.request("ping");
    expect(bob2.client.count("sendMessage")).toBe(0);

    // Carol's seat expires after the window, counted from the restart (so never before the crash
    // plus the window; workerd's clock is coarse, hence the second of slack), and the others are told.
    expect(await notifiedOpen(alice2.client, "participantLeft", (p) => p.name === "carol", 60_000)).toEqual({
      name: "carol",
    });
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(WINDOW_SECONDS * 1000 - 1000);
    expect(await notifiedOpen(bob2.client, "participantLeft", (p) => p.name === "carol", 30_000)).toEqual({
      name: "carol",
    });
    await pollRooms((names) => names.includes(ROOM), "to list the room after the restart");

    // The name is free again: a new carol joins and sees alice (still publishing) and bob once each.
    const carol2 = await join("carol");
    expect(carol2.result.value.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: "alice", streams: [{ id: "webcam" }] },
      { id: "bob" },
    ]);
    for (const client of [alice2.client, bob2.client]) {
      expect(await client.nextWhere("participantJoined", (p) => p.id === "carol")).toEqual({ id: "carol" });
    }

    // The room is listed until the last one leaves, and every media object goes with them.
    media.stop();
    await alice2.client.request("leaveRoom");
    await bob2.client.request("leaveRoom");
    await pollRooms((names) => names.includes(ROOM), "to keep the room while carol is in it");
    await carol2.client.request("leaveRoom");
    await pollRooms((names) => !names.includes(ROOM), "to drop the room once everyone left");
    const server = system.mediaServer;
    await until(() => (server?.stats().objects ?? 0) === 0, 30_000, "the media server to hold no objects");
  });
});

/** Polls /getAllRooms (bounded) until `predicate` holds: the directory is updated in the background after a reply. */
async function pollRooms(predicate: (names: string[]) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let names = await rooms();
  while (!predicate(names)) {
    if (Date.now() > deadline) throw new Error(`/getAllRooms never came ${what}; last answer ${JSON.stringify(names)}`);
    await new Promise((r) => setTimeout(r, 200));
    names = await rooms();
  }
}
