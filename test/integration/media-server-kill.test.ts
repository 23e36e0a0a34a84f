/**
 * The media server crashes in the middle of a call: the embedded media server
 * runs as its own process (`node media-server/main.ts`, as `npm run
 * media-server`) in its own process group, is killed with SIGKILL (every
 * media object is gone, nothing is released, no socket is closed cleanly) and
 * a new one starts on the same port, as a supervisor would restart it.
 * (`media-server-restart.test.ts` restarts it gracefully, in-process.)
 *
 * README "Failures lose no room": the users whose media is gone get
 * `mediaError` naming their streams and the others `participantUnpublished`;
 * the bridge finds the restarted server, clients publish and subscribe again
 * and media flows. No seat is lost or doubled, the room stays listed while it
 * has people, and the new server is left with no objects when they leave.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BridgeHandle, loadConfig, startBridge } from "../../bridge/main.ts";
import { waitForBridges } from "../../scripts/system.ts";
import { startWranglerDev, type WranglerDev } from "../../scripts/wrangler-dev.ts";
import { startSyntheticMedia } from "../bridge/helpers/peers.ts";
import { onFreePort } from "../helpers/ports.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { type MediaLeg, publish, recordVideoPackets, subscribe, until } from "./media-peers.ts";

const ROOM = "kms-crash";
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

interface MediaServerStats {
  objects: number;
  pipelines: number;
  sessions: number;
}

/** The embedded media server as a process of its own. */
interface MediaServerProcess {
  readonly port: number;
  readonly url: string;
  /** Its `GET /health` counts. */
  stats(): Promise<MediaServerStats>;
  /** SIGKILLs the whole group and resolves once the process is gone. */
  kill(): Promise<void>;
}

let worker: WranglerDev;
let bridge: BridgeHandle;
const servers: MediaServerProcess[] = [];
const clients: RoomTestClient[] = [];
const legs: MediaLeg[] = [];
const stops: Array<() => void> = [];

/**
 * Starts `node media-server/main.ts` on `port` (loopback ICE, as the tests' in-process server)
 * and resolves once it says it listens. Rejects with the process's output, EADDRINUSE included,
 * when it exits first (so onFreePort can try another port).
 */
async function startMediaServerProcess(port: number): Promise<MediaServerProcess> {
  const child: ChildProcess = spawn(process.execPath, ["media-server/main.ts"], {
    cwd: REPO_ROOT,
    detached: true, // its own process group, so kill() takes everything with it
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      KMS_PORT: String(port),
      KMS_HOST: "127.0.0.1",
      KMS_ICE_LOOPBACK_ONLY: "1",
    },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("the media server process did not start");
  const killGroup = (): void => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  // If this test process ends first, the media server goes with it.
  process.once("exit", killGroup);
  const exited = new Promise<void>((done) => {
    child.once("exit", () => {
      process.removeListener("exit", killGroup);
      done();
    });
  });
  let output = "";
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => {
      killGroup();
      fail(new Error(`the media server did not start within 60 s:\n${output}`));
    }, 60_000);
    const onData = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-8000);
      if (output.includes("Kurento protocol on ws://")) {
        clearTimeout(timer);
        done();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      fail(new Error(`the media server exited before it listened:\n${output}`));
    });
  });
  const handle: MediaServerProcess = {
    port,
    url: `ws://127.0.0.1:${port}/kurento`,
    async stats() {
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      return (await response.json()) as MediaServerStats;
    },
    async kill() {
      killGroup();
      await exited;
    },
  };
  servers.push(handle);
  return handle;
}

/** Starts the media server on `port` again; the old one's port may be refused for a moment, or taken. */
async function restartMediaServerProcess(port: number): Promise<MediaServerProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMediaServerProcess(port);
    } catch (error) {
      if (attempt >= 5 || !/EADDRINUSE/.test(String(error))) throw error;
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

beforeAll(async () => {
  const server = await onFreePort(startMediaServerProcess);
  worker = await startWranglerDev({ vars: { BRIDGE_SECRET: bridgeSecret, RECONNECT_WINDOW_SECONDS: "10" } });
  bridge = await startBridge(
    loadConfig({
      WORKER_URL: worker.url,
      BRIDGE_SECRET: bridgeSecret,
      BRIDGE_ID: "kms-crash-bridge",
      KMS_URIS: server.url,
      BRIDGE_HTTP_PORT: "0",
      LOG_LEVEL: "error",
    }),
  );
  await waitForBridges(worker.url, 1, 60_000);
});

afterAll(async () => {
  for (const stop of stops) stop();
  for (const leg of legs) {
    leg.stopCandidates();
    await leg.peer.close().catch(() => undefined);
  }
  for (const client of clients) client.terminate();
  await bridge?.stop();
  await worker?.stop();
  for (const server of servers) await server.kill();
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

/** Polls the bridge's /health until it is 200 (registered, and its media server connected). */
async function bridgeHealthy(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const response = await fetch(`${bridge.httpUrl}/health`).catch(() => null);
    if (response?.status === 200) return;
    last = response ? `${response.status} ${await response.text()}` : "no answer";
    if (Date.now() > deadline) throw new Error(`the bridge never became healthy again; last /health: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `publish`, again after a 301 "No media server is reachable right now" (bounded); any other error fails. */
async function publishWhenReachable(client: RoomTestClient, user: string, timeoutMs: number): Promise<MediaLeg> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await publish(client, user);
    } catch (error) {
      const unreachable =
        error instanceof RpcRequestError && error.code === 301 && /No media server is reachable/.test(error.message);
      if (!unreachable || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
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

describe("the media server is killed (SIGKILL) mid-call and restarted on the same port", () => {
  it("everyone is told, media comes back after publishing and subscribing again, no seat is lost or doubled", {
    timeout: 300_000,
  }, async () => {
    const original = servers[0];
    if (!original) throw new Error("no media server running");
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
    await rtpFlows(first, firstSub, "BEFORE-KMS-CRASH");
    expect((await original.stats()).objects).toBeGreaterThan(0);
    await pollRooms((names) => names.includes(ROOM), "to list the room");

    // The crash, and a new, empty media server on the same port right away.
    await original.kill();
    const restarted = await restartMediaServerProcess(original.port);

    // alice is told her stream is gone, bob that alice no longer publishes and that the stream he
    // received is gone, carol (no media of her own) only that alice no longer publishes.
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

    // The bridge is connected to the restarted server again, which holds nothing of the old one.
    await bridgeHealthy(60_000);
    expect(await restarted.stats()).toMatchObject({ objects: 0, pipelines: 0 });

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

    // Publish and subscribe again: media flows through the restarted server. The bridge's first
    // connection to it may still be settling (its session resume refused, a fresh session made),
    // so a publish may meet the documented 301 "No media server is reachable right now" once; a
    // client publishes again, as this one does (bounded).
    const live = await publishWhenReachable(alice.client, "alice", 60_000);
    legs.push(live);
    for (const other of [bob, carol]) {
      expect(await other.client.next("participantPublished", 30_000)).toEqual({
        id: "alice",
        streams: [{ id: "webcam" }],
      });
    }
    const sub = await subscribe(bob.client, "alice");
    legs.push(sub);
    await rtpFlows(live, sub, "AFTER-KMS-CRASH");
    expect((await restarted.stats()).pipelines).toBe(1);
    // carol had no media: she was never told of a media error.
    await carol.client.request("ping");
    expect(carol.client.count("mediaError")).toBe(0);

    // The room is listed until the last one leaves, and the restarted server is left empty.
    await alice.client.request("leaveRoom");
    await bob.client.request("leaveRoom");
    await pollRooms((names) => names.includes(ROOM), "to keep the room while carol is in it");
    await carol.client.request("leaveRoom");
    await pollRooms((names) => !names.includes(ROOM), "to drop the room once everyone left");
    for (const leg of [live, sub]) {
      leg.stopCandidates();
      await leg.peer.close();
    }
    const deadline = Date.now() + 30_000;
    for (let last = await restarted.stats(); last.objects !== 0; last = await restarted.stats()) {
      if (Date.now() > deadline) throw new Error(`the restarted media server still holds ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
