/**
 * The media bridge crashes in the middle of a call: `node bridge/main.ts`
 * runs as its own process group and is killed with SIGKILL (no `releaseRoom`,
 * no goodbye to the worker or the media server), and a new bridge process
 * with the same BRIDGE_ID starts at once, as a supervisor would restart it.
 *
 * README "Failures lose no room" says what must happen: the users whose media
 * is gone get `mediaError` naming their streams and the others
 * `participantUnpublished`; clients publish and subscribe again and media
 * flows through the new bridge. Nobody loses a seat (no ghost, no duplicate),
 * and nothing of the dead bridge stays on the embedded media server: its
 * objects belong to the dead bridge's media-server session, which ends once
 * its socket has been gone for the session grace (`sessionGraceMs`, short
 * here so the test does not wait the default 30 s).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { waitForBridges } from "../../scripts/system.ts";
import { startWranglerDev, type WranglerDev } from "../../scripts/wrangler-dev.ts";
import { startSyntheticMedia } from "../bridge/helpers/peers.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { type MediaLeg, publish, recordVideoPackets, subscribe, until } from "./media-peers.ts";

const ROOM = "bridge-crash";
const BRIDGE_ID = "crash-bridge";
const SESSION_GRACE_MS = 3000;
const REPO_ROOT = resolve(import.meta.dirname, "../..");
const bridgeSecret = randomBytes(32).toString("hex");

interface Peer {
  id: string;
  streams?: Array<{ id: string }>;
}
interface JoinResult {
  value: Peer[];
  sessionId: string;
}

/** A bridge running as `node bridge/main.ts` in its own process group. */
interface BridgeProcess {
  readonly pid: number;
  /** `http://127.0.0.1:<port>` of its /health (it picks a free port and prints it). */
  readonly httpUrl: string;
  /** SIGKILLs the whole group and resolves once the process is gone. */
  kill(): Promise<void>;
}

let mediaServer: MediaServerHandle;
let worker: WranglerDev;
const bridges: BridgeProcess[] = [];
const clients: RoomTestClient[] = [];
const legs: MediaLeg[] = [];
const stops: Array<() => void> = [];

/**
 * Starts the bridge as `npm run bridge` does (`node bridge/main.ts`, configured by its
 * environment only: nothing of this process's environment leaks in but PATH and HOME), and
 * resolves once it has printed where its /health is.
 */
async function startBridgeProcess(): Promise<BridgeProcess> {
  const child: ChildProcess = spawn(process.execPath, ["bridge/main.ts"], {
    cwd: REPO_ROOT,
    detached: true, // its own process group, so kill() takes everything it started with it
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      WORKER_URL: worker.url,
      BRIDGE_SECRET: bridgeSecret,
      BRIDGE_ID,
      KMS_URIS: mediaServer.url,
      BRIDGE_HTTP_PORT: "0",
      LOG_LEVEL: "error",
    },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("the bridge process did not start");
  const killGroup = (): void => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  // If this test process ends first, the bridge goes with it.
  process.once("exit", killGroup);
  const exited = new Promise<void>((done) => {
    child.once("exit", () => {
      process.removeListener("exit", killGroup);
      done();
    });
  });
  let output = "";
  const httpUrl = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`the bridge printed no health URL within 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-8000);
      const match = /health at (http:\/\/[^\s,]+)\/health/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        done(match[1]);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      fail(new Error(`the bridge exited before it started:\n${output}`));
    });
  });
  const handle: BridgeProcess = {
    pid,
    httpUrl,
    async kill() {
      killGroup();
      await exited;
    },
  };
  bridges.push(handle);
  return handle;
}

beforeAll(async () => {
  mediaServer = await startMediaServer({
    port: 0,
    webrtc: { loopbackOnly: true },
    sessionGraceMs: SESSION_GRACE_MS,
    log: () => undefined,
  });
  worker = await startWranglerDev({ vars: { BRIDGE_SECRET: bridgeSecret, RECONNECT_WINDOW_SECONDS: "10" } });
  await startBridgeProcess();
  await waitForBridges(worker.url, 1, 60_000);
});

afterAll(async () => {
  for (const stop of stops) stop();
  for (const leg of legs) {
    leg.stopCandidates();
    await leg.peer.close().catch(() => undefined);
  }
  for (const client of clients) client.terminate();
  for (const bridge of bridges) await bridge.kill();
  await worker?.stop();
  await mediaServer?.close();
});

async function join(user: string): Promise<{ client: RoomTestClient; result: JoinResult }> {
  const client = await RoomTestClient.connect(`${worker.url.replace(/^http/, "ws")}/room/${ROOM}`);
  clients.push(client);
  const result = await client.request<JoinResult>("joinRoom", { user, room: ROOM });
  return { client, result };
}

async function rooms(): Promise<string[]> {
  const response = await fetch(`${worker.url}/getAllRooms`);
  expect(response.status).toBe(200);
  return (await response.json()) as string[];
}

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

/** RTP from `from` reaches `to` (counted on the subscriber's peer). */
async function rtpFlows(from: MediaLeg, to: MediaLeg, tag: string): Promise<void> {
  const marker = Buffer.from(tag);
  const packets = recordVideoPackets(to, marker);
  const media = startSyntheticMedia(from.peer.video, marker, 50, 3000);
  stops.push(() => media.stop());
  try {
    await until(() => packets.count() > 20, 30_000, `RTP (${tag}) at the subscriber`);
  } finally {
    media.stop();
  }
}

describe("the bridge is killed (SIGKILL) mid-call and a new one starts", () => {
  it("everyone is told, media comes back after publishing and subscribing again, no seat is lost or doubled, nothing of the dead bridge stays on the media server", {
    timeout: 300_000,
  }, async () => {
    const alice = await join("alice");
    const bob = await join("bob");
    const carol = await join("carol");
    const first = await publish(alice.client, "alice");
    legs.push(first);
    for (const other of [bob, carol]) {
      expect(await other.client.next("participantPublished")).toEqual({ id: "alice", streams: [{ id: "webcam" }] });
    }
    const firstSub = await subscribe(bob.client, "alice");
    legs.push(firstSub);
    await rtpFlows(first, firstSub, "BEFORE-BRIDGE-CRASH");
    expect(mediaServer.stats().objects).toBeGreaterThan(0);
    await pollRooms((names) => names.includes(ROOM), "to list the room");

    // The crash, and a new bridge under the same id right away.
    const dead = bridges[0];
    if (!dead) throw new Error("no bridge running");
    await dead.kill();
    const replacement = await startBridgeProcess();

    // The room gives the dead bridge a short grace to come back, then tells everyone: alice that
    // her stream is gone, bob that alice no longer publishes and that the stream he received is
    // gone, carol (no media of her own) only that alice no longer publishes.
    expect(await alice.client.next("mediaError", 60_000)).toMatchObject({
      error: expect.any(String),
      streams: ["alice_webcam"],
    });
    expect(await bob.client.next("participantUnpublished", 60_000)).toEqual({ name: "alice" });
    expect(await bob.client.next("mediaError", 60_000)).toMatchObject({ streams: ["alice_webcam"] });
    expect(await carol.client.next("participantUnpublished", 60_000)).toEqual({ name: "alice" });
    for (const leg of [first, firstSub]) {
      leg.stopCandidates();
      await leg.peer.close();
    }

    // Nothing of the dead bridge is left on the media server once its session's grace is over
    // (the new bridge has built nothing yet, and could not release another session's objects).
    await until(
      () => mediaServer.stats().objects === 0,
      60_000,
      "the dead bridge's objects to be released by the media server",
    );
    expect(mediaServer.stats().pipelines).toBe(0);

    // The new bridge is registered (and the dead one no longer counts).
    await waitForBridges(worker.url, 1, 60_000);
    const health = (await (await fetch(`${worker.url}/health`)).json()) as { bridges: number };
    expect(health.bridges).toBe(1);

    // No ghost seat, no duplicate: a newcomer sees the three once, and nobody publishes now.
    const probe = await join("probe");
    expect(probe.result.value.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: "alice" },
      { id: "bob" },
      { id: "carol" },
    ]);
    await probe.client.request("leaveRoom");
    for (const { client } of [alice, bob, carol]) {
      expect(await client.nextWhere("participantLeft", (p) => p.name === "probe")).toEqual({ name: "probe" });
    }

    // Publish and subscribe again: media flows through the new bridge.
    const live = await publish(alice.client, "alice");
    legs.push(live);
    for (const other of [bob, carol]) {
      expect(await other.client.next("participantPublished", 30_000)).toEqual({
        id: "alice",
        streams: [{ id: "webcam" }],
      });
    }
    const sub = await subscribe(bob.client, "alice");
    legs.push(sub);
    await rtpFlows(live, sub, "AFTER-BRIDGE-CRASH");
    const bridgeHealth = (await (await fetch(`${replacement.httpUrl}/health`)).json()) as {
      bridgeId: string;
      rooms: number;
      pipelines: number;
    };
    expect(bridgeHealth).toMatchObject({ bridgeId: BRIDGE_ID, rooms: 1, pipelines: 1 });
    expect(mediaServer.stats().pipelines).toBe(1);
    // carol had no media: she was never told of a media error.
    await carol.client.request("ping");
    expect(carol.client.count("mediaError")).toBe(0);

    // The room is listed until the last one leaves, and every media object goes with them.
    await alice.client.request("leaveRoom");
    await bob.client.request("leaveRoom");
    await pollRooms((names) => names.includes(ROOM), "to keep the room while carol is in it");
    await carol.client.request("leaveRoom");
    await pollRooms((names) => !names.includes(ROOM), "to drop the room once everyone left");
    for (const leg of [live, sub]) {
      leg.stopCandidates();
      await leg.peer.close();
    }
    await until(() => mediaServer.stats().objects === 0, 30_000, "the media server to hold no objects");
  });
});
